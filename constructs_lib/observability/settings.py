"""The observability part of the stage configuration (CDK-free): who is told about alarms, each alarm's
threshold, and whether the stage has a dashboard.

Alarms and dashboards have a fixed monthly price (bench/idle_cost.py): a standard alarm costs $0.10 a month for each
metric it reads, a dashboard $3. A threshold of None leaves that alarm out, so a stage pays only for the alarms it
keeps; the dev stage keeps a few and no dashboard to stay within its idle-cost budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from constructs_lib.foundation.settings import Check, Settings, number, whole

# An address SNS can mail: local part, @, a domain with a dot (no spaces, no display names).
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
MAX_EMAILS = 20


def valid_emails(value: Any) -> bool:
    """A tuple of distinct email addresses (possibly empty)."""
    return (
        isinstance(value, tuple)
        and len(value) <= MAX_EMAILS
        and all(isinstance(email, str) and EMAIL.match(email) and len(email) <= 254 for email in value)
        and len(set(value)) == len(value)
    )


def _count(value: Any, maximum: int = 1_000_000) -> bool:
    """None (the alarm is off) or a whole number from 1."""
    return value is None or whole(value, maximum)


def _percent(value: Any) -> bool:
    """None (the alarm is off) or a percentage above 0, at most 100."""
    return value is None or (number(value) and 0 < value <= 100)


@dataclass(frozen=True)
class ObservabilityConfig(Settings):
    """The stage's alarms (to an encrypted SNS topic) and dashboard (constructs_lib/observability)."""

    # Each address gets an email subscription to the alarm topic (SNS mails a confirmation link first); empty: a
    # topic nobody reads yet. `-c alarm_emails=a@example.org,b@example.org` replaces the list at synth.
    alarm_emails: tuple[str, ...] = ()
    # The stage's CloudWatch dashboard ($3 a month).
    dashboard: bool = True
    # API Gateway's 5XXError rate over 5 minutes, in percent, in 2 of 3 periods.
    api_5xx_percent: float | None = 5.0
    # API Gateway's p99 latency over 5 minutes, 3 periods in a row (a streamed answer counts to its last byte).
    api_p99_latency_ms: int | None = 60_000
    # Each API function's (inference, chat, retrieval, authorizer) Lambda errors and throttles in 5 minutes.
    function_errors: int | None = 5
    function_throttles: int | None = 1
    # AuditWriteFailed in 5 minutes, summed over the audited routes; only where audit.mode is required (each is a
    # request refused with 503).
    audit_write_failures: int | None = 1
    # The audit stream's DeliveryToS3.Success below this percentage for 15 minutes (Firehose retries meanwhile).
    audit_delivery_success_percent: float | None = 100.0
    # Audit records Firehose could not convert to Parquet (they land under errors/) in 5 minutes.
    audit_conversion_failures: int | None = 1
    # Knowledge pipeline runs that failed, timed out or were aborted in an hour.
    pipeline_failed_runs: int | None = 1
    # Days since a knowledge pipeline run last succeeded (the weekly schedule and a run of up to 12 hours make 7.5);
    # only where the schedule is enabled.
    pipeline_late_days: float | None = 8.0
    # Requests refused for a spent budget, in percent of the model calls in an hour, once there were at least
    # budget_exhausted_min_requests of them.
    budget_exhausted_percent: float | None = 10.0
    budget_exhausted_min_requests: int = 20
    # Requests the stage's guardrail intervened in within 5 minutes (a spike: an attack, or a filter set too tight).
    guardrail_interventions: int | None = 10

    def checks(self) -> list[Check]:
        return [
            (
                valid_emails(self.alarm_emails),
                "alarm_emails",
                f"must be a tuple of at most {MAX_EMAILS} distinct email addresses such as 'ops@example.org'",
            ),
            (isinstance(self.dashboard, bool), "dashboard", "must be True or False"),
            (_percent(self.api_5xx_percent), "api_5xx_percent", "must be None or a percentage above 0, at most 100"),
            (
                self.api_p99_latency_ms is None or whole(self.api_p99_latency_ms, 900_000, minimum=100),
                "api_p99_latency_ms",
                "must be None or a whole number of milliseconds from 100 to 900000",
            ),
            (_count(self.function_errors), "function_errors", "must be None or a whole number from 1"),
            (_count(self.function_throttles), "function_throttles", "must be None or a whole number from 1"),
            (_count(self.audit_write_failures), "audit_write_failures", "must be None or a whole number from 1"),
            (
                _percent(self.audit_delivery_success_percent),
                "audit_delivery_success_percent",
                "must be None or a percentage above 0, at most 100",
            ),
            (
                _count(self.audit_conversion_failures),
                "audit_conversion_failures",
                "must be None or a whole number from 1",
            ),
            (
                _count(self.pipeline_failed_runs, 100),
                "pipeline_failed_runs",
                "must be None or a whole number from 1 to 100",
            ),
            (
                self.pipeline_late_days is None
                or (number(self.pipeline_late_days) and 1 <= self.pipeline_late_days <= 60),
                "pipeline_late_days",
                "must be None or a number of days from 1 to 60",
            ),
            (
                _percent(self.budget_exhausted_percent),
                "budget_exhausted_percent",
                "must be None or a percentage above 0, at most 100",
            ),
            (
                whole(self.budget_exhausted_min_requests, 1_000_000),
                "budget_exhausted_min_requests",
                "must be a whole number from 1",
            ),
            (_count(self.guardrail_interventions), "guardrail_interventions", "must be None or a whole number from 1"),
        ]
