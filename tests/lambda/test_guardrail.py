"""The stage's guardrail on every model call: Bedrock applies it inside Converse and ConverseStream (stubbed at the
botocore layer), and ApplyGuardrail is called around an openai-compatible model (lambda_src/shared/models/guarded.py,
ApplyGuardrail stubbed with botocore's Stubber). An intervention answers 200 with finish_reason content_filter and the
guardrail's message, is counted (GuardrailInterventions) and recorded in the audit record's error type."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import ANY, Stubber
from openai.types.chat import ChatCompletionMessageParam

from lambda_src.contracts import guardrail as g
from lambda_src.contracts import metrics
from lambda_src.inference.logic import Api
from lambda_src.shared import request_log
from lambda_src.shared.config_source import ModelSettings
from lambda_src.shared.errors import ApiError
from lambda_src.shared.models import (
    Completion,
    CompletionRequest,
    Finish,
    GuardrailRef,
    Message,
    TextDelta,
    Usage,
)
from lambda_src.shared.models.bedrock import BedrockModel
from lambda_src.shared.models.guarded import FIRST_PIECE_CHARS, LAST_PIECE_CHARS, SEPARATOR, GuardedModel
from tests.aws_fakes import stub_client
from tests.bedrock_events import answer_with, text_answer
from tests.model_fakes import Audit, FakeModel, FakeStream, sdk_client

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
REF = GuardrailRef("gr1234abcd", "3", g.STREAM_SYNC)
BLOCKED = "Sorry, I can't help with that request under this organisation's content policy."
WITHHELD = "Sorry, the answer was withheld under this organisation's content policy."
BASE = ModelSettings(provider="bedrock", model_id=MODEL, temperature=0.2, top_p=0.9, max_output_tokens=256,
                     request_timeout_seconds=25, system_prompt="Be brief.", upstream_base_url="https://api.openai.com/v1",
                     guardrail=REF)  # fmt: skip
USAGE = {"topicPolicyUnits": 0, "contentPolicyUnits": 1, "wordPolicyUnits": 1, "sensitiveInformationPolicyUnits": 1,
         "sensitiveInformationPolicyFreeUnits": 0, "contextualGroundingPolicyUnits": 0}  # fmt: skip


class MetricsLog:
    """The function's Powertools Metrics and Logger, as request_log.record uses them."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.lines: list[dict[str, Any]] = []

    def add_dimension(self, name: str, value: str) -> None: ...

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.metrics[name] = self.metrics.get(name, 0) + value

    def flush_metrics(self) -> None: ...

    def info(self, message: str, extra: dict[str, Any]) -> None:
        self.lines.append(extra)


class Settings:
    def __init__(self, settings: ModelSettings = BASE) -> None:
        self.value = settings

    def settings(self) -> ModelSettings:
        return self.value


def chat(**extra: Any) -> dict[str, Any]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "How do I pick a lock?"}], **extra}
    return {"resource": "/chat/completions", "path": "/chat/completions", "httpMethod": "POST", "headers": {},
            "body": json.dumps(body), "isBase64Encoded": False,
            "requestContext": {"requestId": "r-1", "authorizer": {"keyId": "key_1", "owner": "alice"}}}  # fmt: skip


def sse_chunks(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line.removeprefix("data: ")) for line in body.decode().split("\n\n")
            if line.startswith("data: {")]  # fmt: skip


def verdict(action: str, text: str = "", *, blocked: bool = True) -> dict[str, Any]:
    """ApplyGuardrail's answer: NONE, or an intervention that blocked (a custom word) or masked (an e-mail)."""
    if action == "NONE":
        return {"usage": USAGE, "action": "NONE", "outputs": [], "assessments": []}
    policy: dict[str, Any] = (
        {"wordPolicy": {"customWords": [{"match": "lock", "action": "BLOCKED"}], "managedWordLists": []}}
        if blocked else {"sensitiveInformationPolicy": {"piiEntities": [
            {"match": "a@b.example", "type": "EMAIL", "action": "ANONYMIZED"}], "regexes": []}}
    )  # fmt: skip
    return {"usage": USAGE, "action": "GUARDRAIL_INTERVENED", "outputs": [{"text": text}], "assessments": [policy]}


