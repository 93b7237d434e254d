"""The inference API's part of the stage configuration (CDK-free): usage plans, throttling, caching,
CORS, the WAF and the function's limits."""

from __future__ import annotations

import re
from dataclasses import dataclass

from constructs_lib.foundation.settings import Check, Settings, number, whole
from lambda_src.contracts.spend import Limits, budget_problem

NO_LIMITS = Limits()
_PLAN_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
_ORIGIN = re.compile(r"^https://[A-Za-z0-9.-]+(?::\d+)?$|^http://(?:localhost|127\.0\.0\.1)(?::\d+)?$")


@dataclass(frozen=True)
class UsagePlanConfig:
    """API Gateway usage plan: per-key steady rate (requests/s), burst, and requests per day (the coarse flood
    guard, best effort); ``budget``: the token and cost limits of each key on the plan, enforced by the API
    (a key may have its own: `python -m tools.keys limits`)."""

    name: str
    rate_limit: float
    burst_limit: int
    daily_quota: int
    budget: Limits = NO_LIMITS

    def valid(self) -> bool:
        return (
            isinstance(self.name, str)
            and bool(_PLAN_NAME.match(self.name))
            and number(self.rate_limit)
            and 0 < self.rate_limit <= 10_000
            and whole(self.burst_limit, 5_000)
            and whole(self.daily_quota, 100_000_000)
        )


@dataclass(frozen=True)
class ApiConfig(Settings):
    """The REST API's limits and hardening; validated as part of its StageConfig."""

    usage_plans: tuple[UsagePlanConfig, ...] = (
        UsagePlanConfig("standard", rate_limit=2, burst_limit=5, daily_quota=2_000,
                        budget=Limits(tokens_per_minute=20_000, tokens_per_day=200_000, tokens_per_month=2_000_000,
                                      cost_per_month_usd=20)),
        UsagePlanConfig("premium", rate_limit=10, burst_limit=20, daily_quota=20_000,
                        budget=Limits(tokens_per_minute=100_000, tokens_per_day=2_000_000,
                                      tokens_per_month=20_000_000, cost_per_month_usd=200)),
    )  # fmt: skip
    # Stage-wide throttling that applies before any usage plan.
    throttle_rate_limit: float = 50
    throttle_burst_limit: int = 100
    authorizer_cache_seconds: int = 300
    # How long the inference function keeps parameters before reading Parameter Store again.
    config_cache_seconds: int = 60
    cors_allowed_origins: tuple[str, ...] = ()
    waf_enabled: bool = False
    # Requests per 5 minutes from one IP before the WAF rate-based rule blocks it.
    waf_rate_limit: int = 1_000
    reserved_concurrency: int = 10
    # Largest request body the API accepts (bytes); API Gateway itself stops at 10 MB.
    max_body_bytes: int = 256 * 1024
    # `stream: true` answers stream through a STREAM integration (the function runs the project's Runtime API
    # loop); False: a buffered integration on the managed runtime, and a stream is answered whole within 29 s.
    streaming: bool = True
    # How long a streamed answer may take: the integration's and the function's timeout (API Gateway allows up
    # to 15 minutes per stream). Buffered answers keep API Gateway's 29 s.
    stream_timeout_seconds: int = 300

    def checks(self) -> list[Check]:
        plans = self.usage_plans if isinstance(self.usage_plans, tuple) else ()
        names = [p.name for p in plans if isinstance(p, UsagePlanConfig)]
        plans_ok = bool(plans) and len(set(names)) == len(plans) == len(names) and all(p.valid() for p in plans)
        budget_problems = [f"{p.name}: budget {problem}" for p in plans if isinstance(p, UsagePlanConfig)
                           and (problem := budget_problem(p.budget))]  # fmt: skip
        return [
            (plans_ok, "usage_plans", "must be a non-empty tuple of UsagePlanConfig with unique lowercase names, "
             "rate 0-10000/s, burst 1-5000 and a daily quota 1-100000000"),
            (not budget_problems, "usage_plans", "plan " + "; ".join(budget_problems[:1])),
            (number(self.throttle_rate_limit) and 0 < self.throttle_rate_limit <= 10_000, "throttle_rate_limit",
             "must be greater than 0 and at most 10000 requests per second"),
            (whole(self.throttle_burst_limit, 5_000), "throttle_burst_limit", "must be from 1 to 5000"),
            (whole(self.authorizer_cache_seconds, 3_600, minimum=0), "authorizer_cache_seconds",
             "must be a whole number of seconds from 0 to 3600"),
            (whole(self.config_cache_seconds, 3_600, minimum=0), "config_cache_seconds",
             "must be a whole number of seconds from 0 to 3600"),
            (isinstance(self.cors_allowed_origins, tuple) and all(
                isinstance(o, str) and _ORIGIN.match(o) for o in self.cors_allowed_origins),
             "cors_allowed_origins", "must be a tuple of origins such as 'https://app.example.com' (no '*')"),
            (isinstance(self.waf_enabled, bool), "waf_enabled", "must be True or False"),
            (whole(self.waf_rate_limit, 2_000_000_000, minimum=10), "waf_rate_limit",
             "must be a whole number of requests per 5 minutes, at least 10"),
            (whole(self.reserved_concurrency, 1_000), "reserved_concurrency", "must be from 1 to 1000"),
            (whole(self.max_body_bytes, 6 * 1024 * 1024, minimum=1024), "max_body_bytes",
             "must be from 1024 bytes to 6 MB (the Lambda payload limit)"),
            (isinstance(self.streaming, bool), "streaming", "must be True or False"),
            (whole(self.stream_timeout_seconds, 900, minimum=30), "stream_timeout_seconds",
             "must be a whole number of seconds from 30 to 900 (API Gateway streams for up to 15 minutes)"),
        ]  # fmt: skip
