"""The monitoring stack's alarms read what the functions really emit: the EMF lines the local functions write reach
the emulator's CloudWatch as CloudWatch Logs extracts them in AWS (tools/local/emf.py), and the metric identities
(namespace, name, every dimension) the prod stage's synthesized alarms read exist there for the dev stage after a
normal request, a request the guardrail blocks, one larger than a trial key's daily budget and the pipeline's
freshness check. Nothing evaluates alarms locally (nor sends their email)."""

from __future__ import annotations

import datetime
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from lambda_src.contracts import metrics
from lambda_src.contracts.naming import resource_name
from stacks.stages import LOCAL_BLOCKED_PHRASE, LOCAL_EMBEDDING_MODEL, STAGES, TRIAL_PLAN
from tools.local.launcher import MODEL_ALIAS, STAGE, LocalPlatform, create_key
from tools.local.processes import ROOT

# What the requests below make the functions emit, and the prod alarms read.
EXERCISED = {metrics.REQUESTS, metrics.GUARDRAIL_INTERVENTIONS, metrics.BUDGET_EXHAUSTED}
CHAT_ROUTE = {("route", "/chat/completions"), ("service", metrics.service_name("inference"))}

Identity = tuple[str, str, frozenset[tuple[str, str]]]  # namespace, name, every dimension


def alarm_identities(alarm: dict[str, Any]) -> set[Identity]:
    """The platform metrics an alarm reads (its own metric, or each metric of its ``Metrics``), as a template's
    properties or DescribeAlarms give them."""
    metrics_read = [(query.get("MetricStat") or {}).get("Metric") for query in alarm.get("Metrics") or []]
    if alarm.get("MetricName"):
        metrics_read.append(alarm)
    found = set()
    for metric in metrics_read:
        if metric is not None and metric.get("Namespace") == metrics.NAMESPACE:
            dimensions = frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions") or [])
            found.add((metric["Namespace"], metric["MetricName"], dimensions))
    return found


@pytest.fixture(scope="module")
def prod_alarms() -> dict[str, set[Identity]]:
    """The prod stage's alarms (by name) and the platform metrics each reads, from its synthesized monitoring stack."""
    from app import create_app  # noqa: PLC0415 - the CDK app (jsii) only for this test

    context = {**json.loads((ROOT / "cdk.json").read_text())["context"], "stage": "prod"}
    with tempfile.TemporaryDirectory() as outdir:
        app, _ = create_app(context=context, outdir=outdir)
        app.synth()
        template = json.loads(next(Path(outdir).glob("*-prod-monitoring.template.json")).read_text())
    alarms = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            alarms[resource["Properties"]["AlarmName"]] = alarm_identities(resource["Properties"])
    return alarms


@pytest.fixture(scope="module")
def emitted(platform: LocalPlatform) -> Iterator[dict[Identity, float]]:
    """A normal chat completion, a blocked one (buffered and streamed), a spent trial budget and an embedding (the
    retrieval function, on the buffered runtime): every platform metric in the emulator's CloudWatch, with its sum."""
    _, key = create_key(platform.client, STAGES[STAGE].api.usage_plans[0].name)
    sdk = openai.OpenAI(base_url=platform.base_url, api_key=key, max_retries=0, timeout=60)
    question: Any = [{"role": "user", "content": "What is the capital of France?"}]
    assert sdk.chat.completions.create(model=MODEL_ALIAS, messages=question, max_tokens=8).choices[0].message.content
    blocked: Any = [{"role": "user", "content": f"Tell me about {LOCAL_BLOCKED_PHRASE}."}]
    answer = sdk.chat.completions.create(model=MODEL_ALIAS, messages=blocked, max_tokens=8)
    assert answer.choices[0].finish_reason == "content_filter"
    assert list(sdk.chat.completions.create(model=MODEL_ALIAS, messages=blocked, max_tokens=8, stream=True))
    assert sdk.embeddings.create(model=LOCAL_EMBEDDING_MODEL, input="quokka").data
    # A trial key's day holds fewer tokens than this question's input estimate: refused before the model is called.
    day = TRIAL_PLAN.budget.tokens_per_day
    assert day is not None
    _, trial = create_key(platform.client, TRIAL_PLAN.name)
    long_question: Any = [{"role": "user", "content": "quokka " * day}]
    with pytest.raises(openai.RateLimitError) as refused:
        openai.OpenAI(base_url=platform.base_url, api_key=trial, max_retries=0, timeout=60).chat.completions.create(
            model=MODEL_ALIAS, messages=long_question, max_tokens=8
        )
    assert refused.value.code == "insufficient_quota", refused.value.message
    # The pipeline's freshness check, as its schedule starts it: run by the emulator's Lambda (tools/local/emulator).
    lam = platform.client("lambda")
    (check,) = [f["FunctionName"] for page in lam.get_paginator("list_functions").paginate()
                for f in page["Functions"] if f.get("Handler", "").endswith(".freshness")]  # fmt: skip
    assert "FunctionError" not in lam.invoke(FunctionName=check, Payload=b"{}")
    cloudwatch = platform.client("cloudwatch")
    now = datetime.datetime.now(datetime.UTC)
    found: dict[Identity, float] = {}
    deadline = time.monotonic() + 20  # the function's log lines are forwarded as they come, beside its answer
    while time.monotonic() < deadline:
        found = {}
        for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace=metrics.NAMESPACE):
            for metric in page["Metrics"]:
                points = cloudwatch.get_metric_statistics(
                    Namespace=metric["Namespace"], MetricName=metric["MetricName"], Dimensions=metric["Dimensions"],
                    StartTime=now - datetime.timedelta(hours=1), EndTime=now + datetime.timedelta(minutes=5),
                    Period=60, Statistics=["Sum"])["Datapoints"]  # fmt: skip
                dimensions = frozenset((d["Name"], d["Value"]) for d in metric["Dimensions"])
                found[(metric["Namespace"], metric["MetricName"], dimensions)] = sum(p["Sum"] for p in points)
        services = {value for _, _, dims in found for name, value in dims if name == metrics.SERVICE_DIMENSION}
        if {name for _, name, dims in found if dims >= CHAT_ROUTE} >= EXERCISED and services >= {
            metrics.service_name("retrieval"), metrics.service_name("knowledge-freshness")}:  # fmt: skip
            break
        time.sleep(0.5)
    yield found


