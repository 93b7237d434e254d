"""The YouTube source: a playlist's videos through the YouTube Data API v3 (playlistItems.list, an API key),
and a video's transcript through the maintained youtube-transcript-api library (optionally via a proxy:
YouTube blocks many cloud IP ranges, Lambda's among them).

A video without a transcript, unavailable, or blocked is an ``Unavailable`` answer for that video; a
missing key, a refused key or an unknown playlist is a ``SourceError`` for the YouTube source only.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from lambda_src.knowledge.errors import TransientError

PLAYLIST_ITEMS_URL = "https://www.googleapis.com/youtube/v3/playlistItems"
WATCH_URL = "https://www.youtube.com/watch?v="
MAX_PAGES = 100  # 5,000 videos per playlist
_TIMEOUT = 15


class SourceError(Exception):
    """The whole source cannot be read this run (the message names why, never the key)."""


class Unavailable(Exception):  # noqa: N818 - an answer about one video, not a failure of the run
    """No transcript for this video (disabled, missing, unavailable, blocked); the message says which."""


class Video(NamedTuple):
    video_id: str
    title: str
    # Changes when the playlist item changes (the manifest's version of the video).
    etag: str
    playlist_id: str


def playlist_videos(playlist_id: str, api_key: str, *, get: Callable[[str], Any] | None = None) -> Iterator[Video]:
    """Every video of the playlist, page by page. ``get`` fetches a URL as JSON (tests pass recorded answers)."""
    fetch = get or _get_json
    page_token = ""
    for _ in range(MAX_PAGES):
        query = {"part": "snippet", "playlistId": playlist_id, "maxResults": "50", "key": api_key,
                 "fields": "nextPageToken,items(etag,snippet(title,resourceId/videoId))"}  # fmt: skip
        if page_token:
            query["pageToken"] = page_token
        answer = fetch(f"{PLAYLIST_ITEMS_URL}?{urllib.parse.urlencode(query)}")
        for item in answer.get("items", []):
            snippet = item.get("snippet") or {}
            video_id = (snippet.get("resourceId") or {}).get("videoId")
            if isinstance(video_id, str) and video_id:
                yield Video(video_id, str(snippet.get("title") or video_id), str(item.get("etag") or ""), playlist_id)
        page_token = answer.get("nextPageToken") or ""
        if not page_token:
            return


def _get_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - fixed https URL
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
            return json.loads(response.read(8 * 1024 * 1024))
    except urllib.error.HTTPError as error:
        raise SourceError(_api_error(error)) from None
    except (urllib.error.URLError, OSError, ValueError):
        raise SourceError("The YouTube Data API could not be reached.") from None


def _api_error(error: urllib.error.HTTPError) -> str:
    reason = ""
    try:
        details = json.loads(error.read(64 * 1024)).get("error", {})
        reason = str((details.get("errors") or [{}])[0].get("reason") or details.get("status") or "")
    except (ValueError, AttributeError, IndexError, TypeError):
        pass
    if error.code in (400, 403) and reason in (
        "keyInvalid",
        "badRequest",
        "API_KEY_INVALID",
        "forbidden",
        "accessNotConfigured",
        "INVALID_ARGUMENT",
        "PERMISSION_DENIED",
    ):
        return f"The YouTube Data API refused the API key ({reason})."  # fmt: skip
    if error.code == 404:
        return "The YouTube playlist was not found (playlistNotFound)."
    if error.code == 403 and reason == "quotaExceeded":
        return "The YouTube Data API quota is exhausted for today (quotaExceeded)."
    return f"The YouTube Data API answered {error.code}{f' ({reason})' if reason else ''}."


def transcript(video_id: str, *, languages: tuple[str, ...] = ("en",), proxy: dict[str, str] | None = None,
               api: Any = None) -> str:  # fmt: skip
    """The video's transcript as text; raises Unavailable with the reason."""
    from requests.exceptions import RequestException  # noqa: PLC0415 - the layer's, only for videos
    from youtube_transcript_api import YouTubeTranscriptApi  # noqa: PLC0415
    from youtube_transcript_api._errors import (  # noqa: PLC0415
        CouldNotRetrieveTranscript,
        IpBlocked,
        NoTranscriptFound,
        RequestBlocked,
        TranscriptsDisabled,
        VideoUnavailable,
    )
    from youtube_transcript_api.proxies import GenericProxyConfig  # noqa: PLC0415

    if api is None:
        config = None
        if proxy:
            config = GenericProxyConfig(http_url=proxy.get("http_url"), https_url=proxy.get("https_url"))
        api = YouTubeTranscriptApi(proxy_config=config)
    try:
        fetched = api.fetch(video_id, languages=languages)
    except (IpBlocked, RequestBlocked):
        raise Unavailable("YouTube blocked the request (cloud IP ranges often are; set the proxy secret).") from None
    except TranscriptsDisabled:
        raise Unavailable("Transcripts are disabled for this video.") from None
    except NoTranscriptFound:
        raise Unavailable(f"The video has no transcript in {', '.join(languages)}.") from None
    except VideoUnavailable:
        raise Unavailable("The video is unavailable.") from None
    except CouldNotRetrieveTranscript as error:
        raise Unavailable(f"The transcript could not be retrieved ({type(error).__name__}).") from None
    except RequestException:
        raise TransientError("YouTube could not be reached for the transcript.") from None
    return "\n".join(snippet.text.strip() for snippet in fetched if snippet.text.strip())
