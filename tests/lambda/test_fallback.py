"""The stage's model list (lambda_src/shared/models/fallback.py): on throttling, a timeout or a 5xx the next model is
tried while the request's time budget allows, never after a 4xx; a stream only before its first byte. Bedrock is
stubbed at the botocore layer (Stubber, and real event-stream bytes for ConverseStream)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber

from lambda_src.contracts import metrics
from lambda_src.contracts import spend as s
from lambda_src.inference.logic import Api
from lambda_src.shared import request_log
from lambda_src.shared.config_source import ModelSettings, ModelTarget
from lambda_src.shared.dispatch import Caller, Outcome
from lambda_src.shared.errors import ApiError, invalid_request, rate_limited, upstream_error, upstream_timeout
from lambda_src.shared.models import Completion, CompletionRequest, Message, TextDelta
from lambda_src.shared.models.bedrock import BedrockModel
from lambda_src.shared.models.fallback import MIN_ATTEMPT_SECONDS, ModelChain
from tests.aws_fakes import stub_client
from tests.bedrock_events import RawBody, exception, text_answer
from tests.model_fakes import Audit, FakeModel, FakeStream

PRIMARY = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
SECOND = "amazon.nova-lite-v1:0"
THIRD = "amazon.nova-micro-v1:0"
TARGETS = (ModelTarget("bedrock", PRIMARY, ""), ModelTarget("bedrock", SECOND, ""), ModelTarget("bedrock", THIRD, ""))
SETTINGS = ModelSettings(provider="bedrock", model_id=PRIMARY, temperature=0.2, top_p=0.9, max_output_tokens=256,
                         request_timeout_seconds=25, system_prompt="Be brief.",
                         upstream_base_url="https://api.openai.com/v1", fallbacks=TARGETS[1:],
                         prices={"anthropic.claude-3-5-haiku-20241022-v1:0": s.Price(0.8, 4),
                                 SECOND: s.Price(0.06, 0.24), THIRD: s.Price(0.035, 0.14)})  # fmt: skip
REQUEST = CompletionRequest(model_id=PRIMARY, system=(), messages=(Message("user", "Hi"),), temperature=0, top_p=1,
                            max_tokens=16, stop=(), timeout_seconds=25)  # fmt: skip
CONVERSE_OK = {"output": {"message": {"role": "assistant", "content": [{"text": "Paris."}]}},
               "stopReason": "end_turn", "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
               "metrics": {"latencyMs": 9}}  # fmt: skip


class Settings:
    def settings(self) -> ModelSettings:
        return SETTINGS


@pytest.fixture
def bedrock() -> Any:
    """The Bedrock runtime client every model of the list uses, recording the model each call names."""
    client = stub_client("bedrock-runtime")
    client.called = []
    for operation in ("Converse", "ConverseStream"):
        client.meta.events.register(f"provide-client-params.bedrock-runtime.{operation}",
                                    lambda params, **_: client.called.append(params["modelId"]))  # fmt: skip
    return client


def api(client: Any, audit: Any = None) -> Api:
    return Api(Settings(), lambda target: BedrockModel(lambda _timeout: client), max_body_bytes=65_536, audit=audit,
               stream_seconds=300)  # fmt: skip


def chat(**extra: Any) -> dict[str, Any]:
    body = {"model": PRIMARY, "messages": [{"role": "user", "content": "Capital of France?"}], **extra}
    return {"resource": "/chat/completions", "path": "/chat/completions", "httpMethod": "POST", "headers": {},
            "body": json.dumps(body), "isBase64Encoded": False,
            "requestContext": {"requestId": "r-1", "authorizer": {"keyId": "key_1", "owner": "alice"}}}  # fmt: skip


@pytest.mark.parametrize(("code", "status"), [
    ("ThrottlingException", 429), ("ServiceUnavailableException", 503), ("InternalServerException", 500),
    ("ModelNotReadyException", 429)])  # fmt: skip
def test_a_throttled_or_failing_model_falls_back_to_the_next_and_the_answer_names_it(bedrock, code, status):
    audit = Audit()
    with Stubber(bedrock) as stubber:
        stubber.add_client_error("converse", service_error_code=code, http_status_code=status)
        stubber.add_response("converse", CONVERSE_OK)
        outcome = api(bedrock, audit).handle(chat())
        stubber.assert_no_pending_responses()
    body = json.loads(outcome.response["body"])
    assert outcome.response["statusCode"] == 200 and body["model"] == SECOND
    assert bedrock.called == [PRIMARY, SECOND] and outcome.fallbacks == 1
    assert audit.events[-1].model_id == SECOND  # the audit record names the model that answered


def test_a_model_timeout_falls_back_too(bedrock):

    def send(request: Any, **_: Any) -> AWSResponse:
        if len(bedrock.called) == 1:
            raise ReadTimeoutError(endpoint_url=request.url)
        return AWSResponse(
            request.url, 200, {"Content-Type": "application/json"}, RawBody([json.dumps(CONVERSE_OK).encode()])
        )

    bedrock.meta.events.register_first("before-send.bedrock-runtime.Converse", send)
    outcome = api(bedrock).handle(chat())
    assert outcome.response["statusCode"] == 200 and bedrock.called == [PRIMARY, SECOND]


@pytest.mark.parametrize(("code", "status"), [("ValidationException", 400), ("AccessDeniedException", 403),
                                              ("ResourceNotFoundException", 404)])  # fmt: skip
def test_a_4xx_is_never_a_reason_to_try_another_model(bedrock, code, status):
    with Stubber(bedrock) as stubber:
        stubber.add_client_error("converse", service_error_code=code, http_status_code=status)
        outcome = api(bedrock).handle(chat())
        stubber.assert_no_pending_responses()
    assert outcome.response["statusCode"] in (400, 502) and bedrock.called == [PRIMARY] and outcome.fallbacks == 0


def test_when_every_model_fails_the_caller_gets_the_first_models_error(bedrock):
    with Stubber(bedrock) as stubber:
        stubber.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)
        stubber.add_client_error("converse", service_error_code="InternalServerException", http_status_code=500)
        stubber.add_client_error("converse", service_error_code="ServiceUnavailableException", http_status_code=503)
        outcome = api(bedrock).handle(chat())
    body = json.loads(outcome.response["body"])
    assert outcome.response["statusCode"] == 429 and body["error"]["code"] == "rate_limit_exceeded"
    assert bedrock.called == [PRIMARY, SECOND, THIRD] and outcome.model_id == PRIMARY and outcome.fallbacks == 2


def answer_in_turn(client: Any, answers: list[list[bytes]]) -> None:
    """Each ConverseStream call of ``client`` gets the next of ``answers`` as Bedrock's event-stream bytes."""
    bodies = [RawBody(messages) for messages in answers]

    def send(request: Any, **_: Any) -> AWSResponse:
        headers = {"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": "stub"}
        return AWSResponse(request.url, 200, headers, bodies.pop(0))

    client.meta.events.register_first("before-send.bedrock-runtime.ConverseStream", send)


