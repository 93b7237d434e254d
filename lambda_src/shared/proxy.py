"""API Gateway proxy events and responses: headers, JSON bodies within a size limit, JSON answers."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from lambda_src.contracts.gateway import EXPOSED_HEADERS
from lambda_src.shared.errors import ApiError, invalid_request


def header(event: dict[str, Any], name: str) -> str:
    """A request header by case-insensitive name; "" when absent or malformed."""
    headers = event.get("headers")
    if not isinstance(headers, dict):
        return ""
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted and isinstance(value, str):
            return value
    return ""


def json_body(event: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object; 400 when missing or malformed, 413 past ``max_bytes`` (after base64)."""
    raw = event.get("body")
    if raw is None or raw == "":
        raise invalid_request("The request needs a JSON body.")
    if not isinstance(raw, str):
        raise invalid_request("The request body must be JSON text.")
    data: bytes
    if event.get("isBase64Encoded") is True:
        if len(raw) > max_bytes * 4 // 3 + 4:
            raise too_large(max_bytes)
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise invalid_request("The request body is not valid base64.") from None
    else:
        data = raw.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    try:
        body = json.loads(data, parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise invalid_request("The request body is not valid JSON.", "invalid_json") from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    return body


def _not_json(constant: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259), though Python's parser accepts them."""
    raise ValueError(constant)


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than {limit} bytes.", "invalid_request_error",
                    "request_too_large")  # fmt: skip


def json_response(
    status: int, body: dict[str, Any], *, request_id: str, origin: str, cors_origins: tuple[str, ...],
    extra_headers: dict[str, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A proxy response that is never cached, with CORS only for an allowed origin."""
    headers = response_headers("application/json", request_id=request_id, origin=origin, cors_origins=cors_origins,
                               extra_headers=extra_headers)  # fmt: skip
    return {"statusCode": status, "headers": headers, "body": json.dumps(body, ensure_ascii=False),
            "isBase64Encoded": False}  # fmt: skip


def response_headers(
    content_type: str, *, request_id: str, origin: str, cors_origins: tuple[str, ...],
    extra_headers: dict[str, str] | None = None,
) -> dict[str, str]:  # fmt: skip
    """The headers of every answer (JSON or a stream): never cached, never sniffed, CORS for an allowed origin."""
    headers = {"Content-Type": content_type, "X-Request-Id": request_id, "Cache-Control": "no-store",
               "X-Content-Type-Options": "nosniff"}  # fmt: skip
    headers.update(extra_headers or {})
    if origin and origin in cors_origins:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        headers["Vary"] = "Origin"
    return headers
