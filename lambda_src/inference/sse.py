"""OpenAI's streamed chat completion as server-sent events: ``data: <chat.completion.chunk>`` lines, one id for
every chunk of an answer, ``delta.role`` first, then content or tool-call pieces, a chunk with the
``finish_reason``, with ``stream_options.include_usage`` one last chunk holding ``usage`` and ``choices: []``,
then ``data: [DONE]``. An error after the first byte is one ``data: {"error": {...}}`` event (OpenAI's error
shape; the openai SDK raises it as an APIError) and the stream ends."""

from __future__ import annotations

import json
from typing import Any

DONE = b"data: [DONE]\n\n"
CONTENT_TYPE = "text/event-stream; charset=utf-8"


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class ChunkWriter:
    """The chunks of one answer: ``chatcmpl-<request id>``, one ``created`` time and model."""

    __slots__ = ("_base", "_include_usage")

    def __init__(self, chunk_id: str, created: int, model: str, *, include_usage: bool) -> None:
        self._base = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model}
        self._include_usage = include_usage

    @property
    def include_usage(self) -> bool:
        return self._include_usage

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data: dict[str, Any] = {**self._base,
                                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                             "finish_reason": finish_reason}]}  # fmt: skip
        if self._include_usage:
            data["usage"] = None  # as OpenAI: every chunk but the last has a null usage
        return event(data)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return event({**self._base, "choices": [],
                      "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                "total_tokens": prompt_tokens + completion_tokens}})  # fmt: skip


def tool_call_delta(index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """One entry of ``delta.tool_calls``: the first piece of a call names it, later ones add arguments."""
    if call_id or name:
        return {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    return {"index": index, "function": {"arguments": arguments}}
