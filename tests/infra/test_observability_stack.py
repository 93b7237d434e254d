"""The monitoring stack: each alarm reads the metric the config says with the config's threshold, the metrics it reads
are emitted by some function with those dimensions, the topic is encrypted with a key CloudWatch may use for it
alone, subscriptions come from the config (or `-c alarm_emails`), and the dashboard shows only metrics that exist.
The dev stage stays within $10 a month at idle."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aws_cdk import aws_sns as sns

from app import create_app
from bench.idle_cost import idle_cost
from constructs_lib.foundation.settings import ConfigError
from constructs_lib.observability.alarm_topic import SNS_TOPIC_CONTEXT
from constructs_lib.observability.signals import ALL_ROUTES, AUDITED_ROUTES, MODEL_CALL_ROUTES, RouteMetric
from lambda_src.contracts import metrics
from lambda_src.contracts.api import ROUTES, STAGE_NAME
from lambda_src.contracts.knowledge import FRESHNESS_CHECK_HOURS
from lambda_src.contracts.naming import resource_name
from stacks.context import resolve_deployment
from stacks.stages import DEV, PROD, StageConfig
from tests.infra.conftest import ALARM_EMAILS, CDK_JSON_CONTEXT, ROOT, UPLOAD_STAGE, Synth
from tests.infra.templates import by_type, only, rendered

STAGES = {"dev": DEV, "prod": PROD, "dev_upload": UPLOAD_STAGE}
API_FUNCTIONS = ("inference", "retrieval", "chat", "authorizer")
# The AWS metrics the alarms and the dashboard may read, by namespace (the services' documented metric names).
AWS_METRICS = {
    "AWS/ApiGateway": {"Count", "4XXError", "5XXError", "Latency", "IntegrationLatency"},
    "AWS/Lambda": {"Errors", "Throttles"},
    "AWS/Firehose": {"DeliveryToS3.Success", "FailedConversion.Records", "IncomingRecords"},
    "AWS/States": {
        "ExecutionsStarted",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionsAborted",
    },
    "AWS/Cognito": {"SignInSuccesses"},
    "AWS/Bedrock": {"InvocationThrottles"},
    "AWS/SNS": {"NumberOfNotificationsDelivered", "NumberOfNotificationsFailed"},
}
AWS_DIMENSIONS = {
    "AWS/ApiGateway": {"ApiName", "Stage"},
    "AWS/Lambda": {"FunctionName"},
    "AWS/Firehose": {"DeliveryStreamName"},
    "AWS/States": {"StateMachineArn"},
    "AWS/Cognito": {"UserPool", "UserPoolClient"},
    "AWS/Bedrock": {"ModelId"},
    "AWS/SNS": {"TopicName"},
}


# -- what the functions emit: lambda_src read with ast ----------------------------------------------------------------
ERROR_CODES = metrics.ERROR_METRIC_PREFIX + "*"


def _metric_name(node: ast.expr, where: str) -> str:
    """``metrics.NAME`` -> its value; ``metrics.error_metric(...)`` -> ``Error_*``; anything else fails."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "metrics":
        value = getattr(metrics, node.attr, None)
        assert isinstance(value, str), f"{where}: metrics.{node.attr} is not a name in lambda_src/contracts/metrics.py"
        return value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "error_metric":
        return ERROR_CODES
    raise AssertionError(f"{where}: a metric name that is not from lambda_src/contracts/metrics.py")


def emitted_metrics(root: Path) -> set[str]:
    """Every metric name a function under ``root`` passes to Powertools' ``add_metric(name=...)``."""
    found = set()
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_metric":
                (name,) = [keyword.value for keyword in node.keywords if keyword.arg == "name"]
                found.add(_metric_name(name, f"{path.relative_to(root.parent)}:{node.lineno}"))
    return found


EMITTED = emitted_metrics(ROOT / "lambda_src")


def is_emitted(name: str) -> bool:
    return name in EMITTED or (name.startswith(metrics.ERROR_METRIC_PREFIX) and ERROR_CODES in EMITTED)


