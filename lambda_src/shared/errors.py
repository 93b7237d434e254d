"""Errors in OpenAI's shape: {"error": {"message", "type", "code", "param"}}, with the HTTP status to send."""

from __future__ import annotations

from typing import Any

from lambda_src.contracts.api import error_body


class ApiError(Exception):
    """An answer in the API's error shape: HTTP status, message, OpenAI error type and code, extra headers."""

    def __init__(self, status: int, message: str, type: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code)  # str(error) never carries the message (it may echo the request)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.headers = headers or {}

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


def rate_limited(message: str, retry_after: int | None = None) -> ApiError:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return ApiError(429, message, "rate_limit_error", "rate_limit_exceeded", headers)


def upstream_error(message: str = "The model returned an error; try again later.") -> ApiError:
    return ApiError(502, message, "upstream_error", "upstream_error")


def upstream_timeout(message: str = "The model did not answer in time; try again or ask for fewer tokens.") -> ApiError:
    return ApiError(504, message, "upstream_error", "upstream_timeout")


def audit_unavailable() -> ApiError:
    """Required audit mode: no record, no model output."""
    return ApiError(503, "The request could not be recorded in the audit log; try again later.", "server_error",
                    "audit_unavailable")  # fmt: skip


def server_error(message: str = "The server could not handle the request.") -> ApiError:
    return ApiError(500, message, "server_error", "internal_error")
