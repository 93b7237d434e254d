"""Spend control's contract: the budget limits, the price table's shape and the usage table's item layout.

The stage configuration renders limits and prices in these shapes (ApiStack, ConfigStack), the inference and
chat functions reserve and settle against the usage table, the authorizer passes a key's own limits on, and
`python -m tools.keys limits|usage` writes and reads them: one definition for all of them.

Usage table: one item per principal (an API key ``key#<key id>`` or a signed-in user ``user#<sub>``) and period,
with integer counters only (tokens, and cost in micro-USD) so conditional ``ADD`` updates never race:

- ``month#2026-12``: tokens and cost of the UTC month, and each day's tokens (``day_03``) beside them;
- ``minute#2026-12-03T19:05``: tokens of that UTC minute (expires an hour later).
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from lambda_src.contracts.parameters import GEO_PROFILE

PRINCIPAL = "principal"
PERIOD = "period"
EXPIRES_AT = "expires_at"
TOKENS = "tokens"
COST = "cost_micro_usd"
DAY_PREFIX = "day_"
MONTH_PREFIX = "month#"
MINUTE_PREFIX = "minute#"
KEY_PRINCIPAL = "key#"
USER_PRINCIPAL = "user#"
# How long the counters stay readable after their period: a minute's for an hour, a month's for 13 months
# (`tools.keys usage --month` reads past months; the audit log is the complete record).
MINUTE_KEPT_SECONDS = 3_600
MONTH_KEPT_SECONDS = 400 * 86_400

# Micro-USD per USD: cost counters are whole micro-dollars (a token's price per million tokens in USD is its price
# in micro-USD per token).
MICRO = 1_000_000
MAX_TOKENS_LIMIT = 10**12
MAX_COST_USD = 10**7


class Limits(NamedTuple):
    """One principal's limits; None is no limit."""

    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    cost_per_month_usd: float | None = None

    def cost_micro_usd(self) -> int | None:
        return None if self.cost_per_month_usd is None else round(self.cost_per_month_usd * MICRO)

    def merged(self, overrides: dict[str, Any]) -> Limits:
        """These limits with a key's own (``limits_problem`` checked them): a field given there wins, null too."""
        return self._replace(**{field: overrides[field] for field in LIMIT_FIELDS if field in overrides})


LIMIT_FIELDS: tuple[str, ...] = Limits._fields
_TOKEN_FIELDS = ("tokens_per_minute", "tokens_per_day", "tokens_per_month")


def limit_problem(field: str, value: Any) -> str | None:
    """Why ``value`` cannot be the limit ``field`` (None: it can): the one rule for synth, the tool and run time."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "must be a number or None (no limit)"
    if field in _TOKEN_FIELDS:
        if not isinstance(value, int) or not 1 <= value <= MAX_TOKENS_LIMIT:
            return f"must be a whole number of tokens from 1 to {MAX_TOKENS_LIMIT} or None (no limit)"
        return None
    if not 0 < value <= MAX_COST_USD:
        return f"must be greater than 0 and at most {MAX_COST_USD} USD, or None (no limit)"
    return None


def limits_problem(values: Any) -> str | None:
    """Why a mapping of limits (a key's own, or a plan's as JSON) is invalid, naming the field; None when valid."""
    if not isinstance(values, dict):
        return "must be an object of limits"
    for field, value in values.items():
        if field not in LIMIT_FIELDS:
            return f"has an unknown limit {str(field)[:40]!r} (known: {', '.join(LIMIT_FIELDS)})"
        problem = limit_problem(field, value)
        if problem:
            return f"{field} {problem}"
    return None


def budget_problem(value: Any) -> str | None:
    """Why a stage's budget (a plan's, the chat users') cannot be: not a Limits, or a limit out of its rule."""
    return limits_problem(value._asdict()) if isinstance(value, Limits) else "must be a Limits"


def limits_from_json(raw: str) -> Limits:
    """Limits from JSON text (an environment variable, a key's own); ValueError naming the field when invalid."""
    values = json.loads(raw) if raw else {}
    problem = limits_problem(values)
    if problem:
        raise ValueError(f"The limits {problem}.")
    return Limits().merged(values)


def overrides_from_json(raw: str) -> dict[str, Any]:
    """A key's own limits (the authorizer's context); an invalid value is ignored field by field (logged by
    the caller), never a reason to serve without the plan's limits."""
    try:
        values = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(values, dict):
        return {}
    return {f: v for f, v in values.items() if f in LIMIT_FIELDS and limit_problem(f, v) is None}


class Price(NamedTuple):
    """USD per million input and output tokens of one model."""

    input_usd_per_million: float
    output_usd_per_million: float

    def cost_micro_usd(self, input_tokens: int, output_tokens: int) -> int:
        """Whole micro-dollars, rounded up (a request never costs less than it did)."""
        exact = input_tokens * self.input_usd_per_million + output_tokens * self.output_usd_per_million
        return max(0, math.ceil(exact - 1e-9))


MAX_PRICE_USD_PER_MILLION = 10_000


def price_problem(value: Any) -> str | None:
    """Why a price table entry ({"input": ..., "output": ...}, USD per million tokens) is invalid."""
    if not isinstance(value, dict) or set(value) != {"input", "output"}:
        return "must be an object with exactly 'input' and 'output' (USD per million tokens)"
    for side in ("input", "output"):
        number = value[side]
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number) \
                or not 0 <= number <= MAX_PRICE_USD_PER_MILLION:  # fmt: skip
            return f"'{side}' must be from 0 to {MAX_PRICE_USD_PER_MILLION} USD per million tokens"
    return None


def prices_from_json(raw: str) -> dict[str, Price]:
    """The price table by model id (the model parameters' ``prices`` leaf); ValueError when malformed."""
    table = json.loads(raw)
    if not isinstance(table, dict):
        raise ValueError("The price table must be an object by model id.")
    prices: dict[str, Price] = {}
    for model_id, value in table.items():
        problem = price_problem(value)
        if problem:
            raise ValueError(f"The price of {str(model_id)[:100]!r} {problem}.")
        prices[str(model_id)] = Price(float(value["input"]), float(value["output"]))
    return prices


def price_of(prices: dict[str, Price], model_id: str) -> Price | None:
    """A model's price: its own entry, else (a cross-region inference profile, which costs what its model costs in
    the calling region) its foundation model's; None when neither is in the table."""
    price = prices.get(model_id)
    if price is None:
        profile = GEO_PROFILE.match(model_id)
        price = prices.get(profile.group("model")) if profile else None
    return price


def key_principal(key_id: str) -> str:
    return KEY_PRINCIPAL + key_id


def user_principal(sub: str) -> str:
    return USER_PRINCIPAL + sub
