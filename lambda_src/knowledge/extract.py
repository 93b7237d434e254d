"""Plain text and a title from the files the knowledge prefix may hold: txt/md, html, pdf, and transcripts
(json segments or WebVTT). A file that is not what its name says raises DocumentError with a sentence."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any, NamedTuple


class DocumentError(Exception):
    """The document cannot be read (corrupt, encrypted, not text); the message says why, without content."""


class Extracted(NamedTuple):
    title: str
    text: str


def extract(name: str, data: bytes) -> Extracted:
    """Text of ``data``, read as the type its file ``name`` ends with (the discover step only sends known ones)."""
    suffix = PurePosixPath(name).suffix.lower()
    fallback = PurePosixPath(name).stem or name
    if suffix == ".pdf":
        return _pdf(data, fallback)
    text = _decode(data)
    if suffix in (".html", ".htm"):
        return _html(text, fallback)
    if suffix == ".json":
        return Extracted(fallback, _json_transcript(text))
    if suffix == ".vtt":
        return Extracted(fallback, _vtt(text))
    return Extracted(_markdown_title(text) or fallback, text)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DocumentError("The file is not UTF-8 text.") from None


def _markdown_title(text: str) -> str:
    for line in text.splitlines()[:50]:
        if line.startswith("# "):
            return line[2:].strip()
    return ""


class _HtmlText(HTMLParser):
    _SKIPPED = frozenset({"script", "style", "noscript", "template", "svg"})
    _BLOCKS = frozenset({"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article",
                         "pre", "blockquote", "header", "footer"})  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag == "title":
            self._in_title = True
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED and self._skipping:
            self._skipping -= 1
        elif tag == "title":
            self._in_title = False
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self.parts.append(data)


def _html(text: str, fallback: str) -> Extracted:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    body = re.sub(r"[ \t]+", " ", "".join(parser.parts))
    body = re.sub(r"\n\s*\n+", "\n\n", body).strip()
    return Extracted(parser.title.strip() or fallback, body)


def _pdf(data: bytes, fallback: str) -> Extracted:
    from pypdf import PdfReader  # noqa: PLC0415 - the layer's pypdf, only for PDF files
    from pypdf.errors import PyPdfError  # noqa: PLC0415

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError("The PDF is encrypted.")
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata: dict[str, Any] = dict(reader.metadata or {})
        title = str(metadata.get("/Title") or "").strip()
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError):
        raise DocumentError("The PDF is corrupt or cannot be read.") from None
    return Extracted(title or fallback, "\n\n".join(page.strip() for page in pages if page.strip()))


def _json_transcript(text: str) -> str:
    """A transcript as JSON: a list of segments with ``text`` (youtube-transcript-api's raw form), an object
    holding such a list under ``segments``/``transcript``/``results``, or an object with a ``text`` string."""
    try:
        value = json.loads(text)
    except ValueError:
        raise DocumentError("The JSON file is not valid JSON.") from None
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            return str(value["text"])
        value = next((value[k] for k in ("segments", "transcript", "results") if isinstance(value.get(k), list)), None)
    if isinstance(value, list) and all(isinstance(s, dict) and isinstance(s.get("text"), str) for s in value):
        return "\n".join(str(s["text"]).strip() for s in value if s["text"].strip())
    raise DocumentError("The JSON file is not a transcript (a list of segments with text).")


_CUE_TIMING = re.compile(r"^\s*(?:\d+:)?\d{2}:\d{2}[.,]\d{3}\s+-->")
_TAG = re.compile(r"<[^>]+>")


def _vtt(text: str) -> str:
    lines = text.splitlines()
    if not lines or not lines[0].lstrip("\ufeff").startswith("WEBVTT"):
        raise DocumentError("The VTT file does not start with WEBVTT.")
    out: list[str] = []
    skipping_block = False
    for line in lines[1:]:
        stripped = line.strip()
        if not stripped:
            skipping_block = False
            continue
        if stripped.startswith(("NOTE", "STYLE", "REGION")):
            skipping_block = True
        if skipping_block or _CUE_TIMING.match(stripped) or stripped.isdigit():
            continue
        cue = _TAG.sub("", stripped).strip()
        # Auto-generated captions repeat each line in the next cue.
        if cue and (not out or out[-1] != cue):
            out.append(cue)
    return "\n".join(out)