def test_a_stream_refused_at_its_first_event_falls_back_before_the_first_byte(bedrock):
    answer_in_turn(bedrock, [[exception("throttlingException", "slow down")], text_answer(["Par", "is."])])
    outcome = api(bedrock).handle(chat(stream=True))
    assert outcome.stream is not None and outcome.stream.status_code == 200
    chunks = [json.loads(line.removeprefix("data: ")) for line in b"".join(outcome.stream.body).decode().split("\n\n")
              if line.startswith("data: {")]  # fmt: skip
    assert {chunk["model"] for chunk in chunks} == {SECOND}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Paris."
    assert bedrock.called == [PRIMARY, SECOND] and outcome.fallbacks == 1 and outcome.model_id == SECOND


def test_a_stream_that_breaks_after_its_first_byte_is_not_retried_on_another_model(bedrock):
    answer_in_turn(bedrock, [[*text_answer(["Par"])[:2], exception("throttlingException", "slow down")]])
    outcome = api(bedrock).handle(chat(stream=True))
    assert outcome.stream is not None
    body = b"".join(outcome.stream.body).decode()
    assert "Par" in body and '"error"' in body and bedrock.called == [PRIMARY] and outcome.fallbacks == 0


class Scripted:
    """A model that answers, or raises, what it is given; counts calls."""

    def __init__(self, result: Completion | ApiError) -> None:
        self.result = result
        self.requests: list[CompletionRequest] = []

    def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        if isinstance(self.result, ApiError):
            raise self.result
        return self.result

    def stream(self, request: CompletionRequest) -> Any:
        self.requests.append(request)
        if isinstance(self.result, ApiError):
            raise self.result
        return FakeStream([TextDelta("ok")])


