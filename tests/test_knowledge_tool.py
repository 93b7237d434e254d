"""`python -m tools.knowledge`: sync starts a run and follows the run's record in the manifest (moto's SSM and
DynamoDB; Step Functions is a stand-in whose execution advances the record as the pipeline's steps would),
status reports recent runs and failed documents. The command against a real state machine: e2e/ and make local."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest

from lambda_src.contracts import knowledge as k
from lambda_src.contracts import parameters
from lambda_src.knowledge.manifest import Document, Manifest
from tests.aws_fakes import REGION, create_manifest_table
from tools.knowledge import Clients, main

STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:pipeline"
NOW = "2026-12-03T03:00:00.000Z"


class Execution:
    """A state machine stand-in: each describe_execution is one step of the script (what the run's record says
    at that moment, and the execution's status)."""

    def __init__(self, manifest: Manifest, script: list[tuple[dict[str, int] | None, str]],
                 outcome: dict[str, str] | None = None) -> None:  # fmt: skip
        self.manifest, self.script, self.outcome = manifest, list(script), outcome or {}
        self.started: list[dict[str, Any]] = []
        self.name = ""

    def start_execution(self, **request: Any) -> dict[str, str]:
        self.started.append(request)
        self.name = request["name"]
        return {"executionArn": f"{STATE_MACHINE.replace('stateMachine', 'execution')}:{self.name}"}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        counters, status = self.script.pop(0)
        run_id = f"{NOW}/{self.name}"
        if counters is not None:
            if self.manifest.run(run_id) is None:
                self.manifest.start_run(run_id, started_at=NOW, total=counters.pop("total"), skipped=0,
                                        source_errors={"youtube": "The YouTube Data API key is not set."})  # fmt: skip
            if counters:
                self.manifest.count(run_id, **counters)
        if status != "RUNNING" and self.manifest.run(run_id) is not None:
            finished = k.SUCCEEDED if status == "SUCCEEDED" else k.RUN_FAILED_STATUS
            self.manifest.finish_run(run_id, status=finished, finished_at=NOW, duration_seconds=12.5)
        return {"status": status, **(self.outcome if status != "RUNNING" else {})}


@pytest.fixture
def world(aws: None) -> dict[str, Any]:
    ssm = boto3.client("ssm", region_name=REGION)
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    create_manifest_table(dynamodb)
    for name, value in ((k.STATE_MACHINE_PARAMETER, STATE_MACHINE), (k.MANIFEST_PARAMETER, "manifest")):
        ssm.put_parameter(Name=parameters.parameter_name("dev", name), Value=value, Type="String")
    return {"ssm": ssm, "dynamodb": dynamodb, "manifest": Manifest(dynamodb.Table("manifest"))}


def run_tool(world: dict[str, Any], execution: Any, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    clients = Clients(world["ssm"], execution, world["dynamodb"])
    code = main(list(argv), clients=clients, out=out)
    return code, out.getvalue()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tools.knowledge.POLL_SECONDS", 0)


def test_sync_starts_the_state_machine_and_prints_progress_until_the_run_succeeds(world):
    execution = Execution(world["manifest"], [
        (None, "RUNNING"),  # Discover has not opened the run yet
        ({"total": 3}, "RUNNING"),
        ({"done": 1, "chunks": 4, "tokens": 100, "embedding_calls": 1}, "RUNNING"),
        ({}, "RUNNING"),  # nothing changed: no new line
        ({"done": 2, "failed": 1}, "SUCCEEDED"),
    ])  # fmt: skip
    code, out = run_tool(world, execution, "sync", "--stage", "dev")
    assert code == 0
    (started,) = execution.started
    assert started["stateMachineArn"] == STATE_MACHINE and started["input"] == "{}"
    assert started["name"].startswith("sync-") and len(started["name"]) <= 80
    lines = out.splitlines()
    assert lines[0] == f"Started run {started['name']}."
    assert [line for line in lines if "documents" in line] == [
        "0/3 documents, 0 failed, 0 unavailable, 0 skipped, 0 deleted",
        "1/3 documents, 0 failed, 0 unavailable, 0 skipped, 0 deleted",
        "3/3 documents, 1 failed, 0 unavailable, 0 skipped, 0 deleted",
    ]
    assert "Source youtube was not read: The YouTube Data API key is not set." in lines
    assert lines[-1] == f"Run {started['name']} succeeded: 4 chunks stored, 100 tokens in 1 embedding calls, 12.5 s."


def test_a_failed_run_exits_1_with_its_reason_and_the_documents_that_failed(world):
    cause = json.dumps({"errorMessage": "2 of 2 documents failed, more than the 10% the stage allows."})
    execution = Execution(world["manifest"], [({"total": 2}, "RUNNING"), ({"done": 2, "failed": 2}, "FAILED")],
                          {"error": "RunFailedError", "cause": cause})  # fmt: skip

    def fail_documents(**request: Any) -> dict[str, str]:
        answer = Execution.start_execution(execution, **request)
        for name in ("s3/knowledge/broken.pdf", "s3/knowledge/other.pdf"):
            world["manifest"].save(Document(name, "s3", "", "", "", 0, k.FAILED, "The PDF cannot be read.",
                                            f"{NOW}/{execution.name}"), tokens=0, now=NOW)  # fmt: skip
        return answer

    execution.start_execution = fail_documents  # type: ignore[method-assign]
    code, out = run_tool(world, execution, "sync", "--stage", "dev")
    assert code == 1
    assert "failed: RunFailedError: 2 of 2 documents failed, more than the 10% the stage allows." in out
    assert "2 document(s) failed:" in out and "  s3/knowledge/broken.pdf: The PDF cannot be read." in out


def test_no_wait_starts_the_run_and_returns(world):
    execution = Execution(world["manifest"], [])
    code, out = run_tool(world, execution, "sync", "--stage", "dev", "--no-wait")
    assert code == 0 and len(execution.started) == 1 and "status --stage dev" in out


def test_status_lists_recent_runs_newest_first_and_every_failed_document(world):
    manifest = world["manifest"]
    for started, chunks in (("2026-11-23T03:00:00Z", 7), ("2026-11-30T03:00:00Z", 0)):
        run_id = f"{started}/weekly"
        manifest.start_run(run_id, started_at=started, total=2, skipped=1, source_errors={})
        manifest.count(run_id, done=2, chunks=chunks)
        manifest.finish_run(run_id, status=k.SUCCEEDED, finished_at=started, duration_seconds=3.25)
    manifest.save(Document("s3/knowledge/a.md", "s3", "", "a.md", "e1", 3, k.INDEXED, "", "r"), tokens=5, now=NOW)
    manifest.save(Document("youtube/v1", "youtube", "", "v", "e", 0, k.FAILED, "TransientError: throttled", "r"),
                  tokens=0, now=NOW)  # fmt: skip
    code, out = run_tool(world, Execution(manifest, []), "status", "--stage", "dev")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["started", "status", "documents", "failed", "unavailable", "skipped", "deleted",
                                "chunks", "tokens", "embedding", "calls", "seconds"]  # fmt: skip
    assert lines[1].split() == ["2026-11-30", "03:00:00Z", "succeeded", "2/2", "0", "0", "1", "0", "0", "0", "0",
                                "3.2"]  # fmt: skip
    assert lines[2].split()[:2] == ["2026-11-23", "03:00:00Z"] and lines[2].split()[8] == "7"
    assert lines[3:] == ["1 failed document(s):", "  youtube/v1: TransientError: throttled"]


def test_status_before_any_run_says_how_to_start_one(world):
    code, out = run_tool(world, Execution(world["manifest"], []), "status", "--stage", "dev")
    assert code == 0 and out.startswith("No runs yet") and "0 failed document(s)." in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["sync", "--stage", "qa"], "--stage must be one of dev, prod (got 'qa')"),
     (["status", "--stage", "prod"], "/llm-platform/prod/knowledge/manifest-table does not exist"),
     (["status", "--stage", "dev", "--runs", "0"], "--runs must be from 1 to 100")],
)  # fmt: skip
def test_operator_mistakes_are_one_sentence_and_exit_2(world, capsys, argv, message):
    code, _ = run_tool(world, Execution(world["manifest"], []), *argv)
    assert code == 2
    assert message in capsys.readouterr().err
