"""The platform's metrics as CloudWatch reads them: what the functions emit (lambda_src/contracts/metrics.py, by
route, service and stage) and what AWS publishes for the API, the functions, the audit stream, the pipeline, the
user pool and Bedrock. The alarms and the dashboard both read them from here.

A CloudWatch metric is identified by all of its dimensions, so a count over routes (AuditWriteFailed of every audited
route) is metric math over one metric per route of the route table (lambda_src/contracts/api.py), each filled with 0
where it has no data (a route nobody called has none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn

from lambda_src.contracts import metrics
from lambda_src.contracts.api import ROUTES, STAGE_NAME, Route

# CloudWatch allows at most 10 metrics and expressions in one alarm.
MAX_ALARM_QUERIES = 10
FIVE_MINUTES = cdk.Duration.minutes(5)


@dataclass(frozen=True)
class RouteMetric:
    """One route of a function as its metrics' dimensions name it (the path; every method of a path shares it)."""

    function: str
    path: str


def route_metrics(routes: Sequence[Route]) -> tuple[RouteMetric, ...]:
    """The distinct (function, path) pairs of ``routes``, in route-table order."""
    seen: dict[RouteMetric, None] = {}
    for route in routes:
        seen.setdefault(RouteMetric(route.function, route.path), None)
    return tuple(seen)


# Where each request metric can come from (lambda_src/shared/request_log.py records them per route).
ALL_ROUTES = route_metrics(ROUTES)
AUDITED_ROUTES = route_metrics([route for route in ROUTES if route.audited])
MODEL_CALL_ROUTES = route_metrics(
    [route for route in ROUTES if route.audited and route.function in metrics.CHAT_MODEL_FUNCTIONS]
)
# The functions behind API routes, and the authorizer in front of them.
API_FUNCTIONS = (*dict.fromkeys(route.function for route in ROUTES), "authorizer")


@dataclass(frozen=True, kw_only=True)
class ObservedPlatform:
    """What the alarms and the dashboard watch, from the stacks that made it."""

    stage_name: str
    # The REST API's name (AWS/ApiGateway's ApiName dimension) and its access log group.
    api_name: str
    access_logs: logs.ILogGroup
    # Every function of API_FUNCTIONS by package name (Route.function), and their log groups.
    functions: Mapping[str, lambda_.IFunction]
    function_logs: Mapping[str, logs.ILogGroup]
    audit_mode: str
    audit_stream_name: str
    state_machine: sfn.IStateMachine
    # The weekly schedule is on: a run is expected every week (the late-pipeline alarm).
    pipeline_scheduled: bool
    user_pool_id: str
    user_pool_client_id: str
    # The stage's Bedrock chat models (AWS/Bedrock's ModelId dimension): an account-wide metric, not the stage's.
    bedrock_model_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        missing = sorted(set(API_FUNCTIONS) - set(self.functions))
        if missing:
            raise ValueError(f"ObservedPlatform.functions needs the function(s) {missing}.")


