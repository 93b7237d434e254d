"""Token and cost budgets in DynamoDB: reserve before a model call, settle with what it used after.

Both are one TransactWriteItems of two updates (the principal's minute item and its month item, laid out in
lambda_src/contracts/spend.py), so a request costs two DynamoDB calls. The reservation ``ADD``s the estimate to
every counter under a condition per limited counter, ``attribute_not_exists(c) OR c <= :limit_minus_estimate``
(conditions have no arithmetic, so the room is computed here): the counters are integers and the check and the
increment are one atomic write, so concurrent requests never read-modify-write and together never reserve more
than a limit. The settlement ``ADD``s the difference between the actual use and the reservation (negative when the
answer was shorter), unconditionally: usage that happened is counted even past a limit.

Periods are UTC. A new minute, day or month is a new item or attribute, so nothing is ever reset.
"""

from __future__ import annotations

import calendar
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from lambda_src.contracts import spend as s
from lambda_src.shared.errors import ApiError, insufficient_quota, rate_limited

LOGGER = logging.getLogger(__name__)
# Concurrent transactions on one principal's items conflict (DynamoDB cancels one with TransactionConflict);
# such a write is retried after a short random wait.
ATTEMPTS = 5
_BACKOFF_SECONDS = 0.01
_RETRIED_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


class Periods(NamedTuple):
    """The UTC periods an instant falls in, and when each ends (epoch seconds)."""

    minute: str  # 2026-12-03T19:05
    month: str  # 2026-12
    day: str  # 03
    minute_ends: int
    day_ends: int
    month_ends: int

    @classmethod
    def at(cls, now: float) -> Periods:
        t = time.gmtime(now)
        start_of_day = int(now) - (t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec)
        month_ends = calendar.timegm((t.tm_year + (t.tm_mon == 12), t.tm_mon % 12 + 1, 1, 0, 0, 0))
        return cls(f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}",
                   f"{t.tm_year:04d}-{t.tm_mon:02d}", f"{t.tm_mday:02d}", int(now) - t.tm_sec + 60,
                   start_of_day + 86_400, month_ends)  # fmt: skip


class Reservation(NamedTuple):
    """What a request holds of a principal's budget until it settles."""

    principal: str
    periods: Periods
    tokens: int
    cost: int  # micro-USD


class BudgetUnavailableError(Exception):
    """DynamoDB could not be asked: the request is refused (503), never served unmetered."""


def budget_unavailable() -> ApiError:
    return ApiError(503, "The budget of this caller could not be checked; try again later.", "server_error",
                    "budget_unavailable")  # fmt: skip


