"""Errors in OpenAI's shape: {"error": {"message", "type", "code", "param"}}, with the HTTP status to send."""

from __future__ import annotations

from typing import Any

from lambda_src.contracts.api import error_body


class ApiError(Exception):
    """An answer in the API's error shape: HTTP status, message, OpenAI error type and code, extra headers."""

    def __init__(self, status: int, message: str, type: str, code: str, headers: dict[str, str] | None = None,
                 *, retryable: bool = False) -> None:  # fmt: skip
        """``retryable``: a model's throttling, timeout or 5xx, after which the next model of the list may be tried
        (never a 4xx: the request, or the deployment, is what is wrong)."""
        super().__init__(status, code)  # str(error) never carries the message (it may echo the request)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.headers = headers or {}
        self.retryable = retryable

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.code)


def invalid_request(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(400, message, "invalid_request_error", code)


def unauthorized() -> ApiError:
    """Exactly what API Gateway answers without a valid key (its UNAUTHORIZED gateway response)."""
    # Imported on this rare path only: the gateway's answers are not needed to serve a request.
    from lambda_src.contracts.gateway import GATEWAY_ERRORS  # noqa: PLC0415

    status, error_type, code, message = GATEWAY_ERRORS["UNAUTHORIZED"]
    return ApiError(int(status), message, error_type, code)


def not_found(message: str, code: str = "not_found") -> ApiError:
    return ApiError(404, message, "invalid_request_error", code)


def rate_limited(message: str, retry_after: int | None = None, *, retryable: bool = True) -> ApiError:
    """429 rate_limit_exceeded: a model's throttling (``retryable``: the next model may answer), or a key's own
    tokens-per-minute limit."""
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return ApiError(429, message, "rate_limit_error", "rate_limit_exceeded", headers, retryable=retryable)


def insufficient_quota(message: str, retry_after: int | None = None) -> ApiError:
    """429 in OpenAI's shape for a spent budget (tokens per day or month, or the month's cost ceiling)."""
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return ApiError(429, message, "insufficient_quota", "insufficient_quota", headers)


def upstream_error(message: str = "The model returned an error; try again later.", *,
                   retryable: bool = True) -> ApiError:  # fmt: skip
    """502: the model failed (``retryable``: a 5xx or a broken connection, the next model may answer) or refused the
    deployment itself (access denied, no such model: not retryable, a fallback would hide it)."""
    return ApiError(502, message, "upstream_error", "upstream_error", retryable=retryable)


def upstream_timeout(message: str = "The model did not answer in time; try again or ask for fewer tokens.") -> ApiError:
    return ApiError(504, message, "upstream_error", "upstream_timeout", retryable=True)


def audit_unavailable() -> ApiError:
    """Required audit mode: no record, no model output."""
    return ApiError(503, "The request could not be recorded in the audit log; try again later.", "server_error",
                    "audit_unavailable")  # fmt: skip


def server_error(message: str = "The server could not handle the request.") -> ApiError:
    return ApiError(500, message, "server_error", "internal_error")