class Signals:
    """Metrics of one stage: ``period`` is each metric's aggregation period."""

    def __init__(self, platform: ObservedPlatform) -> None:
        self.platform = platform

    # -- what the functions emit ------------------------------------------------------------------
    def request(
        self, name: str, route: RouteMetric, *, statistic: str = "Sum", period: cdk.Duration = FIVE_MINUTES
    ) -> cw.Metric:
        """One request metric of one route of this stage."""
        return cw.Metric(
            namespace=metrics.NAMESPACE,
            metric_name=name,
            dimensions_map={
                metrics.ROUTE_DIMENSION: route.path,
                metrics.SERVICE_DIMENSION: metrics.service_name(route.function),
                metrics.STAGE_DIMENSION: self.platform.stage_name,
            },
            statistic=statistic,
            period=period,
        )

    def terms(
        self, name: str, routes: Sequence[RouteMetric], *, prefix: str, period: cdk.Duration = FIVE_MINUTES
    ) -> tuple[str, dict[str, cw.IMetric]]:
        """A request metric summed over ``routes`` as metric math: the expression (each route's metric filled with 0
        where it has no data) and its metrics by id (``<prefix><n>``)."""
        if not routes:
            raise ValueError(f"No route emits {name}: nothing to sum.")
        using: dict[str, cw.IMetric] = {
            f"{prefix}{index}": self.request(name, route, period=period) for index, route in enumerate(routes)
        }
        return "(" + " + ".join(f"FILL({key}, 0)" for key in using) + ")", using

    def total(
        self,
        name: str,
        routes: Sequence[RouteMetric],
        *,
        label: str,
        prefix: str = "m",
        period: cdk.Duration = FIVE_MINUTES,
    ) -> cw.MathExpression:
        """The sum of a request metric over ``routes``, 0 where none of them has data."""
        expression, using = self.terms(name, routes, prefix=prefix, period=period)
        return cw.MathExpression(expression=expression, using_metrics=using, label=label, period=period)

    def pipeline(self, name: str, handler: str, *, statistic: str, period: cdk.Duration) -> cw.Metric:
        """A metric of the knowledge pipeline's function ``handler`` (report, freshness)."""
        return cw.Metric(
            namespace=metrics.NAMESPACE,
            metric_name=name,
            dimensions_map={
                metrics.SERVICE_DIMENSION: metrics.service_name(f"knowledge-{handler}"),
                metrics.STAGE_DIMENSION: self.platform.stage_name,
            },
            statistic=statistic,
            period=period,
        )

    def errors_by_type(self, period: cdk.Duration = FIVE_MINUTES) -> cw.SearchExpression:
        """Every Error_<code> count of this stage, one line per code and route (the codes are open-ended)."""
        schema = ",".join((metrics.NAMESPACE, *metrics.REQUEST_DIMENSIONS))
        prefix = metrics.ERROR_METRIC_PREFIX.rstrip("_")
        return cw.SearchExpression(
            expression=f'SEARCH(\'{{{schema}}} {metrics.STAGE_DIMENSION}="{self.platform.stage_name}" '
            f"MetricName={prefix}', 'Sum', {int(period.to_seconds())})",
            label="",
            period=period,
        )

    # -- AWS's own ----------------------------------------------------------------------------------
    def api(self, name: str, *, statistic: str, period: cdk.Duration = FIVE_MINUTES) -> cw.Metric:
        """API Gateway's metric of the stage's REST API (all routes)."""
        return _aws("AWS/ApiGateway", name, {"ApiName": self.platform.api_name, "Stage": STAGE_NAME}, statistic, period)

    def function(
        self, function: str, name: str, *, statistic: str = "Sum", period: cdk.Duration = FIVE_MINUTES
    ) -> cw.Metric:
        """Lambda's metric of one of the API's functions."""
        return self.platform.functions[function].metric(name, statistic=statistic, period=period)

    def audit_stream(self, name: str, *, statistic: str, period: cdk.Duration = FIVE_MINUTES) -> cw.Metric:
        """Firehose's metric of the audit stream."""
        return _aws("AWS/Firehose", name, {"DeliveryStreamName": self.platform.audit_stream_name}, statistic, period)

    def runs(self, name: str, *, period: cdk.Duration) -> cw.Metric:
        """Step Functions' count of the pipeline's executions (ExecutionsFailed, ...)."""
        return self.platform.state_machine.metric(name, statistic="Sum", period=period)

    def notifications(self, name: str, topic_name: str, period: cdk.Duration) -> cw.Metric:
        """SNS's count of the alarm topic's notifications (NumberOfNotificationsDelivered, ...Failed)."""
        return _aws("AWS/SNS", name, {"TopicName": topic_name}, "Sum", period)

    def sign_ins(self, period: cdk.Duration) -> cw.Metric:
        """Cognito's successful sign-ins to the chat's browser client."""
        dimensions = {"UserPool": self.platform.user_pool_id, "UserPoolClient": self.platform.user_pool_client_id}
        return _aws("AWS/Cognito", "SignInSuccesses", dimensions, "Sum", period)

    def bedrock(self, name: str, model_id: str, period: cdk.Duration) -> cw.Metric:
        """Bedrock's metric of one model id (the account's calls to it, every stage's)."""
        return _aws("AWS/Bedrock", name, {"ModelId": model_id}, "Sum", period)


def _aws(namespace: str, name: str, dimensions: dict[str, str], statistic: str, period: cdk.Duration) -> cw.Metric:
    """A metric AWS publishes for one of the stage's resources (those without an L2 ``metric()`` of their own)."""
    return cw.Metric(namespace=namespace, metric_name=name, dimensions_map=dimensions, statistic=statistic,
                     period=period)  # fmt: skip
