"""Token and cost budgets in DynamoDB (lambda_src/shared/budget.py) against moto: reserve, refuse, settle, the UTC
periods and their rollover, two calls per request, DynamoDB failures, and a burst of concurrent requests."""

from __future__ import annotations

import calendar
import random
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto.dynamodb.models import DynamoDBBackend

from lambda_src.contracts import spend as s
from lambda_src.shared.budget import Budget, BudgetUnavailableError, Periods
from lambda_src.shared.errors import ApiError
from tests.aws_fakes import REGION, create_usage_table, stub_client
from tools.local.emulator import dynamodb as atomic_writes

KEY = s.key_principal("key_0001")
# Thursday 2026-12-03 19:05:30 UTC: 30 s left of the minute, 17,670 s of the day.
NOW = calendar.timegm((2026, 12, 3, 19, 5, 30))


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    create_usage_table(client)
    return client


def budget(client: Any, clock: Clock | None = None) -> Budget:
    return Budget(client, "usage", clock=clock or Clock(), sleep=lambda _s: None)


def refusal(call: Any) -> ApiError:
    with pytest.raises(ApiError) as raised:
        call()
    return raised.value


def test_periods_are_utc_and_know_when_they_end():
    periods = Periods.at(NOW)
    assert (periods.minute, periods.month, periods.day) == ("2026-12-03T19:05", "2026-12", "03")
    assert periods.minute_ends == calendar.timegm((2026, 12, 3, 19, 6, 0))
    assert periods.day_ends == calendar.timegm((2026, 12, 4, 0, 0, 0))
    assert periods.month_ends == calendar.timegm((2027, 1, 1, 0, 0, 0))  # December rolls into the next year
    leap = Periods.at(calendar.timegm((2028, 2, 29, 23, 59, 59)))
    assert (leap.day, leap.month_ends) == ("29", calendar.timegm((2028, 3, 1, 0, 0, 0)))
    for year, month in ((1999, 12), (2000, 2), (2100, 2), (2026, 6)):  # century and 400-year leap rules
        start = calendar.timegm((year, month, 1, 0, 0, 0))
        assert Periods.at(start).month_ends == calendar.timegm((year + month // 12, month % 12 + 1, 1, 0, 0, 0))


def test_a_reservation_is_counted_and_its_settlement_replaces_it_with_the_actual_use(table):
    spent = budget(table)
    reservation = spent.reserve(KEY, s.Limits(tokens_per_day=10_000), 1_500, 900)
    usage = spent.usage(KEY)
    assert (usage["tokens_this_minute"], usage["tokens_today"], usage["tokens_this_month"]) == (1_500, 1_500, 1_500)
    assert usage["cost_this_month_micro_usd"] == 900
    assert spent.settle(reservation, 420, 250)
    usage = spent.usage(KEY)
    assert (usage["tokens_this_minute"], usage["tokens_today"], usage["tokens_this_month"]) == (420, 420, 420)
    assert usage["cost_this_month_micro_usd"] == 250
    items = {i[s.PERIOD]["S"]: i for i in table.scan(TableName="usage")["Items"]}
    assert set(items) == {"minute#2026-12-03T19:05", "month#2026-12"}
    assert items["minute#2026-12-03T19:05"][s.EXPIRES_AT]["N"] == str(calendar.timegm((2026, 12, 3, 20, 6, 0)))
    assert int(items["month#2026-12"][s.EXPIRES_AT]["N"]) > calendar.timegm((2027, 12, 1, 0, 0, 0))


def test_the_minute_limit_is_a_rate_limit_429_until_the_minute_ends(table):
    clock = Clock()
    spent = budget(table, clock)
    limits = s.Limits(tokens_per_minute=1_000)
    spent.reserve(KEY, limits, 600, 0)
    error = refusal(lambda: spent.reserve(KEY, limits, 600, 0))
    assert (error.status, error.type, error.code, error.headers) == (429, "rate_limit_error", "rate_limit_exceeded",
                                                                     {"Retry-After": "30"})  # fmt: skip
    assert "400 tokens left" in error.message and not error.retryable  # never a reason to try another model
    spent.reserve(KEY, limits, 400, 0)  # what is left still fits
    clock.now += 30  # the next minute
    spent.reserve(KEY, limits, 1_000, 0)


def test_the_daily_limit_is_insufficient_quota_until_midnight_utc_and_the_month_goes_on(table):
    clock = Clock()
    spent = budget(table, clock)
    limits = s.Limits(tokens_per_day=1_000, tokens_per_month=5_000)
    spent.reserve(KEY, limits, 600, 0)
    error = refusal(lambda: spent.reserve(KEY, limits, 600, 0))
    assert (error.status, error.type, error.code) == (429, "insufficient_quota", "insufficient_quota")
    assert (
        error.headers == {"Retry-After": "17670"} and "1000 tokens per day (UTC) has 400 tokens left" in error.message
    )
    clock.now = calendar.timegm((2026, 12, 4, 0, 0, 1))
    spent.reserve(KEY, limits, 600, 0)
    usage = spent.usage(KEY)
    assert (usage["tokens_today"], usage["tokens_this_month"]) == (600, 1_200)


def test_the_months_tokens_and_cost_ceiling_reset_on_the_first_of_the_month_utc(table):
    clock = Clock(calendar.timegm((2026, 12, 31, 23, 59, 50)))
    spent = budget(table, clock)
    limits = s.Limits(tokens_per_month=2_000, cost_per_month_usd=0.01)  # 10,000 micro-USD
    spent.reserve(KEY, limits, 1_000, 9_000)
    cost = refusal(lambda: spent.reserve(KEY, limits, 100, 2_000))
    assert cost.code == "insufficient_quota" and "0.01 USD per month (UTC) has 0.001000 USD left" in cost.message
    assert cost.headers == {"Retry-After": "10"}
    tokens = refusal(lambda: spent.reserve(KEY, limits, 1_001, 0))
    assert "2000 tokens per month (UTC) has 1000 tokens left" in tokens.message
    clock.now += 11  # 2027-01-01T00:00:01
    spent.reserve(KEY, limits, 2_000, 10_000)
    assert spent.usage(KEY)["tokens_this_month"] == 2_000


def test_a_request_larger_than_a_limit_is_refused_without_asking_dynamodb():
    client = stub_client("dynamodb")
    with Stubber(client) as stubber:  # no responses queued: any call would fail the test
        spent = budget(client)
        minute = refusal(lambda: spent.reserve(KEY, s.Limits(tokens_per_minute=500), 501, 0))
        day = refusal(lambda: spent.reserve(KEY, s.Limits(tokens_per_day=500), 501, 0))
        cost = refusal(lambda: spent.reserve(KEY, s.Limits(cost_per_month_usd=0.5), 10, 500_001))
        stubber.assert_no_pending_responses()
    assert (minute.code, day.code, cost.code) == ("rate_limit_exceeded", "insufficient_quota", "insufficient_quota")
    assert "Retry-After" not in minute.headers  # waiting does not help: only a smaller request does


def test_a_settlement_lands_in_the_periods_of_its_reservation(table):
    clock = Clock(calendar.timegm((2026, 12, 3, 23, 59, 59)))
    spent = budget(table, clock)
    reservation = spent.reserve(KEY, s.Limits(tokens_per_day=10_000), 1_000, 0)
    clock.now += 5  # the answer ended the next day
    spent.settle(reservation, 300, 0)
    month = table.get_item(TableName="usage", Key={s.PRINCIPAL: {"S": KEY}, s.PERIOD: {"S": "month#2026-12"}})["Item"]
    assert month["day_03"]["N"] == "300" and "day_04" not in month
    assert spent.usage(KEY)["tokens_today"] == 0


def test_principals_never_share_counters(table):
    spent = budget(table)
    spent.reserve(KEY, s.Limits(), 700, 7)
    other = s.user_principal("0f0e0d0c-0000-4000-8000-000000000001")
    spent.reserve(other, s.Limits(), 5, 1)
    assert spent.usage(KEY)["tokens_this_month"] == 700 and spent.usage(other)["tokens_this_month"] == 5


def test_each_request_costs_two_dynamodb_calls_one_transaction_to_reserve_and_one_to_settle():
    client = stub_client("dynamodb")
    with Stubber(client) as stubber:
        expected = {"TransactItems": ANY, "ClientRequestToken": ANY}
        stubber.add_response("transact_write_items", {}, expected)
        stubber.add_response("transact_write_items", {}, expected)
        spent = budget(client)
        spent.settle(spent.reserve(KEY, s.Limits(tokens_per_minute=9_000, tokens_per_day=90_000), 800, 20), 100, 3)
        stubber.assert_no_pending_responses()


def test_a_settlement_equal_to_the_reservation_writes_nothing():
    client = stub_client("dynamodb")
    with Stubber(client) as stubber:
        stubber.add_response("transact_write_items", {}, {"TransactItems": ANY, "ClientRequestToken": ANY})
        spent = budget(client)
        assert spent.settle(spent.reserve(KEY, s.Limits(), 800, 20), 800, 20)
        stubber.assert_no_pending_responses()


def _cancelled(*codes: str) -> dict[str, Any]:
    return {"service_error_code": "TransactionCanceledException", "service_message": "cancelled",
            "http_status_code": 400, "response_meta": {},
            "modeled_fields": {"CancellationReasons": [{"Code": code} for code in codes]}}  # fmt: skip


def test_a_transaction_conflict_is_retried_with_a_new_token():
    client = stub_client("dynamodb")
    tokens: list[str] = []
    client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems",
                                lambda params, **_: tokens.append(params["ClientRequestToken"]))  # fmt: skip
    with Stubber(client) as stubber:
        stubber.add_client_error("transact_write_items", **_cancelled("TransactionConflict", "None"))
        stubber.add_response("transact_write_items", {})
        budget(client).reserve(KEY, s.Limits(tokens_per_day=5_000), 100, 0)
        stubber.assert_no_pending_responses()
    assert len(tokens) == 2 and tokens[0] != tokens[1]


def test_dynamodb_failing_refuses_the_request_with_503_and_a_failed_settlement_keeps_the_reservation():
    client = stub_client("dynamodb")
    with Stubber(client) as stubber:
        stubber.add_client_error("transact_write_items", "InternalServerError", http_status_code=500)
        with pytest.raises(BudgetUnavailableError):
            budget(client).reserve(KEY, s.Limits(tokens_per_day=5_000), 100, 0)
        stubber.add_response("transact_write_items", {})
        spent = budget(client)
        reservation = spent.reserve(KEY, s.Limits(), 100, 0)
        for _ in range(5):  # a conflict outlasting every attempt
            stubber.add_client_error("transact_write_items", **_cancelled("TransactionConflict", "None"))
        assert spent.settle(reservation, 10, 0) is False
        stubber.add_client_error("batch_get_item", "ResourceNotFoundException", http_status_code=400)
        error = refusal(lambda: spent.usage(KEY))
        assert (error.status, error.code) == (503, "budget_unavailable")
        stubber.assert_no_pending_responses()


@pytest.fixture
def atomic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DynamoDB applies a conditional write atomically; moto does not under concurrent requests, so its writes run
    one at a time here, as in the local emulator (tools/local/emulator/dynamodb.py)."""
    for name in atomic_writes.WRITES:
        monkeypatch.setattr(DynamoDBBackend, name, getattr(DynamoDBBackend, name))
    atomic_writes.install()
    yield


def test_a_burst_of_concurrent_requests_never_reserves_past_a_limit(table, atomic):
    """Twenty-four threads at once each reserve 100 of a 1,000-token day: exactly ten are let through, the counter
    stops at the limit, and the refused ones leave nothing behind."""
    spent = budget(table)
    limits = s.Limits(tokens_per_day=1_000)
    start = threading.Barrier(24)
    passed: list[int] = []
    refused: list[str] = []

    def request(i: int) -> None:
        start.wait()
        try:
            spent.reserve(KEY, limits, 100, 0)
            passed.append(i)
        except ApiError as error:
            refused.append(error.code)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(passed) == 10 and refused == ["insufficient_quota"] * 14
    assert spent.usage(KEY)["tokens_today"] == 1_000


def test_concurrent_requests_that_settle_overshoot_by_no_more_than_their_estimates_were_short(table, atomic):
    """Requests reserve their estimate and settle the model's count, which may be a little more (an input estimate
    is an estimate): the day's total never passes the limit by more than what the requests in flight under-estimated."""
    spent = budget(table)
    limit = 2_000
    limits = s.Limits(tokens_per_day=limit)
    rng = random.Random(7)  # noqa: S311 - test data, not a secret
    actual = [rng.choice([40, 90, 100, 110]) for _ in range(40)]  # estimates are 100 each
    start = threading.Barrier(len(actual))
    settled: list[int] = []

    def request(i: int) -> None:
        start.wait()
        try:
            reservation = spent.reserve(KEY, limits, 100, 0)
        except ApiError:
            return
        spent.settle(reservation, actual[i], 0)
        settled.append(actual[i])

    threads = [threading.Thread(target=request, args=(i,)) for i in range(len(actual))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = spent.usage(KEY)["tokens_today"]
    assert total == sum(settled)  # every settlement counted exactly once
    assert total <= limit + 10 * len(settled)  # at most 10 over per request let through
