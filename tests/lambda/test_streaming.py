"""Streamed chat completions through logic.Api: OpenAI's SSE (read by the openai SDK's own stream parser), the
audit records of a stream, errors before and after the first byte, a caller that goes away, and the seam."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from lambda_src.contracts.audit import PHASE_COMPLETE, PHASE_REQUEST
from lambda_src.inference.logic import Api, Outcome
from lambda_src.shared.audit_writer import AuditEvent, AuditFailedError
from lambda_src.shared.config_source import ModelSettings
from lambda_src.shared.errors import ApiError, rate_limited, upstream_error
from lambda_src.shared.models import (
    CompletionRequest,
    Finish,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from lambda_src.shared.runtime.response import StreamingResponse
from lambda_src.shared.spend import ModelCallHooks
from tests.model_fakes import MODEL, TEXT, FakeModel, FakeStream, chat_event, sdk_client

SETTINGS = ModelSettings(provider="bedrock", model_id=MODEL, temperature=0.2, top_p=0.9, max_output_tokens=1024,
                         request_timeout_seconds=25, system_prompt="Be brief.",
                         upstream_base_url="https://api.openai.com/v1")  # fmt: skip


class FixedConfig:
    def settings(self) -> ModelSettings:
        return SETTINGS


class Audit:
    """An AuditWriter stand-in recording what it is given; ``fail`` phases raise (required) or return False."""

    def __init__(self, mode: str = "required", fail: tuple[str, ...] = ()) -> None:
        self.mode = mode
        self.fail = fail
        self.events: list[tuple[AuditEvent, int]] = []

    def write(self, event: AuditEvent, *, attempts: int = 1) -> bool:
        self.events.append((event, attempts))
        if event.phase in self.fail:
            if self.mode == "required":
                raise AuditFailedError("ServiceUnavailableException")
            return False
        return True


def api(model: FakeModel, audit: Any = None, **kwargs: Any) -> Api:
    return Api(
        FixedConfig(),
        lambda _s: model,
        max_body_bytes=65536,
        clock=lambda: 1_700_000_000.0,
        audit=audit,
        stream_seconds=kwargs.pop("stream_seconds", 300),
        **kwargs,
    )


def test_the_openai_sdk_reads_the_stream_with_usage():
    model, audit = FakeModel(list(TEXT)), Audit()
    finished: list[Outcome] = []
    stream = sdk_client(api(model, audit), finished).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Capital?"}], stream=True,
        stream_options={"include_usage": True}, max_tokens=50,
    )  # fmt: skip
    chunks = list(stream)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id == "chatcmpl-req-1"
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The capital of France is Paris."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 7)
    assert model.requests[0].max_tokens == 50
    # Required mode: a REQUEST record before the model call, the COMPLETE record (retried) at the end.
    (request, one), (complete, attempts) = audit.events
    assert (request.phase, one, request.output_text, request.streamed) == (PHASE_REQUEST, 1, "", True)
    assert complete.phase == PHASE_COMPLETE and attempts == 3 and complete.status_code == 200
    assert complete.output_text == "The capital of France is Paris."
    assert (complete.prompt_tokens, complete.completion_tokens, complete.disconnected) == (12, 7, False)
    assert model.stream_.closed and len(finished) == 1 and finished[0].streamed


def test_without_include_usage_no_usage_chunk_and_done_ends_it():
    model = FakeModel(list(TEXT))
    response = api(model).handle(chat_event()).stream
    assert isinstance(response, StreamingResponse)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-store"
    raw = b"".join(response.body).decode()
    events = [line for line in raw.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all("usage" not in p for p in payloads)
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"


def test_tool_call_deltas_stream_in_openai_shape():
    items: list[StreamEvent | ApiError] = [
        ToolCallDelta(0, "tooluse_1", "get_weather", ""), ToolCallDelta(0, "", "", '{"city": '),
        ToolCallDelta(0, "", "", '"Paris"}'), Finish("tool_calls"), Usage(30, 9),
    ]  # fmt: skip
    finished: list[Outcome] = []
    stream = sdk_client(api(FakeModel(items), Audit()), finished).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather in Paris?"}], stream=True
    )
    chunks = list(stream)
    calls = [call for c in chunks for call in (c.choices[0].delta.tool_calls or [])]
    functions = [call.function for call in calls if call.function is not None]
    assert calls[0].id == "tooluse_1" and functions[0].name == "get_weather" and calls[0].type == "function"
    assert "".join(f.arguments or "" for f in functions) == '{"city": "Paris"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert "get_weather" in finished[0].output_text


def test_an_error_before_the_first_byte_has_its_own_status():
    model = FakeModel([], refuse=rate_limited("slow down", retry_after=2))
    audit = Audit()
    outcome = api(model, audit).handle(chat_event())
    assert outcome.stream is None and outcome.response["statusCode"] == 429
    assert outcome.response["headers"]["Retry-After"] == "2"
    # The REQUEST record, then one COMPLETE record as for any JSON answer.
    assert [(e.phase, e.status_code) for e, _ in audit.events] == [(PHASE_REQUEST, 0), (PHASE_COMPLETE, 429)]


def test_a_failure_on_the_first_event_is_also_a_status():
    model = FakeModel([upstream_error()])
    outcome = api(model).handle(chat_event())
    assert outcome.stream is None and outcome.response["statusCode"] == 502
    assert model.stream_.closed


def test_an_error_mid_stream_is_an_error_event_then_the_end():
    model = FakeModel([TextDelta("Par"), upstream_error("The model stopped answering.")])
    audit = Audit()
    finished: list[Outcome] = []
    client = sdk_client(api(model, audit), finished)
    received = []
    with pytest.raises(openai.APIError) as error:
        for chunk in client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
                                                    stream=True):  # fmt: skip
            received.append(chunk)
    assert "The model stopped answering." in str(error.value) and "Traceback" not in str(error.value)
    assert "".join(c.choices[0].delta.content or "" for c in received) == "Par"
    complete = audit.events[-1][0]
    assert (complete.status_code, complete.error_type, complete.output_text) == (502, "upstream_error", "Par")


def test_a_bug_mid_stream_is_a_server_error_event_without_a_trace():
    class Broken(FakeStream):
        def __iter__(self) -> Iterator[StreamEvent]:
            yield TextDelta("a")
            raise KeyError("secret-value")

    model = FakeModel([])
    model.stream_ = Broken([])
    response = api(model).handle(chat_event()).stream
    assert isinstance(response, StreamingResponse)
    raw = b"".join(response.body).decode()
    last = json.loads(raw.strip().split("\n\n")[-1].removeprefix("data: "))
    assert last["error"]["code"] == "internal_error" and "secret-value" not in raw and "[DONE]" not in raw


def test_a_caller_that_goes_away_closes_the_model_stream_and_is_recorded():
    model = FakeModel([TextDelta(str(i)) for i in range(100)])
    audit = Audit()
    finished: list[Outcome] = []
    response = api(model, audit).handle(chat_event(), finished.append).stream
    assert isinstance(response, StreamingResponse)
    body = iter(response.body)
    next(body), next(body), next(body)  # the role chunk and two pieces
    response.close()  # what the Runtime API loop does when a send fails
    assert model.stream_.closed and model.stream_.served < 100
    complete = audit.events[-1][0]
    assert complete.disconnected and complete.output_text == "01" and complete.phase == PHASE_COMPLETE
    assert finished[0].disconnected


def test_required_mode_calls_no_model_when_the_request_record_is_refused():
    model = FakeModel(list(TEXT))
    audit = Audit(fail=(PHASE_REQUEST,))
    outcome = api(model, audit).handle(chat_event())
    assert outcome.stream is None and outcome.response["statusCode"] == 503
    assert model.requests == [] and outcome.audit_failed


def test_a_failed_final_record_is_counted_not_withheld():
    model = FakeModel(list(TEXT))
    audit = Audit(fail=(PHASE_COMPLETE,))
    finished: list[Outcome] = []
    response = api(model, audit).handle(chat_event(), finished.append).stream
    assert isinstance(response, StreamingResponse)
    assert b"Paris" in b"".join(response.body)
    assert finished[0].audit_failed and audit.events[-1][1] == 3


def test_best_effort_streams_write_one_record():
    audit = Audit(mode="best_effort")
    response = api(FakeModel(list(TEXT)), audit).handle(chat_event()).stream
    assert isinstance(response, StreamingResponse)
    b"".join(response.body)
    assert [e.phase for e, _ in audit.events] == [PHASE_COMPLETE]


def test_a_stream_past_its_time_budget_ends_with_a_timeout_event(monkeypatch):
    ticks = iter(range(0, 1000, 10))
    monkeypatch.setattr("lambda_src.inference.streaming.time.monotonic", lambda: float(next(ticks)))
    model = FakeModel([TextDelta(str(i)) for i in range(50)])
    response = api(model, stream_seconds=30).handle(chat_event()).stream
    assert isinstance(response, StreamingResponse)
    raw = b"".join(response.body).decode()
    assert '"upstream_timeout"' in raw and model.stream_.closed and model.stream_.served < 50


def test_the_hooks_run_around_every_model_call_and_may_refuse():
    calls: list[tuple[str, int]] = []

    class Hooks(ModelCallHooks):
        def __init__(self, refuse: bool) -> None:
            self.refuse = refuse

        def before(self, request: CompletionRequest, settings: ModelSettings, outcome: Outcome) -> None:
            calls.append(("before", request.max_tokens))
            if self.refuse:
                raise ApiError(429, "over budget", "insufficient_quota", "insufficient_quota")

        def after(self, request: CompletionRequest, outcome: Outcome) -> None:
            calls.append(("after", outcome.usage.completion_tokens if outcome.usage else -1))

    response = api(FakeModel(list(TEXT)), spend=Hooks(False)).handle(chat_event()).stream
    assert isinstance(response, StreamingResponse)
    b"".join(response.body)
    assert calls == [("before", 1024), ("after", 7)]
    calls.clear()
    model = FakeModel(list(TEXT))
    outcome = api(model, spend=Hooks(True)).handle(chat_event())
    assert outcome.stream is None and outcome.response["statusCode"] == 429
    assert calls == [("before", 1024)] and model.requests == []


def test_buffered_answer_of_a_stream_when_streaming_is_off():
    response = api(FakeModel(list(TEXT))).handle(chat_event()).stream
    assert isinstance(response, StreamingResponse)
    whole = response.buffered()
    assert whole["statusCode"] == 200 and whole["body"].endswith("data: [DONE]\n\n")


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(("extra", "given"), [({"tools": [WEATHER], "parallel_tool_calls": False}, False),
                                              ({"tools": [WEATHER]}, None),
                                              ({"parallel_tool_calls": True}, None)])  # fmt: skip
def test_parallel_tool_calls_reaches_the_model_with_tools_only(extra, given):
    model = FakeModel([TextDelta("Paris"), Finish("stop")])
    outcome = api(model, Audit()).handle(chat_event(**extra))
    assert outcome.stream is not None
    b"".join(outcome.stream.body)
    assert model.requests[0].parallel_tool_calls is given
