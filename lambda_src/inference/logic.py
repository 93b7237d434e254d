"""Routes, request validation and OpenAI-shaped responses: plain Python, no AWS calls of its own.

Every outcome is a well-formed JSON response: client faults are 4xx in OpenAI's error shape, upstream
faults 5xx; nothing echoes a stack trace, a secret or anything but the caller's own request.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .audit import AuditEvent, AuditFailedError, AuditWriter
from .config import ModelSettings
from .errors import ApiError, invalid_request, not_found, server_error
from .models import Completion, CompletionRequest, Message, ModelClient

LOGGER = logging.getLogger(__name__)

MAX_MESSAGES = 256
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 200
MAX_USER_CHARS = 256
_ROLES = {"system", "developer", "user", "assistant"}
INFERENCE_ROUTES = ("/chat/completions", "/model")
_UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call", "logprobs", "response_format", "audio")


class SettingsSource(Protocol):
    def settings(self) -> ModelSettings: ...


@dataclass(frozen=True)
class Caller:
    """Who called, from the authorizer: the key's id and owner (never the key itself)."""

    key_id: str
    owner: str


@dataclass
class Outcome:
    """The proxy response plus what the handler logs and measures."""

    response: dict[str, Any]
    status: int
    route: str
    caller: Caller
    request_id: str
    error_type: str | None = None
    model_id: str | None = None
    usage: Completion | None = field(default=None, repr=False)
    session_id: str | None = None
    provider: str | None = None
    # What the audit log may keep (the writer applies the stage's privacy setting).
    input_text: str = field(default="", repr=False)
    output_text: str = field(default="", repr=False)
    audit_failed: bool = False