class Budget:
    """``client``: a low-level DynamoDB client (botocore's retries apply to each call); ``table``: the usage table."""

    def __init__(self, client: Any, table: str, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.client = client
        self.table = table
        self.clock = clock
        self.sleep = sleep

    def reserve(self, principal: str, limits: s.Limits, tokens: int, cost: int) -> Reservation:
        """Hold ``tokens`` and ``cost`` (micro-USD) of the principal's budget, or raise the 429 of the first limit
        it would pass (``rate_limit_exceeded`` per minute, ``insufficient_quota`` per day or month) with when it
        resets; 503 when DynamoDB cannot be reached."""
        periods = Periods.at(self.clock())
        cost_limit = limits.cost_micro_usd()
        too_big = _larger_than_limit(limits, tokens, cost, cost_limit)
        if too_big is not None:
            raise too_big
        minute, month = self._keys(principal, periods)
        reasons = self._transact([{"Update": self._reserve_minute(minute, periods, limits, tokens)},
                                  {"Update": self._reserve_month(month, periods, limits, tokens, cost)}],
                                 "reserve")  # fmt: skip
        if reasons:
            raise _refusal(reasons, Asked(limits, tokens, cost), periods, self.clock())
        return Reservation(principal, periods, tokens, cost)

    def _reserve_minute(self, key: dict[str, Any], periods: Periods, limits: s.Limits, tokens: int) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table, "Key": key, "UpdateExpression": "ADD #t :t SET #e = :e",
            "ExpressionAttributeNames": {"#t": s.TOKENS, "#e": s.EXPIRES_AT},
            "ExpressionAttributeValues": {":t": _n(tokens), ":e": _n(periods.minute_ends + s.MINUTE_KEPT_SECONDS)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }  # fmt: skip
        if limits.tokens_per_minute is not None:
            update["ConditionExpression"] = "attribute_not_exists(#t) OR #t <= :room"
            update["ExpressionAttributeValues"][":room"] = _n(limits.tokens_per_minute - tokens)
        return update

    def _reserve_month(self, key: dict[str, Any], periods: Periods, limits: s.Limits, tokens: int,
                       cost: int) -> dict[str, Any]:  # fmt: skip
        """The month item: the month's tokens and cost and today's tokens, each under its own limit's condition."""
        values = {":t": _n(tokens), ":c": _n(cost), ":e": _n(periods.month_ends + s.MONTH_KEPT_SECONDS)}
        conditions = []
        for name, limit, used in (("#t", limits.tokens_per_month, tokens), ("#d", limits.tokens_per_day, tokens),
                                  ("#c", limits.cost_micro_usd(), cost)):  # fmt: skip
            if limit is not None:
                room = f":r{name[1]}"
                conditions.append(f"(attribute_not_exists({name}) OR {name} <= {room})")
                values[room] = _n(limit - used)
        update: dict[str, Any] = {
            "TableName": self.table, "Key": key, "UpdateExpression": "ADD #t :t, #c :c, #d :t SET #e = :e",
            "ExpressionAttributeNames": {"#t": s.TOKENS, "#c": s.COST, "#d": s.DAY_PREFIX + periods.day,
                                         "#e": s.EXPIRES_AT},
            "ExpressionAttributeValues": values, "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }  # fmt: skip
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
        return update

    def settle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        """Replace the reservation with the actual ``tokens`` and ``cost``; False (logged) when DynamoDB could not
        be reached: the reservation then stays counted, which over-counts and never lets a caller pass a limit."""
        delta_tokens, delta_cost = tokens - reservation.tokens, cost - reservation.cost
        if not delta_tokens and not delta_cost:
            return True
        minute, month = self._keys(reservation.principal, reservation.periods)
        names = {"#t": s.TOKENS, "#c": s.COST, "#d": s.DAY_PREFIX + reservation.periods.day}
        items = [{"Update": {"TableName": self.table, "Key": minute, "UpdateExpression": "ADD #t :t",
                             "ExpressionAttributeNames": {"#t": s.TOKENS},
                             "ExpressionAttributeValues": {":t": _n(delta_tokens)}}},
                 {"Update": {"TableName": self.table, "Key": month, "UpdateExpression": "ADD #t :t, #c :c, #d :t",
                             "ExpressionAttributeNames": names,
                             "ExpressionAttributeValues": {":t": _n(delta_tokens), ":c": _n(delta_cost)}}}]  # fmt: skip
        try:
            reasons = self._transact(items, "settle")
        except BudgetUnavailableError:
            return False
        if reasons:  # no conditions: only a conflict that outlasted the retries
            LOGGER.error("the budget could not be settled", extra={"reasons": reasons})
            return False
        return True

    def usage(self, principal: str) -> dict[str, int]:
        """The principal's counters now: tokens this minute, today and this month, cost this month (micro-USD)."""
        periods = Periods.at(self.clock())
        minute, month = self._keys(principal, periods)
        try:
            found = self.client.batch_get_item(RequestItems={self.table: {"Keys": [minute, month],
                                                                          "ConsistentRead": True}})  # fmt: skip
        except (ClientError, BotoCoreError) as error:
            LOGGER.error("the usage table could not be read", extra={"error_type": type(error).__name__})
            raise budget_unavailable() from None
        items = {item[s.PERIOD]["S"]: item for item in found.get("Responses", {}).get(self.table, [])}
        minute_item = items.get(minute[s.PERIOD]["S"], {})
        month_item = items.get(month[s.PERIOD]["S"], {})
        return {
            "tokens_this_minute": _count(minute_item, s.TOKENS),
            "tokens_today": _count(month_item, s.DAY_PREFIX + periods.day),
            "tokens_this_month": _count(month_item, s.TOKENS),
            "cost_this_month_micro_usd": _count(month_item, s.COST),
            "minute_ends": periods.minute_ends,
            "day_ends": periods.day_ends,
            "month_ends": periods.month_ends,
        }

    def _keys(self, principal: str, periods: Periods) -> tuple[dict[str, Any], dict[str, Any]]:
        return ({s.PRINCIPAL: {"S": principal}, s.PERIOD: {"S": s.MINUTE_PREFIX + periods.minute}},
                {s.PRINCIPAL: {"S": principal}, s.PERIOD: {"S": s.MONTH_PREFIX + periods.month}})  # fmt: skip

    def _transact(self, items: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
        """Write the transaction; the cancellation reasons of a failed condition ([] when it was written).
        Conflicts with a concurrent transaction are retried; BudgetUnavailableError when DynamoDB fails."""
        for attempt in range(ATTEMPTS):
            # Idempotent for DynamoDB's 10 minutes: botocore's own retry of a timed-out call (the same token) cannot
            # count twice; a retry after a cancellation here is a new transaction (a new token).
            token = os.urandom(16).hex()
            try:
                self.client.transact_write_items(TransactItems=items, ClientRequestToken=token)
                return []
            except ClientError as error:
                reasons = error.response.get("CancellationReasons") or []
                codes = {str(reason.get("Code")) for reason in reasons}
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    LOGGER.error("the usage table refused a write", extra={"error_code": _code(error)})
                    raise BudgetUnavailableError() from None
                if "ConditionalCheckFailed" in codes:
                    return list(reasons)
                if not codes & _RETRIED_REASONS or attempt == ATTEMPTS - 1:
                    LOGGER.error("a budget write was cancelled", extra={"reasons": sorted(codes), "phase": phase})
                    raise BudgetUnavailableError() from None
                self.sleep(random.uniform(0, _BACKOFF_SECONDS * 2**attempt))  # noqa: S311 - jitter, not a secret
            except BotoCoreError as error:
                LOGGER.error("the usage table could not be reached", extra={"error_type": type(error).__name__})
                raise BudgetUnavailableError() from None
        raise BudgetUnavailableError()  # pragma: no cover - the loop returns or raises


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _count(item: dict[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _larger_than_limit(limits: s.Limits, tokens: int, cost: int, cost_limit: int | None) -> ApiError | None:
    """A request that no amount of waiting lets through: its estimate alone is over a limit."""
    if limits.tokens_per_minute is not None and tokens > limits.tokens_per_minute:
        return rate_limited(f"This request may use up to {tokens} tokens, more than this caller's limit of "
                            f"{limits.tokens_per_minute} tokens per minute; ask for fewer max_tokens or send less.",
                            retryable=False)  # fmt: skip
    for limit, what in ((limits.tokens_per_day, "tokens per day"), (limits.tokens_per_month, "tokens per month")):
        if limit is not None and tokens > limit:
            return insufficient_quota(f"This request may use up to {tokens} tokens, more than this caller's limit of "
                                      f"{limit} {what}; ask for fewer max_tokens or send less.")  # fmt: skip
    if cost_limit is not None and cost > cost_limit:
        return insufficient_quota("This request may cost more than this caller's monthly cost limit; ask for fewer "
                                  "max_tokens or send less.")  # fmt: skip
    return None


class Asked(NamedTuple):
    """What a reservation asked for, under which limits."""

    limits: s.Limits
    tokens: int
    cost: int  # micro-USD


def _refusal(reasons: list[dict[str, Any]], asked: Asked, periods: Periods, now: float) -> ApiError:
    """The 429 of the limit the reservation would pass (the minute item's condition, or one of the month item's),
    with what is left of it and when it resets."""
    limits = asked.limits

    def wait(ends: int) -> int:
        return max(1, ends - int(now))

    def short(what: str, left: str, ends: int) -> str:
        return (f"This caller's budget of {what} has {left} left, less than this request may use ({asked.tokens} "
                f"tokens: its input and max_tokens); ask for fewer max_tokens, or wait until it resets in "
                f"{wait(ends)} seconds.")  # fmt: skip

    if reasons and reasons[0].get("Code") == "ConditionalCheckFailed" and limits.tokens_per_minute is not None:
        left = max(0, limits.tokens_per_minute - _count(reasons[0].get("Item", {}), s.TOKENS))
        return rate_limited(short(f"{limits.tokens_per_minute} tokens per minute", f"{left} tokens",
                                  periods.minute_ends), wait(periods.minute_ends), retryable=False)  # fmt: skip
    old = reasons[1].get("Item", {}) if len(reasons) > 1 else {}
    day_used = _count(old, s.DAY_PREFIX + periods.day)
    if limits.tokens_per_day is not None and day_used + asked.tokens > limits.tokens_per_day:
        left = max(0, limits.tokens_per_day - day_used)
        return insufficient_quota(short(f"{limits.tokens_per_day} tokens per day (UTC)", f"{left} tokens",
                                        periods.day_ends), wait(periods.day_ends))  # fmt: skip
    cost_limit = limits.cost_micro_usd()
    if cost_limit is not None and _count(old, s.COST) + asked.cost > cost_limit:
        left_usd = max(0, cost_limit - _count(old, s.COST)) / s.MICRO
        return insufficient_quota(short(f"{limits.cost_per_month_usd} USD per month (UTC)", f"{left_usd:.6f} USD",
                                        periods.month_ends), wait(periods.month_ends))  # fmt: skip
    left = max(0, (limits.tokens_per_month or 0) - _count(old, s.TOKENS))
    return insufficient_quota(short(f"{limits.tokens_per_month} tokens per month (UTC)", f"{left} tokens",
                                    periods.month_ends), wait(periods.month_ends))  # fmt: skip