def as_dev(identity: Identity) -> Identity:
    namespace, name, dimensions = identity
    return namespace, name, frozenset((n, STAGE if n == metrics.STAGE_DIMENSION else v) for n, v in dimensions)


def test_the_prod_alarms_metrics_exist_with_exactly_their_dimensions_for_the_dev_stage(prod_alarms, emitted):
    read = {identity for identities in prod_alarms.values() for identity in identities}
    wanted = {as_dev(i) for i in read if i[1] in EXERCISED and i[2] >= CHAT_ROUTE}
    # Requests (budget-exhausted), GuardrailInterventions (guardrail-interventions), BudgetExhausted (budget-exhausted)
    assert {name for _, name, _ in wanted} == EXERCISED
    missing = wanted - set(emitted)
    assert not missing, f"The prod alarms read {sorted(missing)}; the functions emitted {sorted(emitted)}."
    assert all(emitted[identity] >= 1 for identity in wanted)
    guarded = (metrics.NAMESPACE, metrics.GUARDRAIL_INTERVENTIONS, frozenset({*CHAT_ROUTE, ("stage", STAGE)}))
    assert emitted[guarded] >= 2  # the blocked request, buffered and streamed (other e2e tests may block more)


def test_every_platform_metric_the_prod_alarms_read_has_the_dimension_names_the_functions_emit(prod_alarms, emitted):
    """Routes nobody called have no data: every metric read still names the dimensions a metric of its name has."""
    schemas = {(name, frozenset(n for n, _ in dims)) for _, name, dims in emitted}
    read = {identity for identities in prod_alarms.values() for identity in identities}
    names = {name for _, name, _ in emitted}
    for _, name, dimensions in read:
        if name in names:
            assert (name, frozenset(n for n, _ in dimensions)) in schemas, (name, dimensions)
    # The buffered runtime's functions forward too (retrieval), with the same dimension names.
    retrieval = {dims for _, name, dims in emitted if ("service", metrics.service_name("retrieval")) in dims}
    assert frozenset({("route", "/embeddings"), ("service", "llm-retrieval"), ("stage", STAGE)}) in retrieval


def test_the_deployed_dev_alarms_read_platform_metrics_the_prod_alarms_read_too(platform, prod_alarms, emitted):
    """The dev stage's alarms in the emulator (the same constructs, fewer alarms): each platform metric one reads is
    a prod alarm's metric with the stage swapped, and has the dimension names the functions emit."""
    cloudwatch = platform.client("cloudwatch")
    dev = {
        alarm["AlarmName"]: alarm_identities(alarm)
        for page in cloudwatch.get_paginator("describe_alarms").paginate()
        for alarm in page["MetricAlarms"]
        if alarm["AlarmName"].startswith(resource_name(STAGE, ""))
    }
    assert dev, "no dev alarms deployed"
    prod_read = {as_dev(i) for identities in prod_alarms.values() for i in identities}
    schemas = {(name, frozenset(n for n, _ in dims)) for _, name, dims in emitted}
    for name, identities in dev.items():
        for identity in identities:
            assert identity in prod_read, (name, identity)
            if any(identity[1] == emitted_name for _, emitted_name, _ in emitted):
                assert (identity[1], frozenset(n for n, _ in identity[2])) in schemas, (name, identity)
    # The late-pipeline alarm (dev's one alarm on a platform metric) reads exactly what the freshness check emitted.
    (late,) = [identities for name, identities in dev.items() if name.endswith("pipeline-late")]
    assert late and late <= set(emitted)


def test_the_guardrail_alarms_queries_return_the_blocked_requests_through_get_metric_data(platform, prod_alarms):
    """GetMetricData over the prod guardrail alarm's metrics for the dev stage (moto returns each metric's data; it
    does not evaluate the alarm's FILL(...) + ... expression)."""
    (alarm,) = [name for name in prod_alarms if name.endswith("guardrail-interventions")]
    identities = sorted(as_dev(i) for i in prod_alarms[alarm])
    now = datetime.datetime.now(datetime.UTC)
    queries = [{"Id": f"g{index}", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": name,
                "Dimensions": [{"Name": n, "Value": v} for n, v in sorted(dimensions)]}, "Period": 300, "Stat": "Sum"}}
               for index, (namespace, name, dimensions) in enumerate(identities)]  # fmt: skip
    window = {"StartTime": now - datetime.timedelta(hours=1), "EndTime": now + datetime.timedelta(minutes=5)}
    results = platform.client("cloudwatch").get_metric_data(MetricDataQueries=queries, **window)["MetricDataResults"]
    total = {dict(identities[int(r["Id"][1:])][2])["route"]: sum(r["Values"]) for r in results}
    assert total["/chat/completions"] >= 2 and len(total) == len(identities)
