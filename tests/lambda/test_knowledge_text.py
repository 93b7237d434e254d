"""Text from the knowledge prefix's file types, and the chunks the pipeline embeds."""

from __future__ import annotations

import itertools
import json

import pytest

from lambda_src.knowledge.chunking import chunk, count_tokens
from lambda_src.knowledge.extract import DocumentError, extract

PROSE = "\n\n".join(
    " ".join(f"Sentence {p}.{s} of paragraph {p} explains the weekly pipeline." for s in range(6)) for p in range(8)
)


def test_chunks_stay_within_the_token_budget_and_cover_the_text():
    pieces = chunk(PROSE, 60, 15)
    assert len(pieces) > 3
    assert all(count_tokens(piece) <= 60 for piece in pieces)
    for p in range(8):
        for s in range(6):
            assert any(f"Sentence {p}.{s} " in piece for piece in pieces)


def test_each_chunk_starts_with_the_end_of_the_previous_one():
    pieces = chunk(PROSE, 60, 15)
    for previous, current in itertools.pairwise(pieces):
        first_sentence = current.split(". ")[0]
        assert first_sentence in previous


def test_a_run_without_spaces_longer_than_a_chunk_is_cut():
    pieces = chunk("x" * 10 + " " + "-".join(["a"] * 200), 50, 5)
    assert all(count_tokens(piece) <= 50 for piece in pieces)
    assert len(pieces) >= 8


def test_bad_chunk_settings_are_refused():
    with pytest.raises(ValueError, match="overlap_tokens"):
        chunk("text", 10, 10)


def test_markdown_takes_its_first_heading_as_title():
    assert extract("docs/guide.md", b"intro\n# The Guide\nbody").title == "The Guide"
    assert extract("notes.txt", b"plain").title == "notes"


def test_html_drops_scripts_and_styles_and_keeps_the_title():
    page = b"<html><head><title>Ops</title><style>p{}</style></head><body><p>Hello</p><script>x()</script>" \
           b"<p>world &amp; more</p></body></html>"  # fmt: skip
    extracted = extract("page.html", page)
    assert extracted.title == "Ops"
    assert extracted.text.split() == ["Hello", "world", "&", "more"]


def test_transcripts_as_json_and_vtt():
    segments = json.dumps([{"text": "first", "start": 0}, {"text": " second ", "start": 1}]).encode()
    assert extract("talk.json", segments).text == "first\nsecond"
    assert extract("talk.json", json.dumps({"segments": [{"text": "a"}]}).encode()).text == "a"
    vtt = b"WEBVTT\n\nNOTE a comment\nskipped\n\n1\n00:00:00.000 --> 00:00:01.000\n<c>Hello</c> there\n\n" \
          b"00:00:01.000 --> 00:00:02.000\nHello there\n\n00:00:02.000 --> 00:00:03.000\nagain\n"  # fmt: skip
    assert extract("talk.vtt", vtt).text == "Hello there\nagain"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [("a.txt", b"\xff\xfe\xfa", "not UTF-8"), ("a.json", b"{", "not valid JSON"),
     ("a.json", b'{"other": 1}', "not a transcript"), ("a.vtt", b"1\n00:00 --> 00:01\nx", "WEBVTT"),
     ("a.pdf", b"%PDF-1.7 broken", "corrupt")],
)  # fmt: skip
def test_a_file_that_is_not_what_its_name_says_fails_with_a_reason(name, data, reason):
    with pytest.raises(DocumentError, match=reason):
        extract(name, data)
