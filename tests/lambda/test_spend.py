"""Spend control around the inference API's model calls (lambda_src/shared/spend.py) with the usage table in moto:
whose budget a request spends, the estimate reserved before the call, the actual use settled after it (answers,
streams, a caller that leaves, errors), 429s in OpenAI's shape through the openai SDK, and GET /usage."""

from __future__ import annotations

import calendar
import json
from typing import Any

import boto3
import openai
import pytest

from lambda_src.contracts import spend as s
from lambda_src.inference.logic import Api, Outcome
from lambda_src.shared.budget import Budget
from lambda_src.shared.config_source import ModelSettings
from lambda_src.shared.errors import rate_limited
from lambda_src.shared.models import Completion, CompletionRequest, Image, Message, Tool
from lambda_src.shared.spend import IMAGE_TOKENS, SpendControl, estimate_input_tokens
from tests.aws_fakes import REGION, create_usage_table
from tests.model_fakes import TEXT, FakeModel, sdk_client

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
HAIKU = s.Price(0.25, 1.25)
SETTINGS = ModelSettings(provider="bedrock", model_id=MODEL, temperature=0.2, top_p=0.9, max_output_tokens=1024,
                         request_timeout_seconds=25, system_prompt="Be brief.",
                         upstream_base_url="https://api.openai.com/v1", prices={MODEL: HAIKU})  # fmt: skip
NOW = calendar.timegm((2026, 12, 3, 19, 5, 30))
PLANS = {"standard": s.Limits(tokens_per_minute=5_000, tokens_per_day=20_000, cost_per_month_usd=1)}
QUESTION: list[Any] = [{"role": "user", "content": "Capital of France?"}]
# "Be brief." (9 bytes) + "Capital of France?" (18) + a message's overhead (12): 39 bytes / 3.
ESTIMATE = 13


class Settings:
    def __init__(self, settings: ModelSettings = SETTINGS) -> None:
        self.value = settings

    def settings(self) -> ModelSettings:
        return self.value


class Buffered:
    """A model answering buffered requests with a fixed completion."""

    def __init__(self, completion: Completion | None = None, error: Exception | None = None) -> None:
        self.completion = completion or Completion("Paris.", "stop", 12, 7)
        self.error = error
        self.requests: list[CompletionRequest] = []

    def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        if self.error:
            raise self.error
        return self.completion

    def stream(self, request: CompletionRequest) -> Any:
        raise AssertionError("not streamed")


@pytest.fixture
def budget(aws: None) -> Budget:
    client = boto3.client("dynamodb", region_name=REGION)
    create_usage_table(client)
    return Budget(client, "usage", clock=lambda: NOW)


def api(model: Any, budget: Budget, *, user_limits: s.Limits | None = None) -> Api:
    return Api(Settings(), lambda _target: model, max_body_bytes=65_536, clock=lambda: NOW, stream_seconds=300,
               spend=SpendControl(budget, plans=PLANS, user_limits=user_limits))  # fmt: skip


def event(route: str = "/chat/completions", method: str = "POST", body: Any = None, *, key: str = "key_0001",
          plan: str = "standard", limits: str = "") -> dict[str, Any]:  # fmt: skip
    context = {"requestId": "req-1", "authorizer": {"keyId": key, "owner": "alice", "plan": plan, "limits": limits}}
    return {"resource": route, "path": route, "httpMethod": method, "headers": {},
            "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
            "requestContext": context}  # fmt: skip


