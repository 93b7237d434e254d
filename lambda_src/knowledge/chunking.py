"""Token-aware chunks with overlap, cut at paragraph, then sentence, then word boundaries.

Tokens are counted as word pieces (runs of letters or digits, and single punctuation marks), which is what
subword tokenizers such as Titan's produce at least: a chunk of N pieces stays under N model tokens for
ordinary prose plus a margin (Titan V2 takes 8,192 tokens). No tokenizer library fits here: tiktoken
downloads its vocabulary at run time (no network in Lambda without NAT) and Titan's tokenizer is not public.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_PIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def count_tokens(text: str) -> int:
    return len(_PIECE.findall(text))


class _Unit(NamedTuple):
    text: str
    tokens: int
    # Starts a paragraph (joined with a blank line) or continues one (joined with a space).
    paragraph: bool


def chunk(text: str, max_tokens: int, overlap_tokens: int) -> list[str]:
    """Chunks of at most ``max_tokens``, each starting with up to ``overlap_tokens`` from the previous one."""
    if max_tokens < 1 or not 0 <= overlap_tokens < max_tokens:
        raise ValueError("chunk() needs max_tokens >= 1 and 0 <= overlap_tokens < max_tokens.")
    chunks: list[str] = []
    current: list[_Unit] = []
    size = 0
    fresh = False  # current holds a unit no chunk has yet
    for unit in _units(text, max_tokens):
        if fresh and size + unit.tokens > max_tokens:
            chunks.append(_join(current))
            current = _tail(current, min(overlap_tokens, max_tokens - unit.tokens))
            size = sum(u.tokens for u in current)
        current.append(unit)
        size += unit.tokens
        fresh = True
    if fresh:
        chunks.append(_join(current))
    return chunks


def _units(text: str, max_tokens: int) -> list[_Unit]:
    """Sentences (a sentence too long for a chunk: runs of words), marked where a paragraph starts."""
    units: list[_Unit] = []
    for paragraph in re.split(r"\n\s*\n", text):
        first = True
        for sentence in _SENTENCE_END.split(paragraph.strip()):
            tokens = count_tokens(sentence)
            if tokens == 0:
                continue
            for run in [sentence] if tokens <= max_tokens else _word_runs(sentence, max_tokens):
                units.append(_Unit(run, count_tokens(run), first))
                first = False
    return units


def _word_runs(sentence: str, max_tokens: int) -> list[str]:
    runs: list[str] = []
    words: list[str] = []
    size = 0
    for word in sentence.split():
        tokens = count_tokens(word)
        if tokens > max_tokens:  # one "word" longer than a chunk (a URL, a hash run): cut it by pieces
            pieces = _PIECE.findall(word)
            runs.extend("".join(pieces[i : i + max_tokens]) for i in range(0, len(pieces), max_tokens))
            continue
        if words and size + tokens > max_tokens:
            runs.append(" ".join(words))
            words, size = [], 0
        words.append(word)
        size += tokens
    if words:
        runs.append(" ".join(words))
    return runs


def _tail(units: list[_Unit], budget: int) -> list[_Unit]:
    """The last units of a chunk worth at most ``budget`` tokens: the start of the next chunk."""
    kept: list[_Unit] = []
    size = 0
    for unit in reversed(units):
        if size + unit.tokens > budget:
            break
        kept.insert(0, unit)
        size += unit.tokens
    return kept


def _join(units: list[_Unit]) -> str:
    parts = [units[0].text]
    for unit in units[1:]:
        parts.append(("\n\n" if unit.paragraph else " ") + unit.text)
    return "".join(parts)