class Api:
    def __init__(
        self,
        config: SettingsSource,
        model_for: Callable[[ModelSettings], ModelClient],
        *,
        max_body_bytes: int,
        cors_origins: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
        audit: AuditWriter | None = None,
    ) -> None:
        self._audit = audit
        self._config = config
        self._model_for = model_for
        self._max_body_bytes = max_body_bytes
        self._cors_origins = cors_origins
        self._clock = clock
        self._routes: dict[str, dict[str, Callable[[dict[str, Any], Outcome], dict[str, Any]]]] = {
            "/models": {"GET": self._models},
            "/chat/completions": {"POST": self._chat},
            "/model": {"POST": self._simple},
        }

    def handle(self, event: Any) -> Outcome:
        started = time.perf_counter()
        outcome = self._handle(event if isinstance(event, dict) else {})
        if self._audit is not None and outcome.route in INFERENCE_ROUTES:
            self._write_audit(outcome, int((time.perf_counter() - started) * 1000), event)
        return outcome

    def _write_audit(self, outcome: Outcome, latency_ms: int, event: Any) -> None:
        assert self._audit is not None  # noqa: S101 - checked by the caller
        usage = outcome.usage
        record = AuditEvent(
            request_id=outcome.request_id, api_key_id=outcome.caller.key_id, user_id=outcome.caller.owner,
            session_id=outcome.session_id, model_id=outcome.model_id, provider=outcome.provider,
            input_text=outcome.input_text, output_text=outcome.output_text if outcome.status == 200 else "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_ms=latency_ms, status_code=outcome.status, error_type=outcome.error_type,
        )  # fmt: skip
        try:
            outcome.audit_failed = not self._audit.write(record)
        except AuditFailedError:
            outcome.audit_failed = True
            if outcome.status == 200:
                # Required audit: no record, no release of the model's output.
                failure = ApiError(503, "The request could not be recorded in the audit log; try again later.",
                                   "server_error", "audit_unavailable")  # fmt: skip
                outcome.error_type = failure.code
                self._finish(outcome, failure.status, failure.body(), event if isinstance(event, dict) else {})

    def _handle(self, event: dict[str, Any]) -> Outcome:
        context = _mapping(event.get("requestContext"))
        authorizer = _mapping(context.get("authorizer"))
        caller = Caller(key_id=_text(authorizer.get("keyId")), owner=_text(authorizer.get("owner")))
        route = _route(event)
        outcome = Outcome(response={}, status=0, route=route, caller=caller,
                          request_id=_text(context.get("requestId")) or "local")  # fmt: skip
        try:
            methods = self._routes.get(route)
            if methods is None:
                raise not_found(f"Unknown route {route[:100]!r}.", "unknown_route")
            action = methods.get(_text(event.get("httpMethod")).upper())
            if action is None:
                raise ApiError(405, f"Use {', '.join(methods)} on {route}.", "invalid_request_error",
                               "method_not_allowed", {"Allow": ", ".join(methods)})  # fmt: skip
            body = action(event, outcome)
            return self._finish(outcome, 200, body, event)
        except ApiError as error:
            outcome.error_type = error.code
            return self._finish(outcome, error.status, error.body(), event, error.headers)
        except Exception as error:  # a bug must still answer in the documented shape
            LOGGER.error("Unhandled %s on %s", type(error).__name__, route)
            failure = server_error()
            outcome.error_type = failure.code
            return self._finish(outcome, failure.status, failure.body(), event)

    # --- routes -----------------------------------------------------------------------------------

    def _models(self, _event: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        settings = self._config.settings()
        outcome.model_id = settings.model_id
        return {
            "object": "list",
            "data": [{"id": settings.model_id, "object": "model", "created": 0, "owned_by": settings.provider}],
        }

    def _chat(self, event: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        body = self._json_body(event)
        if body.get("stream") is True:
            raise invalid_request("Streaming is not yet enabled on this API; send the request with stream: false.",
                                  "streaming_not_supported")  # fmt: skip
        for name in _UNSUPPORTED:
            if body.get(name) is not None:
                raise invalid_request(f"'{name}' is not supported by this API.", "unsupported_parameter")
        n = body.get("n", 1)
        if n is not None and (not _is_int(n) or n != 1):
            raise invalid_request("'n' must be 1: this API returns one choice.", "unsupported_parameter")
        settings = self._config.settings()
        self._check_model(body.get("model"), settings)
        system, messages = _messages(body.get("messages"))
        outcome.input_text = json.dumps(
            [{"role": "system", "content": text} for text in system]
            + [{"role": m.role, "content": m.content} for m in messages],
            ensure_ascii=False,
        )
        user = body.get("user")
        if user is not None and (not isinstance(user, str) or len(user) > MAX_USER_CHARS):
            raise invalid_request(f"'user' must be a string of at most {MAX_USER_CHARS} characters.")
        outcome.session_id = _session_id(event, user)
        request = CompletionRequest(
            model_id=settings.model_id,
            system=(settings.system_prompt, *system),
            messages=messages,
            temperature=_bounded(body, "temperature", settings.temperature, 0.0, 1.0, low_inclusive=True),
            top_p=_bounded(body, "top_p", settings.top_p, 0.0, 1.0, low_inclusive=False),
            max_tokens=_max_tokens(body, settings),
            stop=_stop(body.get("stop")),
            timeout_seconds=settings.request_timeout_seconds,
        )
        completion = self._complete(request, settings, outcome)
        return {
            "id": f"chatcmpl-{outcome.request_id}",
            "object": "chat.completion",
            "created": int(self._clock()),
            "model": settings.model_id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": completion.text},
                    "finish_reason": completion.finish_reason,
                }
            ],
            "usage": _usage(completion),
        }

    def _simple(self, event: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        body = self._json_body(event)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise invalid_request("'prompt' must be a non-empty string.")
        outcome.input_text = prompt
        settings = self._config.settings()
        outcome.session_id = _session_id(event, None)
        request = CompletionRequest(
            model_id=settings.model_id,
            system=(settings.system_prompt,),
            messages=(Message("user", prompt),),
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_output_tokens,
            stop=(),
            timeout_seconds=settings.request_timeout_seconds,
        )
        completion = self._complete(request, settings, outcome)
        return {"completion": completion.text, "model": settings.model_id, "usage": _usage(completion)}

    # --- helpers ----------------------------------------------------------------------------------

    def _complete(self, request: CompletionRequest, settings: ModelSettings, outcome: Outcome) -> Completion:
        outcome.model_id = settings.model_id
        outcome.provider = settings.provider
        completion = self._model_for(settings).complete(request)
        outcome.usage = completion
        outcome.output_text = completion.text
        return completion

    def _check_model(self, requested: Any, settings: ModelSettings) -> None:
        if requested is None:
            return
        if not isinstance(requested, str):
            raise invalid_request("'model' must be a string.")
        if requested != settings.model_id:
            raise not_found(f"The model {requested[:200]!r} is not served here; GET /models lists the models.",
                            "model_not_found")  # fmt: skip

    def _json_body(self, event: dict[str, Any]) -> dict[str, Any]:
        raw = event.get("body")
        if raw is None or raw == "":
            raise invalid_request("The request needs a JSON body.")
        if not isinstance(raw, str):
            raise invalid_request("The request body must be JSON text.")
        data: bytes
        if event.get("isBase64Encoded") is True:
            if len(raw) > self._max_body_bytes * 4 // 3 + 4:
                raise _too_large(self._max_body_bytes)
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise invalid_request("The request body is not valid base64.") from None
        else:
            data = raw.encode("utf-8", "surrogatepass")
        if len(data) > self._max_body_bytes:
            raise _too_large(self._max_body_bytes)
        try:
            body = json.loads(data)
        except (ValueError, RecursionError):
            raise invalid_request("The request body is not valid JSON.", "invalid_json") from None
        if not isinstance(body, dict):
            raise invalid_request("The request body must be a JSON object.")
        return body

    def _finish(self, outcome: Outcome, status: int, body: dict[str, Any], event: dict[str, Any],
                extra_headers: dict[str, str] | None = None) -> Outcome:  # fmt: skip
        headers = {"Content-Type": "application/json", "X-Request-Id": outcome.request_id,
                   "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}  # fmt: skip
        headers.update(extra_headers or {})
        origin = _header(event, "origin")
        if origin and origin in self._cors_origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"
        outcome.status = status
        outcome.response = {
            "statusCode": status,
            "headers": headers,
            "body": json.dumps(body, ensure_ascii=False),
            "isBase64Encoded": False,
        }
        return outcome


def _route(event: dict[str, Any]) -> str:
    # API Gateway gives the matched resource; fall back to the path without the stage prefix.
    route = event.get("resource") or event.get("path") or ""
    route = route if isinstance(route, str) else ""
    if route.startswith("/v1/"):
        route = route[3:]
    return route.rstrip("/") or "/"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _header(event: dict[str, Any], name: str) -> str:
    headers = event.get("headers")
    if not isinstance(headers, dict):
        return ""
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return ""


def _session_id(event: dict[str, Any], user: str | None) -> str | None:
    session = _header(event, "x-session-id")[:MAX_USER_CHARS]
    return session or user or None


def _messages(raw: Any) -> tuple[tuple[str, ...], tuple[Message, ...]]:
    if not isinstance(raw, list) or not raw:
        raise invalid_request("'messages' must be a non-empty list.", "invalid_messages")
    if len(raw) > MAX_MESSAGES:
        raise invalid_request(f"'messages' may hold at most {MAX_MESSAGES} entries.", "invalid_messages")
    system: list[str] = []
    turns: list[Message] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise invalid_request(f"messages[{index}] must be an object.", "invalid_messages")
        role = item.get("role")
        if role not in _ROLES:
            raise invalid_request(f"messages[{index}].role must be one of {', '.join(sorted(_ROLES))}.",
                                  "invalid_messages")  # fmt: skip
        text = _content_text(item.get("content"), index)
        if role in ("system", "developer"):
            system.append(text)
        elif turns and turns[-1].role == role:
            # Bedrock needs alternating turns: merge consecutive messages of one role.
            turns[-1] = Message(role, turns[-1].content + "\n\n" + text)
        else:
            turns.append(Message(role, text))
    if not turns or turns[0].role != "user":
        raise invalid_request("The conversation must start with a user message.", "invalid_messages")
    return tuple(system), tuple(turns)


def _content_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise invalid_request(f"messages[{index}].content may only hold text parts.", "invalid_messages")
            parts.append(part["text"])
        text = "".join(parts)
    else:
        raise invalid_request(f"messages[{index}].content must be a string or a list of text parts.",
                              "invalid_messages")  # fmt: skip
    if not text.strip():
        raise invalid_request(f"messages[{index}].content must not be empty.", "invalid_messages")
    return text


def _bounded(body: dict[str, Any], name: str, default: float, low: float, high: float, *, low_inclusive: bool) -> float:
    value = body.get(name)
    if value is None:
        return default
    in_range = _is_number(value) and (value >= low if low_inclusive else value > low) and value <= high
    if not in_range:
        bound = "from" if low_inclusive else "greater than"
        raise invalid_request(f"'{name}' must be a number {bound} {low:g} up to {high:g}.", "value_out_of_range")
    return float(value)


def _max_tokens(body: dict[str, Any], settings: ModelSettings) -> int:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return settings.max_output_tokens
    if not _is_int(value) or not 1 <= value <= settings.max_output_tokens:
        raise invalid_request(f"'max_tokens' must be a whole number from 1 to {settings.max_output_tokens}.",
                              "value_out_of_range")  # fmt: skip
    return int(value)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list)
        or len(items) > MAX_STOP_SEQUENCES
        or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in items)
    ):
        raise invalid_request(f"'stop' must be a string or a list of at most {MAX_STOP_SEQUENCES} non-empty strings.")
    return tuple(items)


def _usage(completion: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than {limit} bytes.", "invalid_request_error",
                    "request_too_large")  # fmt: skip
