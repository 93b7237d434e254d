"""The inference function's operations, dispatched on the route table: plain Python, no AWS calls of its own.

Which requests reach which operation, and which bodies are valid, comes from lambda_src/contracts
(ROUTES and the request schemas API Gateway validates with too); this module adds what a schema cannot
say (the configured model and token limit, a conversation that starts with the user). Every outcome is a
well-formed JSON response: client faults are 4xx in OpenAI's error shape, upstream faults 5xx; nothing
echoes a stack trace, a secret or anything but the caller's own request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from lambda_src.contracts.api import (
    CONTEXT_KEY_ID,
    CONTEXT_OWNER,
    SESSION_HEADER,
    STAGE_NAME,
    Route,
    request_schema,
    routes_of,
)
from lambda_src.contracts.audit import session_key
from lambda_src.contracts.schemas import MAX_USER_CHARS
from lambda_src.shared.audit_writer import AuditEvent, AuditFailedError, AuditWriter
from lambda_src.shared.config_source import ModelSettings
from lambda_src.shared.errors import ApiError, audit_unavailable, invalid_request, not_found, server_error, unauthorized
from lambda_src.shared.logs import frames
from lambda_src.shared.models import Completion, CompletionRequest, Message, ModelClient
from lambda_src.shared.proxy import header, json_body, json_response
from lambda_src.shared.validation import Schema, request_error

if TYPE_CHECKING:
    from lambda_src.inference.streaming import Streams
    from lambda_src.shared.runtime.response import StreamingResponse

    Operation = Callable[[dict[str, Any], dict[str, Any], "Outcome"], "dict[str, Any] | StreamingResponse"]
    OnFinish = Callable[["Outcome"], None]

LOGGER = logging.getLogger(__name__)

FUNCTION = "inference"
# Parameters of OpenAI's API this one refuses clearly rather than ignore (README lists them).
_UNSUPPORTED = ("functions", "function_call", "logprobs", "top_logprobs", "response_format", "audio", "modalities",
                "prediction", "logit_bias")  # fmt: skip


class SettingsSource(Protocol):
    def settings(self) -> ModelSettings: ...


class Caller(NamedTuple):
    """Who called, from the authorizer: the key's id and owner (never the key itself)."""

    key_id: str
    owner: str


class ModelCallHooks:
    """The seam around every model call, buffered or streamed (a subclass overrides what it needs): ``before``
    may refuse the call (raise ApiError; e.g. a budget reservation), ``after`` runs exactly once when a call
    that ``before`` let through is over, whatever happened (e.g. the settlement of the actual usage:
    ``outcome.usage``, ``outcome.disconnected``, ``outcome.error_type``). This base class does nothing."""

    def before(self, request: CompletionRequest, outcome: Outcome) -> None:
        return None

    def after(self, request: CompletionRequest, outcome: Outcome) -> None:
        return None


class Outcome:
    """The response plus what the handler logs and measures (filled in as the request goes).

    ``response`` is the proxy response of a JSON answer; a streamed answer is ``stream`` instead, a
    StreamingResponse whose body fills in the rest of the outcome as it is sent: the ``on_finish`` callback given
    to ``Api.handle`` runs when the outcome is final."""

    __slots__ = ("audit_failed", "audited", "caller", "disconnected", "error_type", "input_text", "latency_ms",
                 "model_id", "output_text", "provider", "request_id", "response", "route", "session_id", "status",
                 "stream", "streamed", "usage")  # fmt: skip

    def __init__(self, *, route: str, caller: Caller, request_id: str) -> None:
        self.response: dict[str, Any] = {}  # the proxy response of a JSON answer
        self.stream: StreamingResponse | None = None  # or the streamed answer
        self.status = 0
        self.route = route
        self.caller = caller
        self.request_id = request_id
        self.audited = False
        self.error_type: str | None = None
        self.model_id: str | None = None
        self.usage: Completion | None = None
        self.session_id: str | None = None
        self.provider: str | None = None
        # What the audit log may keep (the writer applies the stage's privacy setting).
        self.input_text = ""
        self.output_text = ""
        self.audit_failed = False
        self.streamed = False
        self.disconnected = False
        self.latency_ms = 0.0


