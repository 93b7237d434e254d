"""What every API function does around its operations, dispatched on the route table (lambda_src/contracts/api.py):
the caller from the authorizer, the route and method, the body against the route's schema, the answer in the
API's JSON shape with CORS for an allowed origin, the audit record of an audited route, and an error shape for
everything that goes wrong (client faults 4xx, upstream faults 5xx, a bug 500 without its trace).

A function subclasses Dispatcher with its operations (``Operation``: event, checked body, outcome -> JSON
answer); the inference function also answers with streams (``answer_stream``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from lambda_src.contracts.api import (
    AUTH_USER,
    CLAIM_SUBJECT,
    CLAIMS,
    CONTEXT_KEY_ID,
    CONTEXT_LIMITS,
    CONTEXT_OWNER,
    CONTEXT_PLAN,
    SESSION_HEADER,
    STAGE_NAME,
    Route,
    request_schema,
    routes_of,
)
from lambda_src.contracts.audit import PHASE_REQUEST, session_key
from lambda_src.contracts.guardrail import INTERVENED
from lambda_src.contracts.schemas import MAX_USER_CHARS
from lambda_src.shared.audit_writer import AuditEvent, AuditFailedError, AuditWriter
from lambda_src.shared.errors import ApiError, audit_unavailable, not_found, server_error, unauthorized
from lambda_src.shared.logs import frames
from lambda_src.shared.proxy import header, json_body, json_response
from lambda_src.shared.validation import Schema, request_error

if TYPE_CHECKING:
    from lambda_src.shared.config_source import ModelSettings, ModelTarget
    from lambda_src.shared.models import CompletionRequest, GuardrailRef, ModelClient, ModelStream, StreamEvent
    from lambda_src.shared.runtime.response import StreamingResponse
    from lambda_src.shared.spend import ModelCallHooks

    Operation = Callable[[dict[str, Any], dict[str, Any], "Outcome"], "dict[str, Any] | StreamingResponse"]
    OnFinish = Callable[["Outcome"], None]

LOGGER = logging.getLogger(__name__)
# Attempts at the COMPLETE audit record of a stream (its output has already left: retry, then count).
FINAL_AUDIT_ATTEMPTS = 3


class Caller(NamedTuple):
    """Who called, from the authorizer: the key's id and owner (never the key itself), or the signed-in user
    (the ``sub`` of the token API Gateway's Cognito authorizer verified)."""

    key_id: str
    owner: str
    user_id: str = ""
    # The key's usage plan and its own limits (JSON text, lambda_src/contracts/spend.py), from the authorizer.
    plan: str = ""
    limits: str = ""


class TokenUsage(Protocol):
    """What the audit record counts of a model call (a Completion, or an embedding's input tokens)."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...


class Outcome:
    """The response plus what the handler logs and measures (filled in as the request goes).

    ``response`` is the proxy response of a JSON answer; a streamed answer is ``stream`` instead, a
    StreamingResponse whose body fills in the rest of the outcome as it is sent: the ``on_finish`` callback given
    to ``Dispatcher.handle`` runs when the outcome is final."""

    __slots__ = ("audit_failed", "audited", "budget_exhausted", "budget_unsettled", "caller", "disconnected",
                 "error_type", "fallbacks", "guardrail_intervened", "input_text", "latency_ms", "model_id",
                 "output_text", "provider", "request_id", "reservation", "response", "route", "session_id", "status",
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
        self.usage: TokenUsage | None = None
        self.session_id: str | None = None
        self.provider: str | None = None
        # What the audit log may keep (the writer applies the stage's privacy setting).
        self.input_text = ""
        self.output_text = ""
        self.audit_failed = False
        self.streamed = False
        self.disconnected = False
        self.latency_ms = 0.0
        # Spend control: what the request holds of its caller's budget until it settles (lambda_src/shared/spend.py),
        # a settlement that failed, and how many models of the list failed before one answered.
        self.reservation: Any = None
        self.budget_unsettled = False
        self.budget_exhausted = False
        self.fallbacks = 0
        # The stage's guardrail blocked or masked the input or the output (lambda_src/shared/guardrail.py).
        self.guardrail_intervened = False

    def reply(self, streaming: bool) -> dict[str, Any] | StreamingResponse:
        """What the handler returns: the JSON response, or the stream; with streaming switched off (the managed
        runtime behind a buffered integration) the whole stream as one response."""
        if self.stream is None:
            return self.response
        return self.stream if streaming else self.stream.buffered()


class _Endpoint(NamedTuple):
    route: Route
    operation: Operation
    schema: Schema | None


# What an answer may take, all models of the list together: a streamed one the STREAM integration's timeout less a
# margin for the bookkeeping after it; with streaming switched off, API Gateway stops waiting at 29 s.
STREAM_MARGIN_SECONDS = 5
BUFFERED_SECONDS = 28


class Dispatcher:
    """One function's routes (``Route.function == function``), each served by the operation it names.
    ``stream_seconds``: the function's timeout under a STREAM integration (0: streaming is switched off)."""

    def __init__(self, function: str, operations: Mapping[str, Operation], *, max_body_bytes: int,
                 cors_origins: tuple[str, ...] = (), audit: AuditWriter | None = None,
                 stream_seconds: int = 0, guardrail: bool = False) -> None:  # fmt: skip
        self.stream_seconds = stream_seconds
        self.apply_guardrail = guardrail
        self.audit = audit
        self.cors_origins = cors_origins
        self._max_body_bytes = max_body_bytes
        unused = dict(operations)
        self._endpoints: dict[str, dict[str, _Endpoint]] = {}
        for route in routes_of(function):
            if route.operation not in unused:
                raise ValueError(f"Route {route.method} {route.path} names operation {route.operation!r}, which the "
                                 f"{function} function does not have.")  # fmt: skip
            schema = request_schema(route)
            self._endpoints.setdefault(route.path, {})[route.method] = _Endpoint(
                route, unused.pop(route.operation), Schema(schema) if schema else None
            )
        if unused:
            raise ValueError(f"Operations {sorted(unused)} of the {function} function have no route.")

    def answer_seconds(self) -> float:
        """How long an answer may take from now, every model of the list together."""
        return max(1, self.stream_seconds - STREAM_MARGIN_SECONDS) if self.stream_seconds else BUFFERED_SECONDS

    def guardrail_of(self, settings: ModelSettings) -> GuardrailRef | None:
        """The guardrail this function's model calls apply: the stage's, when its route family switches it on (a
        function told to apply one whose settings name none fails closed rather than answer unguarded)."""
        if not self.apply_guardrail:
            return None
        if settings.guardrail is None:
            raise server_error("The content guardrail's settings are missing; an operator must check the stage.")
        return settings.guardrail

    def model_list(self, settings: ModelSettings, client_for: Callable[[ModelTarget], ModelClient],
                   outcome: Outcome) -> ModelClient:  # fmt: skip
        """The stage's model list as one client: the model itself when the list has one (no fallback to try; the
        fallback module is then never compiled at a cold start), else the list tried in order within the answer's
        time from now (lambda_src/shared/models/fallback.py)."""
        targets = settings.targets()
        if len(targets) == 1:
            return client_for(targets[0])
        from lambda_src.shared.models.fallback import ModelChain  # noqa: PLC0415

        return ModelChain(targets, client_for, outcome, deadline=time.monotonic() + self.answer_seconds())

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

    def answer_stream(self, outcome: Outcome, answer: StreamingResponse, started: float,
                      on_finish: OnFinish | None) -> Outcome:  # fmt: skip
        """An operation answered with a stream: its body is wrapped so the COMPLETE audit record and ``on_finish``
        follow its end, however it ends (the last byte, an error event, the caller going away)."""
        from lambda_src.shared.runtime.response import StreamingResponse  # noqa: PLC0415 - streams only

        outcome.status = answer.status_code
        body = answer.body

        def finishing() -> Iterator[bytes]:
            try:
                yield from body
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
                if self.audit is not None and outcome.audited:
                    try:
                        written = self.audit.write(self.audit_event(outcome, started), attempts=FINAL_AUDIT_ATTEMPTS)
                        outcome.audit_failed = outcome.audit_failed or not written
                    except AuditFailedError:
                        outcome.audit_failed = True  # the output has left: counted and logged, not withheld
                self.finished(outcome, started, on_finish)

        outcome.stream = StreamingResponse(answer.status_code, answer.headers, finishing())
        return outcome

    def record_request(self, outcome: Outcome) -> None:
        """Before a streamed answer's model call, in required audit mode: its REQUEST record (who, when, model,
        input) must be accepted, or there is no call and no output (503)."""
        outcome.streamed = True
        if self.audit is not None and self.audit.mode == "required":
            try:
                self.audit.write(self.audit_event(outcome, time.perf_counter(), PHASE_REQUEST))
            except AuditFailedError:
                outcome.streamed = False
                outcome.audit_failed = True
                raise audit_unavailable() from None

    def open_model_stream(self, outcome: Outcome, request: CompletionRequest, settings: ModelSettings,
                          client_for: Callable[[ModelTarget], ModelClient], hooks: ModelCallHooks,
                          ) -> tuple[ModelStream, list[StreamEvent], Iterator[StreamEvent]]:  # fmt: skip
        """Everything of a streamed answer that can still fail with a status of its own, before the first byte: the
        REQUEST audit record (required mode), ``hooks.before`` (a budget's reservation), the stage's model list
        opened and its first event read. A failure here still answers as JSON (one record, as a buffered answer);
        once ``before`` let the call through, ``hooks.after`` runs when it failed (a budget's settlement). Returns
        (the stream, its first event if any, the rest)."""
        self.record_request(outcome)
        try:
            hooks.before(request, settings, outcome)
        except BaseException:
            outcome.streamed = False
            raise
        stream: ModelStream | None = None
        try:
            stream = self.model_list(settings, client_for, outcome).stream(request)
            events = iter(stream)
            first = next(events, None)
        except BaseException as error:
            outcome.streamed = False
            if stream is not None:
                close_stream(stream)
            if isinstance(error, ApiError):
                outcome.error_type = error.code
            hooks.after(request, outcome)
            raise
        return stream, [first] if first is not None else [], events

    def _write_audit(self, outcome: Outcome, started: float, event: Any) -> None:
        assert self.audit is not None  # noqa: S101 - checked by the caller
        try:
            written = self.audit.write(self.audit_event(outcome, started))
            outcome.audit_failed = outcome.audit_failed or not written
        except AuditFailedError:
            outcome.audit_failed = True
            if outcome.status == 200:
                # Required audit: no record, no release of the answer.
                failure = audit_unavailable()
                outcome.error_type = failure.code
                self.finish(outcome, failure.status, failure.body(), event if isinstance(event, dict) else {})

    def _handle(self, event: dict[str, Any], started: float, on_finish: OnFinish | None) -> Outcome:
        context = mapping(event.get("requestContext"))
        authorizer = mapping(context.get("authorizer"))
        claims = mapping(authorizer.get(CLAIMS))
        user_id = text(claims.get(CLAIM_SUBJECT))
        owner = text(authorizer.get(CONTEXT_OWNER)) or user_id
        caller = Caller(
            key_id=text(authorizer.get(CONTEXT_KEY_ID)),
            owner=owner,
            user_id=user_id,
            plan=text(authorizer.get(CONTEXT_PLAN)),
            limits=text(authorizer.get(CONTEXT_LIMITS)),
        )
        path = route_of(event)
        outcome = Outcome(route=path, caller=caller, request_id=text(context.get("requestId")) or "local")
        try:
            if not caller.key_id and not caller.user_id:
                # Only a misconfigured method (no authorizer) or a direct invoke gets here: never serve anonymously.
                raise unauthorized()
            methods = self._endpoints.get(path)
            if methods is None:
                raise not_found(f"Unknown route {path[:100]!r}.", "unknown_route")
            # Every request to an audited route is recorded, a wrong method too.
            outcome.audited = any(endpoint.route.audited for endpoint in methods.values())
            endpoint = methods.get(text(event.get("httpMethod")).upper())
            if endpoint is None:
                raise ApiError(405, f"Use {', '.join(methods)} on {path}.", "invalid_request_error",
                               "method_not_allowed", {"Allow": ", ".join(methods)})  # fmt: skip
            # The identity the route's authorizer gives: a user route never runs on an API key, nor the reverse.
            if not (caller.user_id if endpoint.route.auth == AUTH_USER else caller.key_id):
                raise unauthorized()
            body: dict[str, Any] = {}
            if endpoint.schema is not None:
                body = json_body(event, self._max_body_bytes)
                violation = endpoint.schema.first_violation(body)
                if violation is not None:
                    raise request_error(violation)
            answer = endpoint.operation(event, body, outcome)
            if not isinstance(answer, dict):  # a StreamingResponse: sent after this returns
                return self.answer_stream(outcome, answer, started, on_finish)
            return self.finish(outcome, 200, answer, event)
        except ApiError as error:
            outcome.error_type = error.code
            return self.finish(outcome, error.status, error.body(), event, error.headers)
        except Exception as error:  # a bug must still answer in the documented shape
            # Where it failed, never what it said: the message may quote the request or a secret.
            LOGGER.error("unhandled error", extra={"error_type": type(error).__name__, "frames": frames(error),
                                                   "api_request_id": outcome.request_id, "key_id": caller.key_id,
                                                   "route": path[:200]})  # fmt: skip
            failure = server_error()
            outcome.error_type = failure.code
            return self.finish(outcome, failure.status, failure.body(), event)

    def finish(self, outcome: Outcome, status: int, body: dict[str, Any], event: dict[str, Any],
               extra_headers: dict[str, str] | None = None) -> Outcome:  # fmt: skip
        outcome.status = status
        outcome.response = json_response(status, body, request_id=outcome.request_id, origin=header(event, "origin"),
                                         cors_origins=self.cors_origins, extra_headers=extra_headers)  # fmt: skip
        return outcome


def guardrail_intervened(outcome: Outcome) -> None:
    """The guardrail blocked or masked the input or the answer: counted (GuardrailInterventions) and recorded in the
    audit record's error type; the answer itself is a 200 with finish_reason content_filter."""
    outcome.guardrail_intervened = True
    outcome.error_type = outcome.error_type or INTERVENED


def close_stream(stream: ModelStream) -> None:
    """Stop the model call; a failure to close must not replace the answer's own ending."""
    try:
        stream.close()
    except Exception as error:
        LOGGER.warning("closing the model stream failed", extra={"error_type": type(error).__name__})


def route_of(event: dict[str, Any]) -> str:
    # API Gateway gives the matched resource; fall back to the path without the stage prefix.
    route = event.get("resource") or event.get("path") or ""
    route = route if isinstance(route, str) else ""
    if route.startswith(f"/{STAGE_NAME}/"):
        route = route[len(STAGE_NAME) + 1 :]
    return route.rstrip("/") or "/"


def session_id(event: dict[str, Any], caller: Caller, user: str | None) -> str | None:
    """The audit session: the X-Session-Id header (or OpenAI's ``user``) inside the caller's key's namespace."""
    session = header(event, SESSION_HEADER)[:MAX_USER_CHARS] or user
    return session_key(caller.key_id, session) if session else None


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""