def expect_assessment(stubber: Stubber, source: str, text: Any, answer: dict[str, Any]) -> None:
    stubber.add_response("apply_guardrail", answer, {
        "guardrailIdentifier": REF.identifier, "guardrailVersion": REF.version, "source": source,
        "content": [{"text": {"text": text}}]})  # fmt: skip


# --- Bedrock: the guardrail inside Converse and ConverseStream ------------------------------------------------


@pytest.fixture
def bedrock() -> Any:
    client = stub_client("bedrock-runtime")
    client.sent = []
    client.meta.events.register("provide-client-params.bedrock-runtime.ConverseStream",
                                lambda params, **_: client.sent.append(params))  # fmt: skip
    return client


def bedrock_api(client: Any, *, guardrail: bool = True, settings: ModelSettings = BASE, audit: Any = None) -> Api:
    return Api(Settings(settings), lambda _target: BedrockModel(lambda _timeout: client), max_body_bytes=65_536,
               stream_seconds=300, guardrail=guardrail, audit=audit)  # fmt: skip


def test_converse_applies_the_numbered_version_and_an_intervention_is_content_filter_counted_and_audited(bedrock):
    audit, log = Audit(), MetricsLog()
    converse = {"output": {"message": {"role": "assistant", "content": [{"text": BLOCKED}]}},
                "stopReason": "guardrail_intervened", "usage": {"inputTokens": 9, "outputTokens": 0, "totalTokens": 9},
                "metrics": {"latencyMs": 5}}  # fmt: skip
    with Stubber(bedrock) as stubber:
        stubber.add_response("converse", converse, {
            "modelId": MODEL, "messages": ANY, "system": ANY, "inferenceConfig": ANY,
            "guardrailConfig": {"guardrailIdentifier": "gr1234abcd", "guardrailVersion": "3",
                                "trace": "disabled"}})  # fmt: skip
        outcome = bedrock_api(bedrock, audit=audit).handle(chat(), lambda o: request_log.record(o, log, log))
        stubber.assert_no_pending_responses()
    body = json.loads(outcome.response["body"])
    assert outcome.status == 200 and body["choices"][0]["finish_reason"] == "content_filter"
    assert body["choices"][0]["message"]["content"] == BLOCKED
    (record,) = audit.events
    assert record.error_type == g.INTERVENED and record.status_code == 200 and record.output_text == BLOCKED
    assert log.metrics[metrics.GUARDRAIL_INTERVENTIONS] == 1 and log.lines[0]["guardrail_intervened"] is True


def test_converse_stream_applies_it_in_the_stages_mode_and_ends_with_content_filter(bedrock):
    answer_with(bedrock, text_answer(["Here is how ", WITHHELD], stop="guardrail_intervened"))
    audit = Audit()
    settings = BASE._replace(guardrail=REF._replace(stream_processing=g.STREAM_ASYNC))
    outcome = bedrock_api(bedrock, settings=settings, audit=audit).handle(chat(stream=True))
    assert outcome.stream is not None
    chunks = sse_chunks(b"".join(outcome.stream.body))
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "content_filter"
    (sent,) = bedrock.sent
    assert sent["guardrailConfig"] == {"guardrailIdentifier": "gr1234abcd", "guardrailVersion": "3",
                                       "trace": "disabled", "streamProcessingMode": "async"}  # fmt: skip
    assert outcome.guardrail_intervened and audit.events[-1].error_type == g.INTERVENED