class _Endpoint(NamedTuple):
    route: Route
    operation: Operation
    schema: Schema | None


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
        stream_seconds: int = 0,
        hooks: ModelCallHooks | None = None,
    ) -> None:
        """``stream_seconds``: the time budget of a streamed answer (the function's timeout under a STREAM
        integration; under a buffered one the whole stream is sent as one response within API Gateway's 29 s)."""
        self.audit = audit
        self.stream_seconds = stream_seconds
        self.hooks = hooks or ModelCallHooks()
        self._streamer: Streams | None = None
        self._config = config
        self.model_for = model_for
        self._max_body_bytes = max_body_bytes
        self.cors_origins = cors_origins
        self.clock = clock
        operations: dict[str, Operation] = {
            "list_models": self._models,
            "chat_completions": self._chat,
            "prompt": self._prompt,
        }
        self._endpoints: dict[str, dict[str, _Endpoint]] = {}
        for route in routes_of(FUNCTION):
            if route.operation not in operations:
                raise ValueError(f"Route {route.method} {route.path} names operation {route.operation!r}, which the "
                                 f"{FUNCTION} function does not have.")  # fmt: skip
            schema = request_schema(route)
            self._endpoints.setdefault(route.path, {})[route.method] = _Endpoint(
                route, operations.pop(route.operation), Schema(schema) if schema else None
            )
        if operations:
            raise ValueError(f"Operations {sorted(operations)} of the {FUNCTION} function have no route.")

    def handle(self, event: Any, on_finish: OnFinish | None = None) -> Outcome:
        """The outcome of one request. ``on_finish(outcome)`` runs once the outcome is final: before this returns
        for a buffered answer, when the body has been sent (or abandoned) for a streamed one."""
        started = time.perf_counter()
        outcome = self._handle(event if isinstance(event, dict) else {}, started, on_finish)
        if not outcome.streamed:
            if self.audit is not None and outcome.audited:
                self._write_audit(outcome, started, event)
            self.finished(outcome, started, on_finish)
        return outcome

    def finished(self, outcome: Outcome, started: float, on_finish: OnFinish | None) -> None:
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        if on_finish is not None:
            on_finish(outcome)

    def audit_event(self, outcome: Outcome, started: float, phase: str | None = None) -> AuditEvent:
        usage = outcome.usage
        released = outcome.status == 200 or outcome.streamed
        event = AuditEvent(
            request_id=outcome.request_id, api_key_id=outcome.caller.key_id, user_id=outcome.caller.owner,
            session_id=outcome.session_id, model_id=outcome.model_id, provider=outcome.provider,
            input_text=outcome.input_text, output_text=outcome.output_text if released else "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_ms=int((time.perf_counter() - started) * 1000), status_code=outcome.status,
            error_type=outcome.error_type, streamed=outcome.streamed, disconnected=outcome.disconnected,
        )  # fmt: skip
        return event._replace(phase=phase) if phase else event

    def _write_audit(self, outcome: Outcome, started: float, event: Any) -> None:
        assert self.audit is not None  # noqa: S101 - checked by the caller
        try:
            written = self.audit.write(self.audit_event(outcome, started))
            outcome.audit_failed = outcome.audit_failed or not written
        except AuditFailedError:
            outcome.audit_failed = True
            if outcome.status == 200:
                # Required audit: no record, no release of the model's output.
                self._refuse_unaudited(outcome, event if isinstance(event, dict) else {})

    def _refuse_unaudited(self, outcome: Outcome, event: dict[str, Any]) -> None:
        failure = audit_unavailable()
        outcome.error_type = failure.code
        self._finish(outcome, failure.status, failure.body(), event)

    def _handle(self, event: dict[str, Any], started: float, on_finish: OnFinish | None) -> Outcome:
        context = _mapping(event.get("requestContext"))
        authorizer = _mapping(context.get("authorizer"))
        caller = Caller(key_id=_text(authorizer.get(CONTEXT_KEY_ID)), owner=_text(authorizer.get(CONTEXT_OWNER)))
        path = _route(event)
        outcome = Outcome(route=path, caller=caller, request_id=_text(context.get("requestId")) or "local")
        try:
            if not caller.key_id:
                # Only a misconfigured method (no authorizer) or a direct invoke gets here: never serve anonymously.
                raise unauthorized()
            methods = self._endpoints.get(path)
            if methods is None:
                raise not_found(f"Unknown route {path[:100]!r}.", "unknown_route")
            # Every request to a model route is recorded, a wrong method too.
            outcome.audited = any(endpoint.route.audited for endpoint in methods.values())
            endpoint = methods.get(_text(event.get("httpMethod")).upper())
            if endpoint is None:
                raise ApiError(405, f"Use {', '.join(methods)} on {path}.", "invalid_request_error",
                               "method_not_allowed", {"Allow": ", ".join(methods)})  # fmt: skip
            body: dict[str, Any] = {}
            if endpoint.schema is not None:
                body = json_body(event, self._max_body_bytes)
                violation = endpoint.schema.first_violation(body)
                if violation is not None:
                    raise request_error(violation)
            answer = endpoint.operation(event, body, outcome)
            if not isinstance(answer, dict):  # a StreamingResponse: sent after this returns
                return self._streams().finishing(outcome, answer, started, on_finish)
            return self._finish(outcome, 200, answer, event)
        except ApiError as error:
            outcome.error_type = error.code
            return self._finish(outcome, error.status, error.body(), event, error.headers)
        except Exception as error:  # a bug must still answer in the documented shape
            # Where it failed, never what it said: the message may quote the request or a secret.
            LOGGER.error("unhandled error", extra={"error_type": type(error).__name__, "frames": frames(error),
                                                   "api_request_id": outcome.request_id, "key_id": caller.key_id,
                                                   "route": path[:200]})  # fmt: skip
            failure = server_error()
            outcome.error_type = failure.code
            return self._finish(outcome, failure.status, failure.body(), event)

    # --- operations (bodies already match the route's schema) ---------------------------------------

    def _models(self, _event: dict[str, Any], _body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        settings = self._config.settings()
        outcome.model_id = settings.model_id
        return {
            "object": "list",
            "data": [{"id": settings.model_id, "object": "model", "created": 0, "owned_by": settings.provider}],
        }

    def _chat(
        self, event: dict[str, Any], body: dict[str, Any], outcome: Outcome
    ) -> dict[str, Any] | StreamingResponse:
        for name in _UNSUPPORTED:
            if body.get(name) is not None:
                raise invalid_request(f"'{name}' is not supported by this API.", "unsupported_parameter")
        n = body.get("n", 1)
        if n is not None and (not _is_int(n) or n != 1):
            raise invalid_request("'n' must be 1: this API returns one choice.", "unsupported_parameter")
        settings = self._config.settings()
        self._check_model(body.get("model"), settings)
        # Parsed by a module of its own, loaded with the first chat request (cold start: /models never needs it).
        from lambda_src.inference.chat_request import assistant_message, parse_chat  # noqa: PLC0415

        chat = parse_chat(body)
        outcome.input_text = chat.audit_input
        outcome.session_id = _session_id(event, outcome.caller, body.get("user"))
        request = CompletionRequest(
            model_id=settings.model_id,
            system=(settings.system_prompt, *chat.system),
            messages=chat.messages,
            temperature=float(_given(body, "temperature", settings.temperature)),
            top_p=float(_given(body, "top_p", settings.top_p)),
            max_tokens=_max_tokens(body, settings),
            stop=_stop(body.get("stop")),
            timeout_seconds=settings.request_timeout_seconds,
            tools=chat.tools,
            tool_choice=chat.tool_choice,
            parallel_tool_calls=body.get("parallel_tool_calls") if chat.tools else None,
        )
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            return self._streams().open(request, settings, outcome, event, include_usage=include_usage)
        completion = self._complete(request, settings, outcome)
        return {
            "id": f"chatcmpl-{outcome.request_id}",
            "object": "chat.completion",
            "created": int(self.clock()),
            "model": settings.model_id,
            "choices": [
                {
                    "index": 0,
                    "message": assistant_message(completion.text, completion.tool_calls),
                    "finish_reason": completion.finish_reason,
                }
            ],
            "usage": _usage(completion),
        }

    def _prompt(self, event: dict[str, Any], body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        prompt = body["prompt"]
        if not prompt.strip():
            raise invalid_request("'prompt' must not be blank.")
        outcome.input_text = prompt
        settings = self._config.settings()
        outcome.session_id = _session_id(event, outcome.caller, None)
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
        self.hooks.before(request, outcome)
        try:
            completion = self.model_for(settings).complete(request)
            outcome.usage = completion
            outcome.output_text = completion.text
            if completion.tool_calls:  # the audit log keeps the calls the model asked for, as the stream does
                outcome.output_text += json.dumps([call._asdict() for call in completion.tool_calls])
        except ApiError as error:
            outcome.error_type = error.code
            raise
        finally:
            self.hooks.after(request, outcome)
        return completion

    def _streams(self) -> Streams:
        """The streamed half of the pipeline, imported with the first `stream: true` (a buffered-only function
        never compiles it at its cold start)."""
        if self._streamer is None:
            from lambda_src.inference.streaming import Streams  # noqa: PLC0415

            self._streamer = Streams(self)
        return self._streamer

    def _check_model(self, requested: str | None, settings: ModelSettings) -> None:
        if requested is not None and requested != settings.model_id:
            raise not_found(f"The model {requested[:200]!r} is not served here; GET /models lists the models.",
                            "model_not_found")  # fmt: skip

    def _finish(self, outcome: Outcome, status: int, body: dict[str, Any], event: dict[str, Any],
                extra_headers: dict[str, str] | None = None) -> Outcome:  # fmt: skip
        outcome.status = status
        outcome.response = json_response(status, body, request_id=outcome.request_id, origin=header(event, "origin"),
                                         cors_origins=self.cors_origins, extra_headers=extra_headers)  # fmt: skip
        return outcome


def _route(event: dict[str, Any]) -> str:
    # API Gateway gives the matched resource; fall back to the path without the stage prefix.
    route = event.get("resource") or event.get("path") or ""
    route = route if isinstance(route, str) else ""
    if route.startswith(f"/{STAGE_NAME}/"):
        route = route[len(STAGE_NAME) + 1 :]
    return route.rstrip("/") or "/"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _given(body: dict[str, Any], name: str, default: Any) -> Any:
    """The body's value, or ``default`` when it is absent or null."""
    value = body.get(name)
    return default if value is None else value


def _session_id(event: dict[str, Any], caller: Caller, user: str | None) -> str | None:
    session = header(event, SESSION_HEADER)[:MAX_USER_CHARS] or user
    return session_key(caller.key_id, session) if session else None


def _max_tokens(body: dict[str, Any], settings: ModelSettings) -> int:
    value = _given(body, "max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return settings.max_output_tokens
    if value > settings.max_output_tokens:
        raise invalid_request(f"'max_tokens' must be a whole number from 1 to {settings.max_output_tokens}.",
                              "value_out_of_range")  # fmt: skip
    return int(value)


def _stop(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _usage(completion: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }
