"""CloudWatch Logs' metric extraction for the local functions (tools/local/emf.py): the EMF lines they write become
metrics in CloudWatch (moto in-process here; the emulator's under `make local`), with exactly their dimension sets."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger, Metrics

from lambda_src.contracts import metrics
from lambda_src.shared import request_log
from lambda_src.shared.dispatch import Caller, Outcome
from tests.aws_fakes import REGION
from tools.local.emf import EmfForwarder, metric_data, through_api
from tools.local.emulator.cloudwatch import put_metric_data
from tools.local.runtime import Worker

NOW_MS = 1_700_000_000_000


def forwarder() -> EmfForwarder:
    """Through the API, as the local gateway's functions forward (to moto in-process here)."""
    return EmfForwarder(through_api(boto3.client("cloudwatch", region_name=REGION)))


def emf(**values: Any) -> dict[str, Any]:
    return {"_aws": {"Timestamp": NOW_MS, "CloudWatchMetrics": [{"Namespace": "Test", "Dimensions": [["a"], ["a", "b"]],
            "Metrics": [{"Name": "Hits", "Unit": "Count"}, {"Name": "Time", "Unit": "Milliseconds"}]}]},
            "a": "x", "b": "y", "Hits": 1, "Time": [2.5, 3.5], **values}  # fmt: skip


