"""The stage's CloudWatch dashboard: the alarms' states, then requests, latency, errors by type, throttles, tokens,
budgets, fallbacks, guardrail interventions, the audit log's writes and delivery, the knowledge pipeline's runs and
documents, and who is using the chat.

What a metric cannot show honestly is left to the tool that knows it: the budgets' counters are items of the usage
table (DynamoDB, `python -m tools.keys usage`), not metrics; API Gateway counts its own 429s (usage plans, stage
throttling) only among 4XXError, so the access log gives them exactly; active users are distinct user ids in the
chat function's request log lines (a Logs Insights query, paid per GB scanned when the widget is viewed, nothing at
idle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

from constructs_lib.observability.signals import (
    ALL_ROUTES,
    API_FUNCTIONS,
    AUDITED_ROUTES,
    FIVE_MINUTES,
    MODEL_CALL_ROUTES,
    ObservedPlatform,
    RouteMetric,
    Signals,
)
from lambda_src.contracts import metrics
from lambda_src.contracts.api import ROUTES
from lambda_src.contracts.knowledge import FRESHNESS_CHECK_HOURS
from lambda_src.contracts.naming import resource_name

DAY = cdk.Duration.days(1)
WIDTH = 8
HEIGHT = 6
# What a Logs Insights widget reads of the request log line (lambda_src/shared/request_log.py).
REQUEST_LINE = 'filter message = "request"'


@dataclass(frozen=True, kw_only=True)
class PlatformDashboardProps:
    platform: ObservedPlatform
    alarms: Sequence[cw.IAlarm]
    # The alarm topic's name: its deliveries are graphed beside the alarms.
    topic_name: str
    # The late-pipeline alarm's threshold, drawn on its graph (None: no line).
    pipeline_late_days: float | None = None


class PlatformDashboard(Construct):
    """Attributes: ``dashboard``, ``dashboard_name``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: PlatformDashboardProps) -> None:
        super().__init__(scope, construct_id)
        platform = props.platform
        self.signals = Signals(platform)
        self.dashboard_name = resource_name(platform.stage_name, "overview")
        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=self.dashboard_name, default_interval=cdk.Duration.days(7)
        )
        self.dashboard.add_widgets(
            cw.TextWidget(
                markdown=f"# LLM platform: {platform.stage_name}\nEach alarm's meaning and first checks: README.md, "
                "section *Runbook*. Budgets' counters: `python -m tools.keys usage --stage "
                f"{platform.stage_name}`. Bedrock's throttles are the account's (every stage's calls to the model).",
                width=24,
                height=2,
            )
        )
        delivered = [
            self.signals.notifications(name, props.topic_name, DAY).with_(label=label)
            for name, label in (
                ("NumberOfNotificationsDelivered", "delivered"),
                ("NumberOfNotificationsFailed", "failed"),
            )
        ]
        states = [cw.AlarmStatusWidget(alarms=list(props.alarms), title="Alarms", width=16, height=HEIGHT)]
        self.dashboard.add_widgets(
            *(states if props.alarms else []), _graph("Alarm emails (the alarm topic's notifications a day)", delivered)
        )
        self.dashboard.add_widgets(*self._traffic())
        self.dashboard.add_widgets(*self._errors())
        self.dashboard.add_widgets(*self._throttles())
        self.dashboard.add_widgets(*self._spend())
        self.dashboard.add_widgets(*self._audit_and_users())
        self.dashboard.add_widgets(*self._pipeline(props.pipeline_late_days))

    # -- rows ---------------------------------------------------------------------------------------
    def _traffic(self) -> list[cw.IWidget]:
        s = self.signals
        by_function = [
            s.total(metrics.REQUESTS, _of(ALL_ROUTES, function), label=f"{function} requests", prefix=f"{function[:3]}")
            for function in dict.fromkeys(route.function for route in ROUTES)
        ]
        return [
            _graph(
                "Requests",
                [s.api("Count", statistic="Sum", period=FIVE_MINUTES).with_(label="API Gateway"), *by_function],
            ),
            _graph(
                "API latency p50 and p99 (ms; a stream to its last byte)",
                [
                    s.api("Latency", statistic="p50").with_(label="p50"),
                    s.api("Latency", statistic="p99").with_(label="p99"),
                    s.api("IntegrationLatency", statistic="p99").with_(label="integration p99"),
                ],
            ),
            _graph(
                "Function latency p99 by route (ms)",
                [
                    s.request(metrics.LATENCY, route, statistic="p99").with_(label=f"{route.function} {route.path}")
                    for route in ALL_ROUTES
                ],
            ),
        ]

    def _errors(self) -> list[cw.IWidget]:
        s = self.signals
        return [
            _graph("Errors by type (Error_<code> per route)", [s.errors_by_type()]),
            _graph(
                "API Gateway 4XX and 5XX",
                [
                    s.api("4XXError", statistic="Sum").with_(label="4XX"),
                    s.api("5XXError", statistic="Sum").with_(label="5XX"),
                ],
            ),
            _graph(
                "Function errors (unhandled, timeouts)",
                [s.function(function, "Errors").with_(label=function) for function in API_FUNCTIONS],
            ),
        ]

    def _throttles(self) -> list[cw.IWidget]:
        s, platform = self.signals, self.platform
        bedrock = [
            s.bedrock("InvocationThrottles", model_id, FIVE_MINUTES).with_(label=f"Bedrock {model_id}")
            for model_id in platform.bedrock_model_ids
        ]
        return [
            _graph(
                "Throttles: Lambda (reserved concurrency) and Bedrock (the account's)",
                [s.function(function, "Throttles").with_(label=f"Lambda {function}") for function in API_FUNCTIONS],
                right=bedrock,
            ),
            cw.LogQueryWidget(
                title="API Gateway throttling: 429 answers in its access log (usage plans, stage throttle, limits)",
                log_group_names=[platform.access_logs.log_group_name],
                query_lines=['filter status = "429"', "stats count() as throttled by bin(5m)"],
                view=cw.LogQueryVisualizationType.LINE,
                width=WIDTH,
                height=HEIGHT,
            ),
            _graph(
                "Model fallbacks and guardrail interventions",
                [
                    s.total(metrics.MODEL_FALLBACKS, MODEL_CALL_ROUTES, label="fallbacks", prefix="f"),
                    s.total(
                        metrics.GUARDRAIL_INTERVENTIONS, MODEL_CALL_ROUTES, label="guardrail interventions", prefix="g"
                    ),
                ],
            ),
        ]

    def _spend(self) -> list[cw.IWidget]:
        s = self.signals
        return [
            _graph(
                "Tokens in and out (model and embedding calls)",
                [
                    s.total(metrics.PROMPT_TOKENS, AUDITED_ROUTES, label="prompt tokens (in)", prefix="p"),
                    s.total(metrics.COMPLETION_TOKENS, AUDITED_ROUTES, label="completion tokens (out)", prefix="c"),
                ],
            ),
            _graph(
                "Budgets: refused calls and unsettled reservations",
                [
                    s.total(metrics.BUDGET_EXHAUSTED, MODEL_CALL_ROUTES, label="refused: budget spent", prefix="b"),
                    s.total(metrics.BUDGET_SETTLE_FAILED, MODEL_CALL_ROUTES, label="settlements failed", prefix="u"),
                ],
                right=[s.total(metrics.REQUESTS, MODEL_CALL_ROUTES, label="model calls", prefix="r")],
            ),
            cw.TextWidget(
                markdown=(
                    "### Spend against budgets\nThe counters (tokens this minute, day and month; the month's cost) "
                    "are items of the usage table, not metrics. Every key's tokens and cost this month:\n\n"
                    f"`python -m tools.keys usage --stage {self.platform.stage_name}`\n\nTokens here are what was "
                    "used; refused calls are callers that hit a limit."
                ),
                width=WIDTH,
                height=HEIGHT,
            ),
        ]

    def _audit_and_users(self) -> list[cw.IWidget]:
        s, platform = self.signals, self.platform
        chat_logs = platform.function_logs["chat"].log_group_name
        api_logs = [platform.function_logs[name].log_group_name for name in ("inference", "retrieval")]
        return [
            _graph(
                "Audit log: failed writes, records in, Parquet failures; delivery success (right)",
                [
                    s.total(metrics.AUDIT_WRITE_FAILED, AUDITED_ROUTES, label="writes failed", prefix="a"),
                    s.audit_stream("IncomingRecords", statistic="Sum").with_(label="records in"),
                    s.audit_stream("FailedConversion.Records", statistic="Sum").with_(label="not converted"),
                ],
                right=[s.audit_stream("DeliveryToS3.Success", statistic="Average").with_(label="delivered (ratio)")],
            ),
            cw.LogQueryWidget(
                title="Active chat users (distinct signed-in users a day)",
                log_group_names=[chat_logs],
                query_lines=[
                    REQUEST_LINE + ' and user_id != ""',
                    "stats count_distinct(user_id) as active_users by bin(1d)",
                ],
                view=cw.LogQueryVisualizationType.BAR,
                width=WIDTH,
                height=HEIGHT,
            ),
            cw.LogQueryWidget(
                title="Active API keys (distinct keys a day)",
                log_group_names=api_logs,
                query_lines=[
                    REQUEST_LINE + ' and key_id != ""',
                    "stats count_distinct(key_id) as active_keys by bin(1d)",
                ],
                view=cw.LogQueryVisualizationType.BAR,
                width=WIDTH,
                height=HEIGHT,
            ),
            _graph("Chat sign-ins", [s.sign_ins(DAY).with_(label="sign-ins")]),
        ]

    def _pipeline(self, late_days: float | None) -> list[cw.IWidget]:
        s = self.signals
        runs = [
            s.runs(name, period=DAY).with_(label=label)
            for name, label in (
                ("ExecutionsStarted", "started"),
                ("ExecutionsSucceeded", "succeeded"),
                ("ExecutionsFailed", "failed"),
                ("ExecutionsTimedOut", "timed out"),
                ("ExecutionsAborted", "aborted"),
            )
        ]
        late = [cw.HorizontalAnnotation(value=late_days, label="late")] if late_days is not None else []
        return [
            _graph("Knowledge pipeline runs (a day)", runs),
            _graph(
                "Knowledge pipeline documents (a day)",
                [
                    s.pipeline(metrics.RUN_DOCUMENTS, "report", statistic="Sum", period=DAY).with_(label="in runs"),
                    s.pipeline(metrics.FAILED_DOCUMENTS, "report", statistic="Sum", period=DAY).with_(label="failed"),
                ],
            ),
            cw.GraphWidget(
                title="Days since a knowledge pipeline run succeeded",
                left=[
                    s.pipeline(
                        metrics.DAYS_SINCE_SUCCESSFUL_RUN,
                        "freshness",
                        statistic="Maximum",
                        period=cdk.Duration.hours(FRESHNESS_CHECK_HOURS),
                    ).with_(label="days")
                ],
                left_annotations=late,
                width=WIDTH,
                height=HEIGHT,
            ),
        ]

    @property
    def platform(self) -> ObservedPlatform:
        return self.signals.platform


def _of(routes: Sequence[RouteMetric], function: str) -> list[RouteMetric]:
    return [route for route in routes if route.function == function]


def _graph(title: str, left: Sequence[cw.IMetric], right: Sequence[cw.IMetric] = ()) -> cw.GraphWidget:
    return cw.GraphWidget(title=title, left=list(left), right=list(right), width=WIDTH, height=HEIGHT)
