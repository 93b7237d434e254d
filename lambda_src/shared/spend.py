"""Spend control around every model call: the caller's limits, the estimate reserved before the call and the
actual use settled after it, however the call ended (an answer, a stream the caller left, an error).

The seam is ModelCallHooks (the inference and chat functions call ``before`` and ``after`` around each model
call, buffered or streamed); SpendControl fills it with a Budget (lambda_src/shared/budget.py).

Estimates: input tokens are the request's UTF-8 bytes / 3 (English runs ~4 characters a token, CJK ~1 character
of 3 bytes: bytes / 3 over-estimates the one and matches the other), plus a few tokens a message and 1,600 an
image (a 1.15-megapixel image in Claude's own estimate); output tokens are max_tokens. A reservation costs the
most expensive model of the list (the one that answers is only known after); the settlement uses the answering
model's price and the tokens the model reported. When it reported none (a stream the caller left before the
end, an error mid-answer), the input estimate and the output's bytes / 3 are settled instead.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from lambda_src.contracts import spend as s
from lambda_src.shared.budget import Budget, BudgetUnavailableError, budget_unavailable
from lambda_src.shared.errors import ApiError, server_error

if TYPE_CHECKING:
    from lambda_src.shared.config_source import ModelSettings
    from lambda_src.shared.dispatch import Caller, Outcome
    from lambda_src.shared.models import CompletionRequest

LOGGER = logging.getLogger(__name__)
IMAGE_TOKENS = 1_600
MESSAGE_OVERHEAD_TOKENS = 4


class ModelCallHooks:
    """The seam around every model call, buffered or streamed (a subclass overrides what it needs): ``before``
    may refuse the call (raise ApiError; a budget reservation), ``after`` runs exactly once when a call that
    ``before`` let through is over, whatever happened (the settlement of ``outcome.usage``). This base class does
    nothing."""

    def before(self, request: CompletionRequest, settings: ModelSettings, outcome: Outcome) -> None:
        return None

    def after(self, request: CompletionRequest, outcome: Outcome) -> None:
        return None


def estimate_input_tokens(request: CompletionRequest) -> int:
    size = sum(len(text.encode()) for text in request.system)
    images = 0
    for message in request.messages:
        size += len(message.content.encode()) + MESSAGE_OVERHEAD_TOKENS * 3
        images += len(message.images)
        for call in message.tool_calls:
            size += len(call.arguments.encode()) + len(call.name)
    for tool in request.tools:
        size += len(tool.name) + len(tool.description.encode()) + len(json.dumps(tool.parameters))
    return -(-size // 3) + images * IMAGE_TOKENS


class SpendControl(ModelCallHooks):
    """Budgets per principal: an API key (its plan's limits from ``plans``, with the key's own from the
    authorizer's context) or a signed-in user (``user_limits``)."""

    def __init__(self, budget: Budget, *, plans: dict[str, s.Limits] | None = None,
                 user_limits: s.Limits | None = None) -> None:  # fmt: skip
        self.budget = budget
        self.plans = plans or {}
        self.user_limits = user_limits

    @classmethod
    def from_json(cls, budget: Budget, *, plans: str = "", user_limits: str = "") -> SpendControl:
        """From the function's environment: ``plans`` a JSON object of limits by plan, ``user_limits`` one of limits."""
        parsed = {name: s.limits_from_json(json.dumps(value)) for name, value in json.loads(plans or "{}").items()}
        return cls(budget, plans=parsed, user_limits=s.limits_from_json(user_limits) if user_limits else None)

    def principal(self, caller: Caller) -> tuple[str, s.Limits]:
        """Whose budget a request spends, and its limits; a server error when none are configured for it."""
        if caller.user_id:
            if self.user_limits is None:
                raise server_error("No budget is configured for signed-in users.")
            return s.user_principal(caller.user_id), self.user_limits
        plan = self.plans.get(caller.plan)
        if plan is None:  # never serve unmetered: a key on a plan the stage no longer configures is refused
            LOGGER.error("a key's plan has no budget", extra={"plan": caller.plan[:40], "key_id": caller.key_id})
            raise server_error("This key's plan has no budget configured; an operator must check the key.")
        return s.key_principal(caller.key_id), plan.merged(s.overrides_from_json(caller.limits))

    def before(self, request: CompletionRequest, settings: ModelSettings, outcome: Outcome) -> None:
        principal, limits = self.principal(outcome.caller)
        input_tokens = estimate_input_tokens(request)
        prices = [_price(settings, target.model_id) for target in settings.targets()]
        cost = max(price.cost_micro_usd(input_tokens, request.max_tokens) for price in prices)
        try:
            outcome.reservation = (self.budget.reserve(principal, limits, input_tokens + request.max_tokens, cost),
                                   input_tokens, settings)  # fmt: skip
        except BudgetUnavailableError:
            raise budget_unavailable() from None
        except ApiError:  # a spent budget (429)
            outcome.budget_exhausted = True
            raise

    def after(self, request: CompletionRequest, outcome: Outcome) -> None:
        held = outcome.reservation
        if held is None:
            return
        outcome.reservation = None
        reservation, input_tokens, settings = held
        prompt, completion = _used(outcome, input_tokens)
        price = s.price_of(settings.prices, outcome.model_id or request.model_id)
        cost = price.cost_micro_usd(prompt, completion) if price is not None else reservation.cost
        if not self.budget.settle(reservation, prompt + completion, cost):
            outcome.budget_unsettled = True

    def usage(self, caller: Caller) -> dict[str, Any]:
        """What GET /usage answers: the caller's own limits and use (never another's: the principal is the caller)."""
        principal, limits = self.principal(caller)
        counters = self.budget.usage(principal)
        return {
            "object": "usage",
            "limits": limits._asdict(),
            "usage": {
                "tokens_this_minute": counters["tokens_this_minute"],
                "tokens_today": counters["tokens_today"],
                "tokens_this_month": counters["tokens_this_month"],
                "cost_this_month_usd": counters["cost_this_month_micro_usd"] / s.MICRO,
            },
            "resets_at": {
                "minute": counters["minute_ends"],
                "day": counters["day_ends"],
                "month": counters["month_ends"],
            },
        }


def _price(settings: ModelSettings, model_id: str) -> s.Price:
    price = s.price_of(settings.prices, model_id)
    if price is None:
        LOGGER.error("a model has no price", extra={"model_id": model_id[:200]})
        raise server_error("A model of this deployment has no price in its price table; an operator must add it.")
    return price


def _used(outcome: Outcome, input_tokens: int) -> tuple[int, int]:
    """(input, output) tokens to settle: the model's own count, else an estimate from what was sent and said."""
    usage = outcome.usage
    if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
        return usage.prompt_tokens, usage.completion_tokens
    output = -(-len(outcome.output_text.encode()) // 3)
    if output or outcome.streamed or outcome.error_type in (None, "upstream_timeout"):
        return input_tokens, output  # the model read the input (and may have been cut off while answering)
    return 0, 0  # refused before answering (throttled, invalid, unavailable): nothing was used
