"""What a handler returns to stream, and the HTTP framing API Gateway's STREAM integration (and Function URLs)
read: a JSON prelude (status and headers), 8 NUL bytes, then the body as it is produced.

A handler returns either a proxy response dict (``{"statusCode", "headers", "body", "isBase64Encoded"}``) or a
StreamingResponse. Under the streaming loop (loop.py) both are framed, the latter chunk by chunk; under the
managed runtime (streaming switched off) the handler returns ``StreamingResponse.buffered()`` instead.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

# Lambda's content type for a framed HTTP integration response (Runtime API, response streaming).
CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
DELIMITER = b"\0" * 8
# API Gateway and Function URLs need the delimiter within the first 16 KB of the response.
MAX_PRELUDE_BYTES = 16 * 1024
_PRELUDE_FIELDS = ("statusCode", "headers", "multiValueHeaders", "cookies")


class StreamingResponse:
    """Status and headers, then the body as an iterator of byte chunks.

    ``close()`` stops the body early: the streaming loop calls it when the response can no longer be sent
    (the client went away), which raises GeneratorExit inside a generator body at the ``yield`` it waits in.
    """

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], body: Iterator[bytes]) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body

    def prelude(self) -> bytes:
        return prelude({"statusCode": self.status_code, "headers": self.headers})

    def chunks(self) -> Iterator[bytes]:
        """The framed response as it is sent: the prelude with the body's first piece (a body failing at its
        first step fails before the first byte), then each further piece."""
        body = iter(self.body)
        yield self.prelude() + next(body, b"")
        yield from body

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()

    def buffered(self) -> dict[str, Any]:
        """The whole response as one proxy response (for a buffered integration)."""
        data = b"".join(self.body)
        return {"statusCode": self.status_code, "headers": dict(self.headers),
                "body": data.decode("utf-8"), "isBase64Encoded": False}  # fmt: skip


def prelude(result: dict[str, Any]) -> bytes:
    """The prelude of a proxy response: its status and header fields (never the body) + the delimiter.

    ValueError when it would pass the 16 KB the gateway reads the delimiter within."""
    data = json.dumps({name: result[name] for name in _PRELUDE_FIELDS if name in result}).encode() + DELIMITER
    if len(data) > MAX_PRELUDE_BYTES:
        raise ValueError(f"The response prelude is {len(data)} bytes; the limit is {MAX_PRELUDE_BYTES}.")
    return data


def frame(result: dict[str, Any]) -> bytes:
    """A buffered proxy response, framed whole: prelude, delimiter, body (decoded when base64)."""
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return prelude(result) + data
