"""The YouTube connector against recorded answers of the Data API v3 (no network): paging, the fields asked
for, the API's errors as one sentence for the source; transcripts through the library's own exceptions."""

from __future__ import annotations

import email.message
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from youtube_transcript_api._errors import IpBlocked, TranscriptsDisabled, VideoUnavailable
from youtube_transcript_api._transcripts import FetchedTranscriptSnippet

from lambda_src.knowledge.youtube import SourceError, Unavailable, Video, playlist_videos, transcript

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "youtube"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def test_every_page_of_the_playlist_is_read_and_items_without_a_video_are_left_out():
    asked: list[dict[str, list[str]]] = []
    pages = iter([recorded("playlist_page1.json"), recorded("playlist_page2.json")])

    def get(url: str) -> Any:
        asked.append(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query))
        return next(pages)

    videos = list(playlist_videos("PLabcdefghij", "AIza-key", get=get))
    assert videos == [Video("vid00000001", "Weekly pipeline tour", "etag-a1", "PLabcdefghij"),
                      Video("vid00000002", "Guardrails in practice", "etag-b1", "PLabcdefghij")]  # fmt: skip
    assert asked[0]["playlistId"] == ["PLabcdefghij"] and asked[0]["key"] == ["AIza-key"]
    assert asked[0]["maxResults"] == ["50"] and "pageToken" not in asked[0]
    assert asked[1]["pageToken"] == ["EAAaBlBUOkNBVQ"]


@pytest.mark.parametrize(
    ("status", "fixture", "sentence"),
    [(400, "key_invalid.json", "The YouTube Data API refused the API key (badRequest)."),
     (403, "quota_exceeded.json", "The YouTube Data API quota is exhausted for today (quotaExceeded)."),
     (404, None, "The YouTube playlist was not found (playlistNotFound)."),
     (500, None, "The YouTube Data API answered 500.")],
)  # fmt: skip
def test_the_api_errors_are_one_sentence_for_the_source_never_the_key(monkeypatch, status, fixture, sentence):
    body = (RECORDED / fixture).read_bytes() if fixture else b"{}"

    def refuse(request: Any, timeout: float) -> Any:
        raise urllib.error.HTTPError(request.full_url, status, "error", email.message.Message(), io.BytesIO(body))

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(SourceError) as error:
        list(playlist_videos("PLabcdefghij", "AIza-secret-key"))
    assert str(error.value) == sentence
    assert "AIza-secret-key" not in str(error.value)


class FakeApi:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def fetch(self, video_id: str, languages: tuple[str, ...]) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_a_transcript_is_its_snippets_text():
    snippets = [FetchedTranscriptSnippet(" Hello ", 0, 1), FetchedTranscriptSnippet("", 1, 1),
                FetchedTranscriptSnippet("world", 2, 1)]  # fmt: skip
    assert transcript("vid00000001", api=FakeApi(snippets)) == "Hello\nworld"


@pytest.mark.parametrize(
    ("error", "reason"),
    [(IpBlocked("v"), "YouTube blocked the request"), (TranscriptsDisabled("v"), "Transcripts are disabled"),
     (VideoUnavailable("v"), "The video is unavailable")],
)  # fmt: skip
def test_a_blocked_or_transcript_less_video_is_unavailable_with_its_reason(error, reason):
    with pytest.raises(Unavailable, match=reason):
        transcript("vid00000001", api=FakeApi(error))