def chain(models: list[Scripted], *, left: list[float]) -> tuple[ModelChain, Outcome]:
    """A chain whose clock reads the next of ``left`` (seconds left of the budget) at each attempt after the first."""
    outcome = Outcome(route="/chat/completions", caller=Caller("key_1", "alice"), request_id="r")
    by_id = dict(zip((t.model_id for t in TARGETS), models, strict=False))
    clock = iter([100 - x for x in left])
    return ModelChain(TARGETS[: len(models)], lambda t: by_id[t.model_id], outcome, deadline=100,
                      clock=lambda: next(clock)), outcome  # fmt: skip


def test_the_next_model_is_tried_only_while_the_time_budget_allows_and_gets_only_what_is_left():
    first, second, third = (
        Scripted(upstream_timeout()),
        Scripted(upstream_error()),
        Scripted(Completion("x", "stop", 1, 1)),
    )
    models, outcome = chain([first, second, third], left=[12.5, MIN_ATTEMPT_SECONDS - 0.1])
    with pytest.raises(ApiError) as raised:
        models.complete(REQUEST)
    assert raised.value.code == "upstream_timeout"  # the first model's error
    assert second.requests[0].timeout_seconds == 12 and third.requests == [] and outcome.fallbacks == 1


def test_a_refusal_that_is_not_the_models_fault_stops_the_list():
    first, second = Scripted(invalid_request("bad")), Scripted(Completion("x", "stop", 1, 1))
    models, outcome = chain([first, second], left=[20])
    with pytest.raises(ApiError):
        models.complete(REQUEST)
    assert second.requests == [] and outcome.model_id == PRIMARY


def test_a_callers_own_rate_limit_is_not_a_models_throttling():
    assert rate_limited("model throttled").retryable
    assert not rate_limited("a key's tokens per minute", retryable=False).retryable


def test_fallbacks_are_counted_in_the_requests_metrics_and_log_line():
    added: list[tuple[str, float]] = []

    class Metrics:
        def add_dimension(self, name: str, value: str) -> None: ...

        def add_metric(self, name: str, unit: Any, value: float) -> None:
            added.append((name, value))

        def flush_metrics(self) -> None: ...

    class Logger:
        def info(self, message: str, extra: dict[str, Any]) -> None:
            added.append(("log.fallbacks", extra["fallbacks"]))

    outcome = Outcome(route="/chat/completions", caller=Caller("key_1", "alice"), request_id="r")
    outcome.fallbacks = 2
    request_log.record(outcome, Metrics(), Logger())
    assert (metrics.MODEL_FALLBACKS, 2) in added and ("log.fallbacks", 2) in added


def test_a_streamed_fallback_model_replays_the_first_event_it_read():
    first, second = Scripted(rate_limited("throttled")), FakeModel([TextDelta("a"), TextDelta("b")])
    outcome = Outcome(route="/chat/completions", caller=Caller("key_1", "alice"), request_id="r")
    models = ModelChain(TARGETS[:2], lambda t: first if t.model_id == PRIMARY else second, outcome,
                        deadline=100, clock=lambda: 0)  # fmt: skip
    stream = models.stream(REQUEST)
    assert list(stream) == [TextDelta("a"), TextDelta("b")] and outcome.model_id == SECOND
    stream.close()
    assert second.stream_.closed
