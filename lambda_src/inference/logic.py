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
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, Protocol

from lambda_src.contracts.api import (
    CONTEXT_KEY_ID,
    CONTEXT_OWNER,
    SESSION_HEADER,
    STAGE_NAME,
    Route,
    request_schema,
    routes_of,
)
from lambda_src.contracts.audit import PHASE_REQUEST, session_key
from lambda_src.contracts.schemas import MAX_USER_CHARS
from lambda_src.inference.sse import CONTENT_TYPE as SSE_CONTENT_TYPE
from lambda_src.inference.sse import DONE, ChunkWriter, event, tool_call_delta
from lambda_src.shared.audit_writer import AuditEvent, AuditFailedError, AuditWriter
from lambda_src.shared.config_source import ModelSettings
from lambda_src.shared.errors import (
    ApiError,
    invalid_request,
    not_found,
    server_error,
    unauthorized,
    upstream_timeout,
)
from lambda_src.shared.logs import frames
from lambda_src.shared.models import (
    Completion,
    CompletionRequest,
    Finish,
    Message,
    ModelClient,
    ModelStream,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)
from lambda_src.shared.proxy import header, json_body, json_response, response_headers
from lambda_src.shared.runtime.response import StreamingResponse
from lambda_src.shared.validation import Schema, request_error

LOGGER = logging.getLogger(__name__)

FUNCTION = "inference"
# Attempts at the COMPLETE audit record of a stream (its output has already left: retry, then count).
FINAL_AUDIT_ATTEMPTS = 3
# Seconds kept back from the stream's time budget to end the answer cleanly and write its audit record.
STREAM_MARGIN_SECONDS = 5
_UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call", "logprobs", "response_format", "audio")


class SettingsSource(Protocol):
    def settings(self) -> ModelSettings: ...


class Caller(NamedTuple):
    """Who called, from the authorizer: the key's id and owner (never the key itself)."""

    key_id: str
    owner: str


class ModelCallHooks(Protocol):
    """The seam around every model call, buffered or streamed: ``before`` may refuse the call (raise ApiError;
    e.g. a budget reservation), ``after`` runs exactly once when the call is over, whatever happened (e.g. the
    settlement of the actual usage: ``outcome.usage``, ``outcome.disconnected``, ``outcome.error_type``)."""

    def before(self, request: CompletionRequest, outcome: Outcome) -> None: ...

    def after(self, request: CompletionRequest, outcome: Outcome) -> None: ...


class NoHooks:
    def before(self, request: CompletionRequest, outcome: Outcome) -> None:
        return None

    def after(self, request: CompletionRequest, outcome: Outcome) -> None:
        return None


class Outcome:
    """The response plus what the handler logs and measures (filled in as the request goes).

    ``response`` is a proxy response dict, or a StreamingResponse whose body fills in the rest of the outcome as
    it is sent: the ``on_finish`` callback given to ``Api.handle`` runs when the outcome is final."""

    __slots__ = ("audit_failed", "audited", "caller", "disconnected", "error_type", "input_text", "latency_ms",
                 "model_id", "output_text", "provider", "request_id", "response", "route", "session_id", "status",
                 "streamed", "usage")  # fmt: skip

    def __init__(self, *, route: str, caller: Caller, request_id: str) -> None:
        self.response: dict[str, Any] | StreamingResponse = {}
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