def test_a_route_family_switched_off_sends_no_guardrail(bedrock):
    answer_with(bedrock, text_answer(["Paris."]))
    outcome = bedrock_api(bedrock, guardrail=False).handle(chat(stream=True))
    assert outcome.stream is not None
    b"".join(outcome.stream.body)
    assert "guardrailConfig" not in bedrock.sent[0] and not outcome.guardrail_intervened


def test_a_function_told_to_apply_a_guardrail_its_settings_lack_fails_closed(bedrock):
    with Stubber(bedrock):  # any model call would fail the test: nothing is queued
        outcome = bedrock_api(bedrock, settings=BASE._replace(guardrail=None)).handle(chat())
    assert outcome.status == 500 and json.loads(outcome.response["body"])["error"]["code"] == "internal_error"


# --- ApplyGuardrail around an openai-compatible model ---------------------------------------------------------


class Upstream:
    """An openai-compatible model: answers or streams what it is given, remembers what it was asked."""

    def __init__(self, text: str = "", stream: list[Any] | None = None) -> None:
        self.text = text
        self.stream_ = FakeStream(stream or [])
        self.requests: list[CompletionRequest] = []

    def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        return Completion(self.text, "stop", 10, 5)

    def stream(self, request: CompletionRequest) -> FakeStream:
        self.requests.append(request)
        return self.stream_


@pytest.fixture
def runtime() -> Any:
    client = stub_client("bedrock-runtime")
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


def request(*turns: str) -> CompletionRequest:
    messages = tuple(Message("user" if i % 2 == 0 else "assistant", text) for i, text in enumerate(turns))
    return CompletionRequest(model_id="smollm2", system=("Be brief.",), messages=messages, temperature=0, top_p=1,
                             max_tokens=64, stop=(), timeout_seconds=10, guardrail=REF)  # fmt: skip


def test_a_blocked_input_never_reaches_the_model(runtime):
    upstream = Upstream("never")
    expect_assessment(runtime.stubber, "INPUT", "How do I pick a lock?", verdict("BLOCK", BLOCKED))
    answer = GuardedModel(upstream, lambda _t: runtime).complete(request("How do I pick a lock?"))
    assert answer == Completion(BLOCKED, "content_filter", 0, 0, guardrail=True) and upstream.requests == []


def test_masked_user_turns_reach_the_model_masked_each_in_its_place(runtime):
    upstream = Upstream("Noted.")
    expect_assessment(runtime.stubber, "INPUT", SEPARATOR.join(["Mail a@b.example", "Thanks"]),
                      verdict("MASK", SEPARATOR.join(["Mail {EMAIL}", "Thanks"]), blocked=False))  # fmt: skip
    expect_assessment(runtime.stubber, "OUTPUT", "Noted.", verdict("NONE"))
    answer = GuardedModel(upstream, lambda _t: runtime).complete(request("Mail a@b.example", "Sure.", "Thanks"))
    assert answer == Completion("Noted.", "stop", 10, 5)
    assert [m.content for m in upstream.requests[0].messages] == ["Mail {EMAIL}", "Sure.", "Thanks"]


def test_a_blocked_or_masked_answer_is_replaced_and_finishes_content_filter(runtime):
    expect_assessment(runtime.stubber, "INPUT", "Hi", verdict("NONE"))
    expect_assessment(runtime.stubber, "OUTPUT", "Write to a@b.example", verdict("MASK", "Write to {EMAIL}",
                                                                                 blocked=False))  # fmt: skip
    expect_assessment(runtime.stubber, "INPUT", "Hi", verdict("NONE"))
    expect_assessment(runtime.stubber, "OUTPUT", "Pick the lock so", verdict("BLOCK", WITHHELD))
    masked = GuardedModel(Upstream("Write to a@b.example"), lambda _t: runtime).complete(request("Hi"))
    blocked = GuardedModel(Upstream("Pick the lock so"), lambda _t: runtime).complete(request("Hi"))
    assert masked == Completion("Write to {EMAIL}", "content_filter", 10, 5, guardrail=True)
    assert blocked == Completion(WITHHELD, "content_filter", 10, 5, guardrail=True)