def listed(cloudwatch: Any, namespace: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    """Each metric of ``namespace`` as (name, its full dimension set)."""
    found = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    return {(m["MetricName"], frozenset((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in found}


def test_each_metric_gets_one_datum_per_dimension_set_with_the_documents_time_unit_and_values():
    data = list(metric_data(emf()))
    named = {(n, d["MetricName"], tuple(x["Name"] for x in d["Dimensions"]), d["Value"], d["Unit"]) for n, d in data}
    assert named == {
        ("Test", "Hits", ("a",), 1.0, "Count"), ("Test", "Hits", ("a", "b"), 1.0, "Count"),
        ("Test", "Time", ("a",), 2.5, "Milliseconds"), ("Test", "Time", ("a",), 3.5, "Milliseconds"),
        ("Test", "Time", ("a", "b"), 2.5, "Milliseconds"), ("Test", "Time", ("a", "b"), 3.5, "Milliseconds"),
    }  # fmt: skip
    assert len(data) == 6 and {d["Timestamp"].timestamp() for _, d in data} == {NOW_MS / 1000}


@pytest.mark.parametrize("document", [
    {"message": "a log line"}, [1, 2], {"_aws": {"CloudWatchMetrics": []}}, {"_aws": "x"},
    emf(a=None), emf(Hits="one"), emf(Time=[]), emf(Hits=True),
])  # fmt: skip
def test_what_cloudwatch_would_not_extract_gives_nothing(document):
    assert list(metric_data(document)) == []


def test_a_bad_directive_is_skipped_and_the_documents_other_directives_are_kept():
    document = emf()
    good = {"Namespace": "Other", "Dimensions": [["b"]], "Metrics": [{"Name": "Hits", "Unit": "Count"}]}
    document["_aws"]["CloudWatchMetrics"] = [{"Namespace": "Test", "Dimensions": [["missing"]],
                                              "Metrics": [{"Name": "Hits"}]}, good]  # fmt: skip
    assert [(n, d["MetricName"], d["Dimensions"]) for n, d in metric_data(document)] == [
        ("Other", "Hits", [{"Name": "b", "Value": "y"}])
    ]


def test_a_powertools_request_record_reaches_cloudwatch_with_the_alarms_dimensions(aws, capsys):
    """The line request_log.record prints, as a function's log output, read back with list_metrics."""
    powertools = Metrics(namespace=metrics.NAMESPACE, service=metrics.service_name("inference"))
    powertools.set_default_dimensions(**{metrics.STAGE_DIMENSION: "dev"})
    outcome = Outcome(route="/v1/chat/completions", caller=Caller("k1", "alice"), request_id="r1")
    outcome.status, outcome.latency_ms, outcome.guardrail_intervened = 200, 12.5, True
    request_log.record(outcome, powertools, Logger(service="test"))
    lines = capsys.readouterr().out.splitlines()
    assert any('"_aws"' in line for line in lines) and any('"_aws"' not in line for line in lines)  # and its log line
    forward = forwarder()
    for line in lines:
        forward(line)
    dimensions = frozenset({("route", "/v1/chat/completions"), ("service", "llm-inference"), ("stage", "dev")})
    assert listed(boto3.client("cloudwatch", region_name=REGION), metrics.NAMESPACE) == {
        (name, dimensions) for name in (metrics.LATENCY, metrics.REQUESTS, metrics.GUARDRAIL_INTERVENTIONS)
    }


def test_every_dimension_set_is_its_own_metric_in_cloudwatch(aws):
    forwarder()(json.dumps(emf()))
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    one, two = frozenset({("a", "x")}), frozenset({("a", "x"), ("b", "y")})
    assert listed(cloudwatch, "Test") == {("Hits", one), ("Hits", two), ("Time", one), ("Time", two)}
    stats = cloudwatch.get_metric_statistics(Namespace="Test", MetricName="Time", Dimensions=[{"Name": "a",
        "Value": "x"}, {"Name": "b", "Value": "y"}], StartTime=NOW_MS / 1000 - 60, EndTime=NOW_MS / 1000 + 60,
        Period=60, Statistics=["Sum", "SampleCount"])["Datapoints"]  # fmt: skip
    assert [(p["Sum"], p["SampleCount"]) for p in stats] == [(6.0, 2.0)]


@pytest.mark.parametrize("line", ["", "plain text", '{"message": "no metrics"}', '{"_aws": {', "{" + '"_aws"' * 3])
def test_other_lines_and_malformed_json_are_ignored(aws, line):
    forwarder()(line)
    assert boto3.client("cloudwatch", region_name=REGION).list_metrics()["Metrics"] == []


def test_a_failing_cloudwatch_is_logged_and_never_raised(caplog):
    client = boto3.client("cloudwatch", region_name=REGION, endpoint_url="http://127.0.0.1:9",  # nothing listens
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    EmfForwarder(through_api(client))(json.dumps(emf()))
    assert "EMF line not forwarded" in caplog.text


def test_the_emulators_own_functions_forward_straight_to_its_backend(aws):
    """The knowledge pipeline's functions run inside the emulator (tools/local/emulator/awslambda.py)."""
    EmfForwarder(put_metric_data("123456789012", REGION))(json.dumps(emf()))
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    assert len(listed(cloudwatch, "Test")) == 4
    # (moto's GetMetricStatistics reads every metric whose dimensions include those asked for: both here.)
    stats = cloudwatch.get_metric_statistics(Namespace="Test", MetricName="Hits", Dimensions=[{"Name": "a",
        "Value": "x"}], StartTime=NOW_MS / 1000 - 60, EndTime=NOW_MS / 1000 + 60, Period=60,
        Statistics=["Sum"])["Datapoints"]  # fmt: skip
    assert [p["Sum"] for p in stats] == [2.0]


HANDLER = """
import json, sys
def handle(event, context):
    print(json.dumps(event["emf"]))
    print("not a metric", file=sys.stderr)
    return "ok"
"""


def test_the_local_runtime_hands_each_line_on_and_still_writes_its_log(tmp_path: Path):
    (tmp_path / "app.py").write_text(HANDLER)
    seen: list[str] = []
    log_path = tmp_path / "functions.log"
    with log_path.open("a") as log:
        worker = Worker(handler="app.handle", code_dir=str(tmp_path), layers=[], timeout_seconds=30,
                        environment={"PATH": os.environ["PATH"]}, log=log, on_log_line=seen.append,
                        python=sys.executable)  # fmt: skip
        try:
            assert worker.invoke({"emf": emf()}) == "ok"
            deadline = time.monotonic() + 10
            while len(seen) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            worker.close()
    assert [json.loads(seen[0]), seen[1]] == [emf(), "not a metric\n"]
    assert log_path.read_text().splitlines() == [line.rstrip("\n") for line in seen]