def test_the_scan_finds_the_request_and_pipeline_metrics_and_refuses_names_outside_the_contract(tmp_path):
    assert {
        metrics.REQUESTS,
        metrics.AUDIT_WRITE_FAILED,
        metrics.BUDGET_EXHAUSTED,
        metrics.GUARDRAIL_INTERVENTIONS,
        metrics.FAILED_DOCUMENTS,
        metrics.DAYS_SINCE_SUCCESSFUL_RUN,
        ERROR_CODES,
    } <= EMITTED
    (tmp_path / "src").mkdir()
    for source, message in (
        ("m.add_metric(name=metrics.RENAMED, value=1)", "metrics.RENAMED is not a name"),
        ("m.add_metric(name='Requests', value=1)", "not from lambda_src/contracts/metrics.py"),
    ):
        (tmp_path / "src" / "handler.py").write_text(source)
        with pytest.raises(AssertionError, match=message):
            emitted_metrics(tmp_path / "src")
    (tmp_path / "src" / "handler.py").write_text("m.add_metric(name=metrics.REQUESTS, value=1)")
    assert emitted_metrics(tmp_path / "src") == {metrics.REQUESTS}


# -- reading the templates ------------------------------------------------------------------------------------------
class Read(NamedTuple):
    """One metric an alarm or a widget reads: namespace, name, dimensions (values made readable), statistic, period."""

    namespace: str
    name: str
    dimensions: dict[str, str]
    stat: str
    period: int


def resolve(synth: Synth, value: Any) -> str:
    """A dimension value as text; an import as ``component:Construct/Path`` of what the other stack exports."""
    if isinstance(value, str):
        return value
    if "Fn::ImportValue" in value:
        ((stack, exported),) = [
            (stack, output["Value"])
            for stack, template in synth.templates.items()
            for output in template.get("Outputs", {}).values()
            if output.get("Export", {}).get("Name") == value["Fn::ImportValue"]
        ]
        logical_id = (exported.get("Ref") or exported["Fn::GetAtt"][0]) if isinstance(exported, dict) else exported
        path = str(synth.templates[stack]["Resources"][logical_id]["Metadata"]["aws:cdk:path"])
        return f"{stack.rsplit('-', 1)[-1]}:" + path.split("/", 1)[1].removesuffix("/Resource")
    return rendered(value)


def alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    """The stage's alarms by id (the name after the stage's prefix)."""
    prefix = resource_name(synth.stack_name("monitoring").split("-")[-2], "")
    found = {}
    for alarm in by_type(synth.raw("monitoring"), "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        assert props["AlarmName"].startswith(prefix)
        found[props["AlarmName"].removeprefix(prefix)] = props
    return found


def reads(synth: Synth, props: dict[str, Any]) -> list[Read]:
    """What an alarm reads: its metric, or each metric of its math."""
    if "MetricName" in props:
        stat = props.get("Statistic") or props["ExtendedStatistic"]
        dims = {d["Name"]: resolve(synth, d["Value"]) for d in props.get("Dimensions", [])}
        return [Read(props["Namespace"], props["MetricName"], dims, stat, int(props["Period"]))]
    found = []
    for query in props["Metrics"]:
        if "MetricStat" in query:
            stat, metric = query["MetricStat"], query["MetricStat"]["Metric"]
            dims = {d["Name"]: resolve(synth, d["Value"]) for d in metric.get("Dimensions", [])}
            found.append(Read(metric["Namespace"], metric["MetricName"], dims, stat["Stat"], int(stat["Period"])))
    return found


def expression(props: dict[str, Any]) -> str:
    (top,) = [query for query in props["Metrics"] if query.get("ReturnData", True) and "Expression" in query]
    return str(top["Expression"])


def request_reads(name: str, routes: tuple[RouteMetric, ...], stage: str, period: int = 300) -> list[Read]:
    return [
        Read(
            metrics.NAMESPACE,
            name,
            {
                metrics.ROUTE_DIMENSION: route.path,
                metrics.SERVICE_DIMENSION: metrics.service_name(route.function),
                metrics.STAGE_DIMENSION: stage,
            },
            "Sum",
            period,
        )
        for route in routes
    ]


class Expected(NamedTuple):
    reads: list[Read]
    threshold: float
    operator: str
    periods: int = 1
    datapoints: int = 1
    missing: str = "notBreaching"


def expected_alarms(stage: StageConfig) -> dict[str, Expected]:
    """Every alarm the stage config asks for, with the metric it reads and the config's threshold."""
    o, name = stage.observability, stage.name
    api = {"ApiName": resource_name(name, "api"), "Stage": STAGE_NAME}
    at_least = "GreaterThanOrEqualToThreshold"
    found: dict[str, Expected] = {}
    if o.api_5xx_percent is not None:
        found["api-5xx"] = Expected(
            [Read("AWS/ApiGateway", "5XXError", api, "Average", 300)],
            o.api_5xx_percent / 100,
            "GreaterThanThreshold",
            3,
            2,
        )
    if o.api_p99_latency_ms is not None:
        found["api-latency-p99"] = Expected(
            [Read("AWS/ApiGateway", "Latency", api, "p99", 300)], o.api_p99_latency_ms, "GreaterThanThreshold", 3, 3
        )
    for function in API_FUNCTIONS:
        dims = {"FunctionName": f"api:{function.title()}/Function"}
        if o.function_errors is not None:
            found[f"{function}-errors"] = Expected(
                [Read("AWS/Lambda", "Errors", dims, "Sum", 300)], o.function_errors, at_least
            )
        if o.function_throttles is not None:
            found[f"{function}-throttles"] = Expected(
                [Read("AWS/Lambda", "Throttles", dims, "Sum", 300)], o.function_throttles, at_least
            )
    if o.audit_write_failures is not None and stage.audit.mode == "required":
        found["audit-write-failed"] = Expected(
            request_reads(metrics.AUDIT_WRITE_FAILED, AUDITED_ROUTES, name), o.audit_write_failures, at_least
        )
    stream = {"DeliveryStreamName": "audit:AuditLog/Stream"}
    if o.audit_delivery_success_percent is not None:
        found["audit-delivery"] = Expected(
            [Read("AWS/Firehose", "DeliveryToS3.Success", stream, "Average", 300)],
            o.audit_delivery_success_percent / 100,
            "LessThanThreshold",
            3,
            3,
        )
    if o.audit_conversion_failures is not None:
        found["audit-conversion"] = Expected(
            [Read("AWS/Firehose", "FailedConversion.Records", stream, "Sum", 300)],
            o.audit_conversion_failures,
            at_least,
        )
    machine = {"StateMachineArn": "knowledge:Pipeline/StateMachine"}
    if o.pipeline_failed_runs is not None:
        found["pipeline-failed"] = Expected(
            [
                Read("AWS/States", run, machine, "Sum", 3600)
                for run in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
            ],
            o.pipeline_failed_runs,
            at_least,
        )
    if o.pipeline_late_days is not None and stage.knowledge.schedule_enabled:
        freshness = {
            metrics.SERVICE_DIMENSION: metrics.service_name("knowledge-freshness"),
            metrics.STAGE_DIMENSION: name,
        }
        found["pipeline-late"] = Expected(
            [
                Read(
                    metrics.NAMESPACE,
                    metrics.DAYS_SINCE_SUCCESSFUL_RUN,
                    freshness,
                    "Maximum",
                    FRESHNESS_CHECK_HOURS * 3600,
                )
            ],
            o.pipeline_late_days,
            "GreaterThanThreshold",
            2,
            2,
            "breaching",
        )
    if o.budget_exhausted_percent is not None:
        found["budget-exhausted"] = Expected(
            [
                *request_reads(metrics.BUDGET_EXHAUSTED, MODEL_CALL_ROUTES, name, 3600),
                *request_reads(metrics.REQUESTS, MODEL_CALL_ROUTES, name, 3600),
            ],
            o.budget_exhausted_percent,
            "GreaterThanThreshold",
        )
    if o.guardrail_interventions is not None:
        found["guardrail-interventions"] = Expected(
            request_reads(metrics.GUARDRAIL_INTERVENTIONS, MODEL_CALL_ROUTES, name), o.guardrail_interventions, at_least
        )
    return found


def _key(read: Read) -> str:
    return json.dumps(read._asdict(), sort_keys=True)


@pytest.mark.parametrize("variant", ["dev", "prod", "dev_upload"])
def test_each_alarm_reads_its_metric_with_the_thresholds_of_the_stage_config(variant, variants):
    synth, stage = variants[variant], STAGES[variant]
    expected, found = expected_alarms(stage), alarms(synth)
    assert sorted(found) == sorted(expected)
    for alarm_id, want in expected.items():
        props = found[alarm_id]
        assert sorted(map(_key, reads(synth, props))) == sorted(map(_key, want.reads)), alarm_id
        assert (props["Threshold"], props["ComparisonOperator"]) == (want.threshold, want.operator), alarm_id
        assert (props["EvaluationPeriods"], props["DatapointsToAlarm"]) == (want.periods, want.datapoints), alarm_id
        assert props["TreatMissingData"] == want.missing, alarm_id
        topic = synth.logical_id("monitoring", "AlarmTopic/Topic")
        assert props["AlarmActions"] == [{"Ref": topic}], alarm_id
        assert alarm_id in props["AlarmDescription"] and "Runbook" in props["AlarmDescription"]
        assert len(props.get("Metrics", [])) <= 10, f"{alarm_id}: CloudWatch allows 10 metrics and expressions"


def test_dev_keeps_only_the_alarms_it_can_afford_and_prod_has_them_all(variants):
    assert sorted(alarms(variants["dev"])) == sorted(
        ["api-5xx", *(f"{f}-errors" for f in API_FUNCTIONS), "pipeline-failed", "pipeline-late"]
    )
    assert len(alarms(variants["prod"])) == 17
    # Audit writes only alarm where a failed write refuses the request; the late run only with a schedule.
    assert "audit-write-failed" in alarms(variants["prod"]) and DEV.audit.mode == "best_effort"
    assert "pipeline-late" not in alarms(variants["dev_upload"])


def test_metric_math_sums_every_route_filled_with_zero_and_the_budget_rate_waits_for_enough_calls(prod):
    found = alarms(prod)
    audit = expression(found["audit-write-failed"])
    assert audit == "(" + " + ".join(f"FILL(m{i}, 0)" for i in range(len(AUDITED_ROUTES))) + ")"
    b = "(" + " + ".join(f"FILL(b{i}, 0)" for i in range(len(MODEL_CALL_ROUTES))) + ")"
    r = "(" + " + ".join(f"FILL(r{i}, 0)" for i in range(len(MODEL_CALL_ROUTES))) + ")"
    minimum = PROD.observability.budget_exhausted_min_requests
    assert expression(found["budget-exhausted"]) == f"IF({r} >= {minimum}, 100 * {b} / {r}, 0)"
    assert expression(found["pipeline-failed"]) == "FILL(failed, 0) + FILL(timedout, 0) + FILL(aborted, 0)"


def test_the_model_call_routes_are_the_audited_routes_of_the_chat_model_functions():
    """Budgets, fallbacks and guardrails apply where a chat model is called; the retrieval function's audited routes
    call the embedding model only. A new model route joins the alarms by the route table alone."""
    assert {(r.function, r.path) for r in MODEL_CALL_ROUTES} == {
        ("inference", "/chat/completions"),
        ("inference", "/model"),
        ("chat", "/conversations/{conversation_id}/messages"),
    }
    assert {r.function for r in AUDITED_ROUTES} == {"inference", "retrieval", "chat"}
    assert len(ALL_ROUTES) == len({(route.function, route.path) for route in ROUTES})


# -- the metrics are emitted, with the dimensions the alarms select ------------------------------------------------
def service_names(synth: Synth) -> dict[str, str]:
    """POWERTOOLS_SERVICE_NAME (the `service` dimension) -> the function's construct path."""
    found = {}
    for component in ("api", "knowledge"):
        for function in by_type(synth.raw(component), "AWS::Lambda::Function").values():
            service = function["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
            if service:
                path = function["Metadata"]["aws:cdk:path"].split("/", 1)[1].removesuffix("/Resource")
                found[service] = f"{component}:{path}"
    return found


def own_metrics(synth: Synth) -> Iterator[Read]:
    """Every LlmPlatform metric the stage's alarms and dashboard read (the dashboard's search aside)."""
    for props in alarms(synth).values():
        yield from (read for read in reads(synth, props) if read.namespace == metrics.NAMESPACE)
    if by_type(synth.raw("monitoring"), "AWS::CloudWatch::Dashboard"):
        yield from (read for read in dashboard_reads(synth) if read.namespace == metrics.NAMESPACE)


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_every_platform_metric_read_is_emitted_by_the_function_its_dimensions_name(variant, variants):
    """Renaming a metric in the contract or in a function, reading one nobody emits, or a service or route the
    function does not have, fails here."""
    synth, stage = variants[variant], STAGES[variant]
    services = service_names(synth)
    routes = {(metrics.service_name(route.function), route.path) for route in ROUTES}
    checked = 0
    for read in own_metrics(synth):
        assert is_emitted(read.name), f"{read.name} is read but no function emits it"
        assert read.dimensions[metrics.STAGE_DIMENSION] == stage.name
        service = read.dimensions[metrics.SERVICE_DIMENSION]
        assert service in services, f"{read.name}: no function has the service name {service}"
        if set(read.dimensions) == set(metrics.REQUEST_DIMENSIONS):
            assert (service, read.dimensions[metrics.ROUTE_DIMENSION]) in routes
            assert services[service].startswith("api:")
        else:
            assert set(read.dimensions) == set(metrics.PIPELINE_DIMENSIONS)
            handler = "freshness" if read.name == metrics.DAYS_SINCE_SUCCESSFUL_RUN else "report"
            assert services[service] == f"knowledge:{handler.title()}/Function"
        checked += 1
    assert checked >= (1 if variant == "dev" else 60)  # dev: the late-pipeline alarm's; prod: every widget's too


# -- the topic --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_the_topic_is_encrypted_with_the_api_key_which_cloudwatch_may_use_for_it_alone(variant, variants):
    synth = variants[variant]
    name = STAGES[variant].name
    topic = synth.properties("monitoring", "AlarmTopic/Topic")
    assert topic["TopicName"] == resource_name(name, "alarms")
    assert resolve(synth, topic["KmsMasterKeyId"]) == "api:ApiKey"
    key = synth.properties("api", "ApiKey")
    (statement,) = [s for s in key["KeyPolicy"]["Statement"] if s.get("Sid") == "StageAlarmsToTheAlarmTopic"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    conditions = statement["Condition"]
    assert rendered(conditions["StringEquals"][SNS_TOPIC_CONTEXT]) == (
        "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:" + resource_name(name, "alarms")
    )
    assert conditions["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert rendered(conditions["ArnLike"]["aws:SourceArn"]).endswith(f":alarm:{resource_name(name, '')}*")
    # The api stack names nothing of the monitoring stack (that would be a cycle): the monitoring stack imports.
    assert "monitoring" not in json.dumps(synth.raw("api"))


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_the_topic_refuses_plain_http_and_admits_only_the_stages_alarms(variant, variants):
    synth = variants[variant]
    policy = only(synth.raw("monitoring"), "AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    deny = [s for s in policy if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (publish,) = [s for s in policy if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and publish["Action"] == "sns:Publish"
    assert rendered(publish["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(
        f":alarm:{resource_name(STAGES[variant].name, '')}*"
    )


def test_subscriptions_one_per_email_of_the_config_and_none_in_dev(variants):
    assert by_type(variants["dev"].raw("monitoring"), "AWS::SNS::Subscription") == {}
    subscriptions = by_type(variants["dev_upload"].raw("monitoring"), "AWS::SNS::Subscription").values()
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions) == sorted(ALARM_EMAILS)
    assert {s["Properties"]["Protocol"] for s in subscriptions} == {"email"}


def test_alarm_emails_from_the_command_line_replace_the_stage_configs():
    deployment = resolve_deployment({"stage": "prod", "alarm_emails": "a@example.org, b@example.net"})
    assert deployment.stage.observability.alarm_emails == ("a@example.org", "b@example.net")
    assert deployment.stage.observability.dashboard  # the rest of the stage's config is kept
    assert resolve_deployment({"stage": "prod", "alarm_emails": ""}).stage is PROD
    assert resolve_deployment({"alarm_emails": ["c@example.org"]}).stage.observability.alarm_emails == (
        "c@example.org",
    )
    for bad in ("ops", "a@example.org,a@example.org", "a@example.org,,b@example.org", 7):
        with pytest.raises(ConfigError, match=r"^Context key 'alarm_emails' must be up to 20 distinct email"):
            resolve_deployment({"alarm_emails": bad})
    # Through the app as `cdk synth -c alarm_emails=...` builds it: one email subscription per address.
    app, _ = create_app(context={**CDK_JSON_CONTEXT, "alarm_emails": "x@example.org,y@example.org"})
    monitoring = app.node.find_child(DEV.stack_name("monitoring"))
    endpoints = sorted(
        str(child.endpoint) for child in monitoring.node.find_all() if isinstance(child, sns.CfnSubscription)
    )
    assert endpoints == ["x@example.org", "y@example.org"]


# -- the dashboard --------------------------------------------------------------------------------------------------
def dashboard_body(synth: Synth) -> dict[str, Any]:
    body = only(synth.raw("monitoring"), "AWS::CloudWatch::Dashboard")["DashboardBody"]
    text = "".join(part if isinstance(part, str) else resolve(synth, part) for part in body["Fn::Join"][1])
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def dashboard_reads(synth: Synth) -> list[Read]:
    """Every metric of every graph (a metric array: namespace, name, dimension pairs, then its options)."""
    found = []
    for widget in dashboard_body(synth)["widgets"]:
        for entry in widget["properties"].get("metrics", []):
            *fields, options = entry
            if "expression" in options:
                continue
            namespace, name, *pairs = fields
            dims = dict(zip(pairs[::2], pairs[1::2], strict=True))
            found.append(Read(namespace, name, dims, options.get("stat", "Average"), int(options.get("period", 300))))
    return found


def test_dev_has_no_dashboard_and_prod_one_named_for_the_stage(variants):
    assert by_type(variants["dev"].raw("monitoring"), "AWS::CloudWatch::Dashboard") == {}
    assert only(variants["prod"].raw("monitoring"), "AWS::CloudWatch::Dashboard")["DashboardName"] == (
        resource_name("prod", "overview")
    )


def test_the_dashboards_widgets_read_only_metrics_that_exist_of_this_stage(prod):
    found = dashboard_reads(prod)
    assert len(found) > 60
    for read in found:
        if read.namespace == metrics.NAMESPACE:
            assert is_emitted(read.name) and read.dimensions[metrics.STAGE_DIMENSION] == "prod"
            continue
        assert read.name in AWS_METRICS[read.namespace], read
        assert set(read.dimensions) == AWS_DIMENSIONS[read.namespace], read
    names = {read.name for read in found}
    assert {
        metrics.REQUESTS,
        metrics.LATENCY,
        metrics.PROMPT_TOKENS,
        metrics.COMPLETION_TOKENS,
        metrics.BUDGET_EXHAUSTED,
        metrics.MODEL_FALLBACKS,
        metrics.GUARDRAIL_INTERVENTIONS,
        metrics.AUDIT_WRITE_FAILED,
        metrics.FAILED_DOCUMENTS,
        "InvocationThrottles",
        "Throttles",
        "ExecutionsFailed",
        "DeliveryToS3.Success",
    } <= names
    bedrock = {read.dimensions["ModelId"] for read in found if read.namespace == "AWS/Bedrock"}
    assert bedrock == set(PROD.model.bedrock_model_ids())
    api = {read.dimensions["ApiName"] for read in found if read.namespace == "AWS/ApiGateway"}
    assert api == {resource_name("prod", "api")} == {prod.properties("api", "Api/Api")["Name"]}


def test_errors_by_type_search_this_stages_error_metrics_and_the_log_widgets_read_the_request_lines(prod):
    widgets = dashboard_body(prod)["widgets"]
    searches = [
        options["expression"]
        for widget in widgets
        for *_, options in widget["properties"].get("metrics", [])
        if "SEARCH(" in options.get("expression", "")
    ]
    schema = ",".join((metrics.NAMESPACE, *metrics.REQUEST_DIMENSIONS))
    assert searches == [f"SEARCH('{{{schema}}} stage=\"prod\" MetricName=Error', 'Sum', 300)"]
    assert metrics.error_metric("x").startswith("Error_") and ERROR_CODES in EMITTED
    queries = {
        widget["properties"]["title"]: widget["properties"]["query"] for widget in widgets if widget["type"] == "log"
    }
    users = next(query for title, query in queries.items() if title.startswith("Active chat users"))
    assert users.startswith("SOURCE 'api:Chat/Logs' |") and "count_distinct(user_id)" in users
    keys = next(query for title, query in queries.items() if title.startswith("Active API keys"))
    assert "SOURCE 'api:Inference/Logs'" in keys and "SOURCE 'api:Retrieval/Logs'" in keys
    throttled = next(query for title, query in queries.items() if "429" in title)
    assert throttled.startswith("SOURCE 'api:Api/AccessLogs' |") and 'status = "429"' in throttled
    # The fields the queries read are in the request log line (lambda_src/shared/request_log.py).
    source = (ROOT / "lambda_src" / "shared" / "request_log.py").read_text()
    assert (
        all(f'"{field}":' in source for field in ("user_id", "key_id")) and 'logger.info(\n        "request"' in source
    )
    alarm_widget = next(widget for widget in widgets if widget["type"] == "alarm")
    assert len(alarm_widget["properties"]["alarms"]) == len(alarms(prod))


# -- cost, runbook, validation -----------------------------------------------------------------------------------------
def test_the_dev_stage_costs_at_most_10_dollars_a_month_at_idle(variants):
    total, lines = idle_cost(variants["dev"].templates)
    assert total <= 10.00, "\n".join(lines)
    prod_total, prod_lines = idle_cost(variants["prod"].templates)
    assert any("reading 30 metrics: $3.00" in line for line in prod_lines), prod_lines
    assert any("AWS::CloudWatch::Dashboard: $3.00" in line for line in prod_lines)
    assert prod_total > total


def test_the_readme_runbook_has_a_section_for_every_alarm(prod):
    readme = (ROOT / "README.md").read_text()
    runbook = readme[readme.index("## Runbook") :]
    runbook = runbook[: runbook.index("\n## ", 1)]
    for alarm_id in alarms(prod):
        anchor = re.sub(r"^[a-z]+-(errors|throttles)$", r"<function>-\1", alarm_id)
        assert f"`{anchor}`" in runbook, f"README's runbook does not cover {alarm_id}"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"alarm_emails": ("ops",)}, "observability.alarm_emails must be a tuple of at most 20 distinct email"),
        ({"alarm_emails": ["ops@example.org"]}, "observability.alarm_emails must be a tuple"),
        ({"alarm_emails": ("a@example.org", "a@example.org")}, "observability.alarm_emails must be a tuple"),
        ({"dashboard": "yes"}, "observability.dashboard must be True or False (got 'yes')."),
        ({"api_5xx_percent": 0}, "observability.api_5xx_percent must be None or a percentage above 0, at most 100"),
        ({"api_5xx_percent": 101}, "observability.api_5xx_percent must be None or a percentage"),
        ({"api_p99_latency_ms": 50}, "observability.api_p99_latency_ms must be None or a whole number of milliseconds"),
        ({"function_errors": 0}, "observability.function_errors must be None or a whole number from 1 (got 0)."),
        ({"function_throttles": 1.5}, "observability.function_throttles must be None or a whole number from 1"),
        ({"audit_write_failures": True}, "observability.audit_write_failures must be None or a whole number"),
        ({"audit_delivery_success_percent": -1}, "observability.audit_delivery_success_percent must be None or a"),
        ({"audit_conversion_failures": 0}, "observability.audit_conversion_failures must be None or a whole number"),
        (
            {"pipeline_failed_runs": 101},
            "observability.pipeline_failed_runs must be None or a whole number from 1 to 100",
        ),
        ({"pipeline_late_days": 0.5}, "observability.pipeline_late_days must be None or a number of days from 1 to 60"),
        ({"budget_exhausted_percent": float("nan")}, "observability.budget_exhausted_percent must be None or a"),
        ({"budget_exhausted_min_requests": None}, "observability.budget_exhausted_min_requests must be a whole number"),
        (
            {"guardrail_interventions": -3},
            "observability.guardrail_interventions must be None or a whole number from 1",
        ),
    ],
)
def test_bad_observability_settings_fail_with_a_sentence_naming_stage_field_and_rule(changes, message):
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(DEV, observability=dataclasses.replace(DEV.observability, **changes))
    assert str(error.value).startswith(f"Stage 'dev': {message}")
    assert str(error.value).endswith(").") and "\n" not in str(error.value)


def test_thresholds_may_be_switched_off_one_by_one():
    off: dict[str, Any] = {
        field.name: None
        for field in dataclasses.fields(DEV.observability)
        if field.name not in ("alarm_emails", "dashboard", "budget_exhausted_min_requests")
    }
    quiet = dataclasses.replace(DEV, observability=dataclasses.replace(DEV.observability, **off))
    assert expected_alarms(quiet) == {}
    # Each is switched off on its own too: dev's config turns off what prod keeps, and the alarms follow.
    assert set(expected_alarms(PROD)) - set(expected_alarms(DEV)) == {
        *(f"{function}-throttles" for function in API_FUNCTIONS),
        "api-latency-p99",
        "audit-write-failed",
        "audit-delivery",
        "audit-conversion",
        "budget-exhausted",
        "guardrail-interventions",
    }