Operation = Callable[[dict[str, Any], dict[str, Any], Outcome], "dict[str, Any] | StreamingResponse"]
OnFinish = Callable[[Outcome], None]


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
        self._audit = audit
        self._stream_seconds = stream_seconds
        self._hooks = hooks or NoHooks()
        self._config = config
        self._model_for = model_for
        self._max_body_bytes = max_body_bytes
        self._cors_origins = cors_origins
        self._clock = clock
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
            if self._audit is not None and outcome.audited:
                self._write_audit(outcome, started, event)
            self._finished(outcome, started, on_finish)
        return outcome

    def _finished(self, outcome: Outcome, started: float, on_finish: OnFinish | None) -> None:
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        if on_finish is not None:
            on_finish(outcome)

    def _audit_event(self, outcome: Outcome, started: float, phase: str | None = None) -> AuditEvent:
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
        assert self._audit is not None  # noqa: S101 - checked by the caller
        try:
            written = self._audit.write(self._audit_event(outcome, started))
            outcome.audit_failed = outcome.audit_failed or not written
        except AuditFailedError:
            outcome.audit_failed = True
            if outcome.status == 200:
                # Required audit: no record, no release of the model's output.
                self._refuse_unaudited(outcome, event if isinstance(event, dict) else {})

    def _refuse_unaudited(self, outcome: Outcome, event: dict[str, Any]) -> None:
        failure = ApiError(503, "The request could not be recorded in the audit log; try again later.",
                           "server_error", "audit_unavailable")  # fmt: skip
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
            if isinstance(answer, StreamingResponse):
                return self._stream(outcome, answer, started, on_finish)
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
        system, messages = _messages(body["messages"])
        outcome.input_text = json.dumps(
            [{"role": "system", "content": text} for text in system]
            + [{"role": m.role, "content": m.content} for m in messages],
            ensure_ascii=False,
        )
        outcome.session_id = _session_id(event, outcome.caller, body.get("user"))
        request = CompletionRequest(
            model_id=settings.model_id,
            system=(settings.system_prompt, *system),
            messages=messages,
            temperature=float(_given(body, "temperature", settings.temperature)),
            top_p=float(_given(body, "top_p", settings.top_p)),
            max_tokens=_max_tokens(body, settings),
            stop=_stop(body.get("stop")),
            timeout_seconds=settings.request_timeout_seconds,
        )
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            return self._open_stream(request, settings, outcome, event, include_usage=include_usage)
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
        self._hooks.before(request, outcome)
        try:
            completion = self._model_for(settings).complete(request)
            outcome.usage = completion
            outcome.output_text = completion.text
        except ApiError as error:
            outcome.error_type = error.code
            raise
        finally:
            self._hooks.after(request, outcome)
        return completion

    # --- streaming --------------------------------------------------------------------------------

    def _open_stream(self, request: CompletionRequest, settings: ModelSettings, outcome: Outcome,
                     event: dict[str, Any], *, include_usage: bool) -> StreamingResponse:  # fmt: skip
        """Everything that can still fail with a status of its own happens here, before the first byte: the
        REQUEST audit record (required mode), the hooks, opening the model stream and its first event."""
        outcome.model_id = settings.model_id
        outcome.provider = settings.provider
        outcome.streamed = True
        if self._audit is not None and self._audit.mode == "required":
            try:
                self._audit.write(self._audit_event(outcome, time.perf_counter(), PHASE_REQUEST))
            except AuditFailedError:
                outcome.streamed = False
                outcome.audit_failed = True
                raise ApiError(503, "The request could not be recorded in the audit log; try again later.",
                               "server_error", "audit_unavailable") from None  # fmt: skip
        try:
            self._hooks.before(request, outcome)
        except BaseException:
            outcome.streamed = False
            raise
        stream: ModelStream | None = None
        try:
            stream = self._model_for(settings).stream(request)
            events = iter(stream)
            first = next(events, None)
        except BaseException as error:
            outcome.streamed = False  # answered as JSON with its own status: one record, as buffered
            if stream is not None:
                _close(stream)
            if isinstance(error, ApiError):
                outcome.error_type = error.code
            self._hooks.after(request, outcome)
            raise
        writer = ChunkWriter(f"chatcmpl-{outcome.request_id}", int(self._clock()), settings.model_id,
                             include_usage=include_usage)  # fmt: skip
        headers = response_headers(SSE_CONTENT_TYPE, request_id=outcome.request_id, origin=header(event, "origin"),
                                   cors_origins=self._cors_origins)  # fmt: skip
        return StreamingResponse(
            200, headers, self._sse(request, stream, events=events, first=first, writer=writer, outcome=outcome)
        )

    def _sse(self, request: CompletionRequest, stream: ModelStream, *, events: Iterator[StreamEvent],
             first: StreamEvent | None, writer: ChunkWriter, outcome: Outcome) -> Iterator[bytes]:  # fmt: skip
        """The answer as server-sent events. Model errors after the first byte become an error event; a caller
        that goes away (GeneratorExit at a yield) closes the model stream. Bookkeeping runs in ``finally``."""
        deadline = time.monotonic() + max(1, self._stream_seconds - STREAM_MARGIN_SECONDS)
        answer = _StreamedAnswer(writer)
        outcome.status = 200
        ended = False  # the last byte was handed over: closing the body now is no disconnect
        try:
            yield writer.chunk({"role": "assistant", "content": ""})
            for item in _chain([first] if first is not None else [], events):
                data = answer.chunk(item)
                if data:
                    yield data
                if time.monotonic() > deadline:
                    raise upstream_timeout("The answer took longer than this API streams; ask for fewer tokens.")
            for data in answer.ending():
                ended = data is DONE
                yield data
        except GeneratorExit:
            outcome.disconnected = not ended
            raise
        except ApiError as error:
            outcome.status, outcome.error_type = error.status, error.code
            yield event(error.body())
        except Exception as error:  # a bug: the documented error event, never a stack trace
            LOGGER.error("unhandled error in a stream", extra={"error_type": type(error).__name__,
                         "frames": frames(error), "api_request_id": outcome.request_id})  # fmt: skip
            failure = server_error()
            outcome.status, outcome.error_type = failure.status, failure.code
            yield event(failure.body())
        finally:
            _close(stream)
            outcome.output_text = answer.output_text()
            outcome.usage = Completion(outcome.output_text, answer.finish or "stop", answer.prompt_tokens,
                                       answer.completion_tokens)  # fmt: skip
            self._hooks.after(request, outcome)

    def _stream(self, outcome: Outcome, answer: StreamingResponse, started: float,
                on_finish: OnFinish | None) -> Outcome:  # fmt: skip
        """Wrap the body so the COMPLETE audit record and ``on_finish`` follow its end, however it ends."""
        outcome.status = answer.status_code
        body = answer.body

        def finishing() -> Iterator[bytes]:
            try:
                yield from body
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
                if self._audit is not None and outcome.audited:
                    try:
                        written = self._audit.write(self._audit_event(outcome, started),
                                                    attempts=FINAL_AUDIT_ATTEMPTS)  # fmt: skip
                        outcome.audit_failed = outcome.audit_failed or not written
                    except AuditFailedError:
                        outcome.audit_failed = True  # the output has left: counted and logged, not withheld
                self._finished(outcome, started, on_finish)

        outcome.response = StreamingResponse(answer.status_code, answer.headers, finishing())
        return outcome

    def _check_model(self, requested: str | None, settings: ModelSettings) -> None:
        if requested is not None and requested != settings.model_id:
            raise not_found(f"The model {requested[:200]!r} is not served here; GET /models lists the models.",
                            "model_not_found")  # fmt: skip

    def _finish(self, outcome: Outcome, status: int, body: dict[str, Any], event: dict[str, Any],
                extra_headers: dict[str, str] | None = None) -> Outcome:  # fmt: skip
        outcome.status = status
        outcome.response = json_response(status, body, request_id=outcome.request_id, origin=header(event, "origin"),
                                         cors_origins=self._cors_origins, extra_headers=extra_headers)  # fmt: skip
        return outcome


