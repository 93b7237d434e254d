"""The stage's alarms, each with its threshold from the stage config (None leaves it out) and an action that
publishes to the alarm topic. README.md's runbook has a section per alarm: what it means, what to check first.

Alarm names are ``<stage prefix><id>`` (``llm-platform-prod-api-5xx``): the alarm topic and its key admit only
the stage's alarms by that prefix. A stage's own metrics are selected by their ``stage`` dimension; AWS's by the
stage's resources.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from constructs_lib.observability.settings import ObservabilityConfig
from constructs_lib.observability.signals import (
    API_FUNCTIONS,
    AUDITED_ROUTES,
    MAX_ALARM_QUERIES,
    MODEL_CALL_ROUTES,
    ObservedPlatform,
    Signals,
)
from lambda_src.contracts import metrics
from lambda_src.contracts.audit import MODE_REQUIRED
from lambda_src.contracts.knowledge import FRESHNESS_CHECK_HOURS

HOUR = cdk.Duration.hours(1)
RUNBOOK = "README.md, section Runbook"
ABOVE = cw.ComparisonOperator.GREATER_THAN_THRESHOLD
AT_LEAST = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
BELOW = cw.ComparisonOperator.LESS_THAN_THRESHOLD


@dataclass(frozen=True, kw_only=True)
class PlatformAlarmsProps:
    settings: ObservabilityConfig
    platform: ObservedPlatform
    topic: sns.ITopic
    # Every alarm's name starts with it (AlarmTopic.alarm_name_prefix).
    name_prefix: str


class PlatformAlarms(Construct):
    """Attributes: ``alarms`` (alarm id -> Alarm, in the order they were made)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: PlatformAlarmsProps) -> None:
        super().__init__(scope, construct_id)
        self._props = props
        self.alarms: dict[str, cw.Alarm] = {}
        settings, platform = props.settings, props.platform
        signals = Signals(platform)

        if settings.api_5xx_percent is not None:
            self._alarm(
                "api-5xx",
                f"More than {settings.api_5xx_percent}% of the API's requests got a 5xx answer "
                "in 2 of 3 five-minute periods.",
                signals.api("5XXError", statistic="Average"),
                threshold=settings.api_5xx_percent / 100,
                comparison=ABOVE,
                periods=3,
                datapoints=2,
            )
        if settings.api_p99_latency_ms is not None:
            self._alarm(
                "api-latency-p99",
                f"The API's p99 latency was above {settings.api_p99_latency_ms} ms for 15 minutes.",
                signals.api("Latency", statistic="p99"),
                threshold=settings.api_p99_latency_ms,
                comparison=ABOVE,
                periods=3,
                datapoints=3,
            )
        for function in API_FUNCTIONS:
            if settings.function_errors is not None:
                self._alarm(
                    f"{function}-errors",
                    f"The {function} function failed (an unhandled error or a timeout) "
                    f"{settings.function_errors} times or more in 5 minutes.",
                    signals.function(function, "Errors"),
                    threshold=settings.function_errors,
                )
            if settings.function_throttles is not None:
                self._alarm(
                    f"{function}-throttles",
                    f"Lambda throttled the {function} function "
                    f"{settings.function_throttles} times or more in 5 minutes (its reserved concurrency is "
                    "used up).",
                    signals.function(function, "Throttles"),
                    threshold=settings.function_throttles,
                )
        if settings.audit_write_failures is not None and platform.audit_mode == MODE_REQUIRED:
            self._alarm(
                "audit-write-failed",
                f"{settings.audit_write_failures} or more requests in 5 minutes could "
                "not be recorded in the audit log and were refused (required audit mode: 503).",
                signals.total(metrics.AUDIT_WRITE_FAILED, AUDITED_ROUTES, label="audit writes failed"),
                threshold=settings.audit_write_failures,
            )
        if settings.audit_delivery_success_percent is not None:
            self._alarm(
                "audit-delivery",
                "Firehose's deliveries of audit records to S3 succeeded less than "
                f"{settings.audit_delivery_success_percent}% of the time for 15 minutes (it retries for 24 "
                "hours, then the records are lost).",
                signals.audit_stream("DeliveryToS3.Success", statistic="Average"),
                threshold=settings.audit_delivery_success_percent / 100,
                comparison=BELOW,
                periods=3,
                datapoints=3,
            )
        if settings.audit_conversion_failures is not None:
            self._alarm(
                "audit-conversion",
                f"{settings.audit_conversion_failures} or more audit records in 5 "
                "minutes could not be converted to Parquet (they are under errors/ in the audit bucket, not in "
                "the Athena table).",
                signals.audit_stream("FailedConversion.Records", statistic="Sum"),
                threshold=settings.audit_conversion_failures,
            )
        if settings.pipeline_failed_runs is not None:
            using = {
                "failed": signals.runs("ExecutionsFailed", period=HOUR),
                "timedout": signals.runs("ExecutionsTimedOut", period=HOUR),
                "aborted": signals.runs("ExecutionsAborted", period=HOUR),
            }
            self._alarm(
                "pipeline-failed",
                f"{settings.pipeline_failed_runs} or more knowledge pipeline runs failed, "
                "timed out or were aborted within an hour.",
                cw.MathExpression(
                    expression="FILL(failed, 0) + FILL(timedout, 0) + FILL(aborted, 0)",
                    using_metrics=using,
                    label="failed runs",
                    period=HOUR,
                ),
                threshold=settings.pipeline_failed_runs,
            )
        if settings.pipeline_late_days is not None and platform.pipeline_scheduled:
            # Its own metric, not "no ExecutionsSucceeded for 7 days": CloudWatch looks back 7 days at most, exactly
            # the runs' spacing, so a weekly run that ends a minute later than last week's would already breach.
            period = cdk.Duration.hours(FRESHNESS_CHECK_HOURS)
            self._alarm(
                "pipeline-late",
                f"No knowledge pipeline run has succeeded for more than "
                f"{settings.pipeline_late_days} days, or the freshness check stopped reporting (two "
                f"{FRESHNESS_CHECK_HOURS}-hour periods in a row).",
                signals.pipeline(metrics.DAYS_SINCE_SUCCESSFUL_RUN, "freshness", statistic="Maximum", period=period),
                threshold=settings.pipeline_late_days,
                comparison=ABOVE,
                periods=2,
                datapoints=2,
                missing=cw.TreatMissingData.BREACHING,
            )
        if settings.budget_exhausted_percent is not None:
            exhausted, exhausted_metrics = signals.terms(
                metrics.BUDGET_EXHAUSTED, MODEL_CALL_ROUTES, prefix="b", period=HOUR
            )
            requests, request_metrics = signals.terms(metrics.REQUESTS, MODEL_CALL_ROUTES, prefix="r", period=HOUR)
            minimum = settings.budget_exhausted_min_requests
            self._alarm(
                "budget-exhausted",
                f"More than {settings.budget_exhausted_percent}% of an hour's model calls "
                f"(at least {minimum}) were refused because their caller's budget was spent.",
                cw.MathExpression(
                    expression=f"IF({requests} >= {minimum}, 100 * {exhausted} / {requests}, 0)",
                    using_metrics={**exhausted_metrics, **request_metrics},
                    label="budget exhausted (% of model calls)",
                    period=HOUR,
                ),
                threshold=settings.budget_exhausted_percent,
                comparison=ABOVE,
            )
        if settings.guardrail_interventions is not None:
            self._alarm(
                "guardrail-interventions",
                f"The stage's guardrail intervened in "
                f"{settings.guardrail_interventions} or more model calls within 5 minutes.",
                signals.total(
                    metrics.GUARDRAIL_INTERVENTIONS, MODEL_CALL_ROUTES, prefix="g", label="guardrail interventions"
                ),
                threshold=settings.guardrail_interventions,
            )

    def _alarm(
        self,
        alarm_id: str,
        meaning: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        comparison: cw.ComparisonOperator = AT_LEAST,
        periods: int = 1,
        datapoints: int = 1,
        missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
    ) -> None:
        name = f"{self._props.name_prefix}{alarm_id}"
        math = metric.to_metric_config().math_expression
        queries = 1 + (len(math.using_metrics) if math is not None else 0)
        if queries > MAX_ALARM_QUERIES:
            raise ValueError(
                f"The alarm {name} would read {queries} metrics and expressions; CloudWatch allows {MAX_ALARM_QUERIES}."
            )
        alarm = cw.Alarm(
            self,
            alarm_id,
            alarm_name=name,
            alarm_description=f"{meaning} Runbook: {RUNBOOK}, {alarm_id}.",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(actions.SnsAction(self._props.topic))
        self.alarms[alarm_id] = alarm
