"""ConverseStream answers as Bedrock sends them: AWS event-stream messages (prelude, headers, JSON payload,
CRCs) on the HTTP response, parsed by botocore's own event-stream parser. botocore's Stubber cannot stub an
event-stream member, so a ``before-send`` handler answers the HTTP request instead."""

from __future__ import annotations

import binascii
import json
import struct
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.awsrequest import AWSResponse


def _header(name: str, value: str) -> bytes:
    data = name.encode()
    encoded = value.encode()
    return bytes([len(data)]) + data + b"\x07" + struct.pack(">H", len(encoded)) + encoded  # 7: string


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message (binary framing of application/vnd.amazon.eventstream)."""
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + encoded + payload
    return body + struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return message({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                   json.dumps(payload).encode())  # fmt: skip


def exception(kind: str, text: str) -> bytes:
    return message({":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"},
                   json.dumps({"message": text}).encode())  # fmt: skip


class RawBody:
    """What botocore reads a streamed body from (urllib3's response: ``stream()``, ``read()``, ``close()``)."""

    def __init__(self, chunks: Sequence[bytes | Exception]) -> None:
        self.chunks = chunks
        self.closed = False

    def stream(self, amt: int = 1024, decode_content: bool = False) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.closed:
                return
            if isinstance(chunk, Exception):  # the connection fails here (as urllib3 raises it)
                raise chunk
            yield chunk

    def read(self, amt: int | None = None) -> bytes:
        return b"".join(chunk for chunk in self.chunks if isinstance(chunk, bytes))

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        self.closed = True


def answer_with(client: Any, messages: Sequence[bytes | Exception]) -> RawBody:
    """The next ConverseStream call of ``client`` gets ``messages`` (one network chunk each; an exception is
    raised where it stands, as a failing connection would)."""
    body = RawBody(messages)

    def send(request: Any, **_: Any) -> AWSResponse:
        headers = {"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": "stub"}
        return AWSResponse(request.url, 200, headers, body)

    client.meta.events.register_first("before-send.bedrock-runtime.ConverseStream", send, unique_id="stub-stream")
    return body


def text_answer(pieces: list[str], *, stop: str = "end_turn", usage: tuple[int, int] = (12, 7)) -> list[bytes]:
    return [
        event("messageStart", {"role": "assistant"}),
        *(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}) for piece in pieces),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": stop}),
        event("metadata", {"usage": {"inputTokens": usage[0], "outputTokens": usage[1], "totalTokens": sum(usage)},
                           "metrics": {"latencyMs": 10}}),
    ]  # fmt: skip