class _StreamedAnswer:
    """What a stream has said so far (for the audit record and the usage), and its chunks."""

    __slots__ = ("calls", "completion_tokens", "finish", "prompt_tokens", "text", "writer")

    def __init__(self, writer: ChunkWriter) -> None:
        self.writer = writer
        self.text: list[str] = []
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, argument pieces...]
        self.prompt_tokens = self.completion_tokens = 0
        self.finish: str | None = None

    def chunk(self, item: StreamEvent) -> bytes | None:
        if isinstance(item, TextDelta):
            if not item.text:
                return None
            self.text.append(item.text)
            return self.writer.chunk({"content": item.text})
        if isinstance(item, ToolCallDelta):
            self.calls.setdefault(item.index, [item.id, item.name]).append(item.arguments)
            return self.writer.chunk({"tool_calls": [tool_call_delta(item.index, item.id, item.name, item.arguments)]})
        if isinstance(item, Finish):
            self.finish = item.reason
            return self.writer.chunk({}, item.reason)
        self.prompt_tokens, self.completion_tokens = item.prompt_tokens, item.completion_tokens
        return None

    def ending(self) -> Iterator[bytes]:
        if self.finish is None:
            yield self.writer.chunk({}, "stop")
        if self.writer.include_usage:
            yield self.writer.usage(self.prompt_tokens, self.completion_tokens)
        yield DONE

    def output_text(self) -> str:
        calls = [{"id": c[0], "name": c[1], "arguments": "".join(c[2:])} for _i, c in sorted(self.calls.items())]
        return "".join(self.text) + (json.dumps(calls, ensure_ascii=False) if calls else "")


def _close(stream: ModelStream) -> None:
    """Stop the model call; a failure to close must not replace the answer's own ending."""
    try:
        stream.close()
    except Exception as error:
        LOGGER.warning("closing the model stream failed", extra={"error_type": type(error).__name__})


def _chain(first: Iterable[StreamEvent], rest: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
    yield from first
    yield from rest


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


def _messages(raw: list[dict[str, Any]]) -> tuple[tuple[str, ...], tuple[Message, ...]]:
    system: list[str] = []
    turns: list[Message] = []
    for index, item in enumerate(raw):
        role = item["role"]
        content = item["content"]
        text = content if isinstance(content, str) else "".join(part["text"] for part in content)
        if not text.strip():
            raise invalid_request(f"messages[{index}].content must not be empty.", "invalid_messages")
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