def ask(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": QUESTION, **extra}


def answer(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    return outcome.response["statusCode"], json.loads(outcome.response["body"])


def used(budget: Budget, key: str = "key_0001") -> tuple[int, int]:
    counters = budget.usage(s.key_principal(key))
    return counters["tokens_today"], counters["cost_this_month_micro_usd"]


def test_the_input_estimate_counts_bytes_messages_images_and_tools():
    request = CompletionRequest(model_id=MODEL, system=("abc",), messages=(Message("user", "x" * 30),), temperature=0,
                                top_p=1, max_tokens=10, stop=(), timeout_seconds=5)  # fmt: skip
    assert estimate_input_tokens(request) == 15  # (3 + 30 + 12) / 3
    with_image = request._replace(messages=(Message("user", "x" * 30, images=(Image("png", b"\x89PNG"),)),))
    assert estimate_input_tokens(with_image) == 15 + IMAGE_TOKENS
    tool = Tool("get_weather", "Weather by city", {"type": "object"})
    assert estimate_input_tokens(request._replace(tools=(tool,))) > 15
    # Three bytes a token over-counts English (~4 characters a token) and matches CJK (one 3-byte character).
    assert estimate_input_tokens(request._replace(system=(), messages=(Message("user", "東京" * 30),))) == 64


def test_a_buffered_answer_reserves_its_estimate_and_settles_what_the_model_counted_at_its_price(budget):
    model = Buffered()
    seen: list[tuple[int, int]] = []
    original = budget.reserve

    def reserve(principal: str, limits: s.Limits, tokens: int, cost: int) -> Any:
        seen.append((tokens, cost))
        return original(principal, limits, tokens, cost)

    budget.reserve = reserve
    status, body = answer(api(model, budget).handle(event(body=ask(max_tokens=50))))
    assert status == 200 and body["usage"] == {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
    # Reserved: the input estimate and max_tokens at the model's price; settled: 12 in + 7 out.
    assert seen == [(ESTIMATE + 50, HAIKU.cost_micro_usd(ESTIMATE, 50))]
    assert used(budget) == (19, HAIKU.cost_micro_usd(12, 7)) == (19, 12)


def test_a_streamed_answer_settles_its_usage_when_the_stream_ends(budget):
    finished: list[Outcome] = []
    stream = sdk_client(api(FakeModel(list(TEXT)), budget), finished, event).chat.completions.create(
        model=MODEL, messages=QUESTION, stream=True, max_tokens=50)  # fmt: skip
    assert used(budget) == (ESTIMATE + 50, HAIKU.cost_micro_usd(ESTIMATE, 50))  # held while the answer streams
    list(stream)
    assert used(budget) == (12 + 7, HAIKU.cost_micro_usd(12, 7))
    assert finished[0].reservation is None and not finished[0].budget_unsettled


def test_a_caller_that_leaves_a_stream_is_charged_what_was_read_and_said(budget):
    stream = api(FakeModel(list(TEXT)), budget).handle(event(body=ask(stream=True, max_tokens=50))).stream
    assert stream is not None
    body = stream.body
    next(body), next(body), next(body)  # the role chunk and two pieces, then the caller goes away
    body.close()  # type: ignore[attr-defined]
    said = len(b"The capital of France ")
    assert used(budget)[0] == ESTIMATE + -(-said // 3)  # no usage was reported: the input estimate and the output


def test_a_model_that_refused_before_answering_is_charged_nothing(budget):
    model = Buffered(error=rate_limited("Bedrock throttled"))
    status, body = answer(api(model, budget).handle(event(body=ask())))
    assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"
    assert used(budget) == (0, 0)


def test_a_spent_daily_budget_is_a_429_insufficient_quota_and_the_model_is_not_called(budget):
    model = FakeModel(list(TEXT))
    service = api(model, budget)
    own = json.dumps({"tokens_per_day": ESTIMATE + 60})  # the key's own limit: room for one question of 50 tokens
    first_outcome = service.handle(event(body=ask(stream=True, max_tokens=50), limits=own))
    first = first_outcome.stream
    assert first is not None
    b"".join(first.body)
    refused = service.handle(event(body=ask(max_tokens=50), limits=own))
    status, body = answer(refused)
    assert status == 429 and body["error"]["type"] == body["error"]["code"] == "insufficient_quota"
    assert "per day (UTC)" in body["error"]["message"]
    assert refused.response["headers"]["Retry-After"] == str(calendar.timegm((2026, 12, 4, 0, 0, 0)) - NOW)
    assert len(model.requests) == 1
    # Counted for the budget exhaustion alarm (BudgetExhausted), the answered request not.
    assert refused.budget_exhausted and not first_outcome.budget_exhausted


def test_the_openai_sdk_reads_a_spent_budget_as_its_rate_limit_error_with_openais_code(budget):
    model = FakeModel(list(TEXT))
    spent = SpendControl(budget, plans={"standard": s.Limits(tokens_per_day=10)})
    sdk = sdk_client(Api(Settings(), lambda _t: model, max_body_bytes=65_536, spend=spent), [], event)
    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=5, stream=True)
    assert raised.value.code == "insufficient_quota" and model.requests == []


def test_a_keys_own_limits_override_its_plans_field_by_field_and_bad_ones_are_ignored(budget):
    control = SpendControl(budget, plans=PLANS)
    own = json.dumps({"tokens_per_day": 100, "cost_per_month_usd": None, "tokens_per_month": -5, "color": "red"})
    service = api(Buffered(), budget)
    caller = service.handle(event("/usage", "GET", limits=own)).caller
    principal, limits = control.principal(caller)
    assert principal == "key#key_0001"
    assert limits == s.Limits(tokens_per_minute=5_000, tokens_per_day=100, tokens_per_month=None,
                              cost_per_month_usd=None)  # fmt: skip


def test_a_key_on_a_plan_without_a_budget_is_refused_never_served_unmetered(budget):
    model = Buffered()
    status, body = answer(api(model, budget).handle(event(body=ask(), plan="retired")))
    assert status == 500 and body["error"]["code"] == "internal_error" and model.requests == []


def test_a_model_without_a_price_is_refused_before_it_is_called(budget):
    model = Buffered()
    service = Api(Settings(SETTINGS._replace(prices={})), lambda _t: model, max_body_bytes=65_536,
                  spend=SpendControl(budget, plans=PLANS))  # fmt: skip
    status, body = answer(service.handle(event(body=ask())))
    assert status == 500 and "no price" in body["error"]["message"] and model.requests == []


def test_usage_answers_the_callers_own_limits_and_use_only(budget):
    service = api(Buffered(), budget)
    answer(service.handle(event(body=ask(max_tokens=50), key="key_000a")))
    status, mine = answer(service.handle(event("/usage", "GET", key="key_000a")))
    assert status == 200 and mine["object"] == "usage"
    assert mine["limits"] == PLANS["standard"]._asdict()
    assert mine["usage"] == {"tokens_this_minute": 19, "tokens_today": 19, "tokens_this_month": 19,
                             "cost_this_month_usd": 0.000012}  # fmt: skip
    assert mine["resets_at"]["day"] == calendar.timegm((2026, 12, 4, 0, 0, 0))
    _, theirs = answer(service.handle(event("/usage", "GET", key="key_000b")))
    assert theirs["usage"]["tokens_this_month"] == 0  # another key sees only itself
    assert "key_000a" not in json.dumps(theirs)


def test_usage_takes_no_query_or_body_that_could_name_another_caller(budget):
    service = api(Buffered(), budget)
    answer(service.handle(event(body=ask(max_tokens=50), key="key_000a")))
    probe = event("/usage", "GET", key="key_000b")
    probe["queryStringParameters"] = {"key": "key_000a", "principal": "key#key_000a"}
    _, theirs = answer(service.handle(probe))
    assert theirs["usage"]["tokens_this_month"] == 0


def test_a_settlement_that_cannot_be_written_is_counted_and_the_answer_still_leaves(budget):
    service = api(Buffered(), budget)

    def unavailable(*_args: Any) -> bool:
        return False

    budget.settle = unavailable
    outcome = service.handle(event(body=ask(max_tokens=50)))
    assert outcome.response["statusCode"] == 200 and outcome.budget_unsettled