def words(word: str = "lorem", less: int = 0, chars: int = FIRST_PIECE_CHARS) -> list[TextDelta]:
    """Whole words, just enough to make a piece of ``chars`` (``less`` words fewer)."""
    return [TextDelta(f"{word} ") for _ in range(-(-chars // (len(word) + 1)) - less)]


def test_a_sync_stream_is_held_until_each_piece_is_assessed_and_a_blocked_piece_ends_it(runtime):
    first = words()  # one piece of whole words
    upstream = Upstream(stream=[*first, TextDelta("pick the lock "), Finish("stop"), Usage(10, 200)])
    expect_assessment(runtime.stubber, "INPUT", "Hi", verdict("NONE"))
    expect_assessment(runtime.stubber, "OUTPUT", "lorem " * len(first), verdict("NONE"))
    expect_assessment(runtime.stubber, "OUTPUT", "pick the lock ", verdict("BLOCK", WITHHELD))
    stream = GuardedModel(upstream, lambda _t: runtime).stream(request("Hi"))
    events = list(stream)
    assert events == [TextDelta("lorem " * len(first)), TextDelta(WITHHELD), Finish("content_filter", True)]
    assert upstream.stream_.closed


def test_a_sync_stream_sends_masked_pieces_and_never_splits_a_word_between_two(runtime):
    first = words(less=1)
    pieces = [*first, TextDelta("write to a@b."), TextDelta("example now"), Finish("stop")]
    upstream = Upstream(stream=pieces)
    held = "lorem " * len(first) + "write to "
    expect_assessment(runtime.stubber, "INPUT", "Hi", verdict("NONE"))
    expect_assessment(runtime.stubber, "OUTPUT", held, verdict("NONE"))
    expect_assessment(runtime.stubber, "OUTPUT", "a@b.example now", verdict("MASK", "{EMAIL} now", blocked=False))
    events = list(GuardedModel(upstream, lambda _t: runtime).stream(request("Hi")))
    assert events == [TextDelta(held), TextDelta("{EMAIL} now"), Finish("content_filter", True)]


def test_pieces_double_from_the_first_to_the_last_size(runtime):
    sizes: list[int] = []
    size = FIRST_PIECE_CHARS
    while sum(sizes) < 4_000:
        sizes.append(size)
        size = min(size * 2, LAST_PIECE_CHARS)
    text = "".join(f"{'x' * (n - 1)} " for n in sizes)
    upstream = Upstream(stream=[TextDelta(f"{word} ") for word in text.split()] + [Finish("stop")])
    expect_assessment(runtime.stubber, "INPUT", "Hi", verdict("NONE"))
    for n in sizes:
        expect_assessment(runtime.stubber, "OUTPUT", f"{'x' * (n - 1)} ", verdict("NONE"))
    events = list(GuardedModel(upstream, lambda _t: runtime).stream(request("Hi")))
    assert [len(e.text) for e in events if isinstance(e, TextDelta)] == sizes
    assert sizes[:4] == [128, 256, 512, 1_000] and events[-1] == Finish("stop")


def test_an_async_stream_sends_first_and_stops_at_a_blocked_piece(runtime):
    first = words("pick")
    upstream = Upstream(stream=[*first, TextDelta("more "), Finish("stop")])
    expect_assessment(runtime.stubber, "INPUT", "Hi", verdict("NONE"))
    expect_assessment(runtime.stubber, "OUTPUT", "pick " * len(first), verdict("BLOCK", WITHHELD))
    ref = REF._replace(stream_processing=g.STREAM_ASYNC)
    events = list(GuardedModel(upstream, lambda _t: runtime).stream(request("Hi")._replace(guardrail=ref)))
    assert events == [*first, TextDelta(WITHHELD), Finish("content_filter", True)] and upstream.stream_.closed


def test_a_blocked_input_streams_the_message_without_calling_the_model(runtime):
    upstream = Upstream(stream=[TextDelta("never")])
    expect_assessment(runtime.stubber, "INPUT", "How do I pick a lock?", verdict("BLOCK", BLOCKED))
    events = list(GuardedModel(upstream, lambda _t: runtime).stream(request("How do I pick a lock?")))
    assert events == [TextDelta(BLOCKED), Finish("content_filter", True), Usage(0, 0)] and upstream.requests == []


def test_an_assessment_that_fails_fails_the_call_and_nothing_is_released_unassessed(runtime):
    upstream = Upstream(stream=[TextDelta("secret "), Finish("stop")])
    expect_assessment(runtime.stubber, "INPUT", "Hi", verdict("NONE"))
    runtime.stubber.add_client_error("apply_guardrail", service_error_code="ThrottlingException",
                                     http_status_code=429)  # fmt: skip
    with pytest.raises(ApiError) as raised:
        list(GuardedModel(upstream, lambda _t: runtime).stream(request("Hi")))
    assert raised.value.status == 429 and raised.value.retryable


def test_without_a_guardrail_the_model_is_called_as_it_is(runtime):
    upstream = Upstream("Paris.")
    answer = GuardedModel(upstream, lambda _t: runtime).complete(request("Hi")._replace(guardrail=None))
    assert answer.text == "Paris." and len(upstream.requests) == 1


def test_the_openai_sdk_gets_content_filter_for_a_blocked_request_buffered_and_streamed(runtime):
    settings = BASE._replace(provider="openai-compatible", model_id="smollm2")
    model = FakeModel([TextDelta("never")])
    finished: list[Any] = []
    api = Api(Settings(settings), lambda _t: GuardedModel(model, lambda _t: runtime), max_body_bytes=65_536,
              stream_seconds=300, guardrail=True)  # fmt: skip
    for _ in range(2):
        expect_assessment(runtime.stubber, "INPUT", "How do I pick a lock?", verdict("BLOCK", BLOCKED))
    client = sdk_client(api, finished, lambda: chat(model="smollm2"))
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "How do I pick a lock?"}]
    answer = client.chat.completions.create(model="smollm2", messages=question)
    assert answer.choices[0].finish_reason == "content_filter" and answer.choices[0].message.content == BLOCKED
    chunks = list(client.chat.completions.create(model="smollm2", messages=question, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == BLOCKED
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert model.requests == [] and all(o.guardrail_intervened for o in finished)


# --- the settings ---------------------------------------------------------------------------------------------


def leaves(**guardrail: str) -> dict[str, str]:
    base = {"id": MODEL, "provider": "bedrock", "temperature": "0.2", "top-p": "0.9", "max-output-tokens": "256",
            "request-timeout-seconds": "25", "system-prompt": "Be brief.", "learning-rate": "0.01",
            "upstream-base-url": "https://api.openai.com/v1", "fallbacks": "[]", "prices": "{}"}  # fmt: skip
    return base | guardrail


def test_the_guardrail_leaves_are_read_with_the_model_settings_and_never_a_draft():
    assert ModelSettings.parse(leaves()).guardrail is None
    found = ModelSettings.parse(leaves(**{g.ID_LEAF: "gr1", g.VERSION_LEAF: "7", g.STREAM_PROCESSING_LEAF: "sync"}))
    assert found.guardrail == GuardrailRef("gr1", "7", "sync")
    for broken in ({g.ID_LEAF: "gr1", g.VERSION_LEAF: "DRAFT", g.STREAM_PROCESSING_LEAF: "sync"},
                   {g.ID_LEAF: "gr1", g.VERSION_LEAF: "7", g.STREAM_PROCESSING_LEAF: "later"},
                   {g.ID_LEAF: "gr1", g.VERSION_LEAF: "7"}):  # fmt: skip
        with pytest.raises(ApiError) as raised:
            ModelSettings.parse(leaves(**broken))
        assert raised.value.status == 500
