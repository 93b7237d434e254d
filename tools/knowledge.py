"""Operator commands for the knowledge base: start a pipeline run and follow it, or report recent runs.

    python -m tools.knowledge sync --stage dev            # start a run, print its progress until it ends
    python -m tools.knowledge sync --stage dev --no-wait  # start it and return
    python -m tools.knowledge status --stage dev          # recent runs, failed documents

The state machine and the manifest are found through the stage's Parameter Store entries
(lambda_src/contracts/knowledge.py); progress is the run's record in the manifest, which every document's step
updates. `sync` exits 1 when the run fails (past the stage's failure threshold, or stopped). Uses the standard AWS
credential chain and region of the shell.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import boto3

from lambda_src.contracts import knowledge as k
from lambda_src.knowledge.manifest import Document, Manifest
from tools.operator import ToolError, check_stage, run_command, stage_parameter

RUN_FIELDS = ("started", "status", "documents", "failed", "unavailable", "skipped", "deleted", "chunks", "tokens",
              "embedding calls", "seconds")  # fmt: skip
# How many of the newest run records are searched for the one a new execution opened.
_RECENT_RUNS = 25
# Seconds between two looks at a running execution.
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Clients:
    ssm: Any
    stepfunctions: Any
    dynamodb: Any  # the resource (Manifest works on a Table)

    @classmethod
    def default(cls, region: str | None) -> Clients:
        session = boto3.session.Session(region_name=region)
        return cls(session.client("ssm"), session.client("stepfunctions"), session.resource("dynamodb"))


@dataclass(frozen=True)
class RunOutcome:
    status: str  # the execution's: SUCCEEDED, FAILED, TIMED_OUT, ABORTED
    run: dict[str, Any]  # its record in the manifest ({} if the run never opened one)
    error: str  # the execution's error and cause, when it did not succeed
    failed_documents: list[Document]


class KnowledgeAdmin:
    def __init__(self, stage: str, clients: Clients, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        check_stage(stage)
        self.stage = stage
        self.clients = clients
        self._sleep = sleep
        self._clock = clock

    def _parameter(self, relative: str) -> str:
        return stage_parameter(self.clients.ssm, self.stage, relative, f"{{name}} does not exist: is the "
                               f"{self.stage} knowledge stack deployed in this account and region?")  # fmt: skip

    def manifest(self) -> Manifest:
        return Manifest(self.clients.dynamodb.Table(self._parameter(k.MANIFEST_PARAMETER)))

    def start(self) -> tuple[str, str]:
        """Start a run now; (execution ARN, execution name)."""
        name = f"sync-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        arn = self.clients.stepfunctions.start_execution(
            stateMachineArn=self._parameter(k.STATE_MACHINE_PARAMETER), name=name, input="{}"
        )["executionArn"]
        return str(arn), name

    def run_of(self, manifest: Manifest, execution_name: str) -> dict[str, Any]:
        """The run record an execution opened (its id ends in the execution's name); {} before Discover ran."""
        for run in manifest.runs(limit=_RECENT_RUNS):
            if str(run.get(k.SORT_KEY, "")).endswith(f"/{execution_name}"):
                return run
        return {}

    def follow(self, execution_arn: str, execution_name: str, *, progress: Callable[[dict[str, Any]], None],
               poll_seconds: float = 2.0, timeout_seconds: float | None = None) -> RunOutcome:  # fmt: skip
        """Poll until the execution ends, calling ``progress(run)`` whenever the run's counters change."""
        manifest = self.manifest()
        deadline = None if timeout_seconds is None else self._clock() + timeout_seconds
        shown: dict[str, Any] | None = None
        while True:
            described = self.clients.stepfunctions.describe_execution(executionArn=execution_arn)
            run = self.run_of(manifest, execution_name)
            counters = {name: run.get(name) for name in (k.RUN_TOTAL, k.RUN_DONE, k.RUN_FAILED)}
            if run and counters != shown:
                progress(run)
                shown = counters
            if described["status"] != "RUNNING":
                break
            if deadline is not None and self._clock() > deadline:
                raise ToolError(f"The run {execution_name} is still running after {timeout_seconds:.0f} s; "
                                "`status` shows it later.")  # fmt: skip
            self._sleep(poll_seconds)
        status = str(described["status"])
        error = ""
        if status != "SUCCEEDED":
            error = f"{described.get('error') or status}: {_cause(described.get('cause'))}".strip().rstrip(":")
        run_id = str(run.get(k.SORT_KEY, ""))
        failed = [doc for doc in manifest.documents() if doc.status == k.FAILED and doc.last_run == run_id]
        return RunOutcome(status, run, error, failed)

    def runs(self, limit: int) -> list[dict[str, Any]]:
        return self.manifest().runs(limit=limit)

    def failed_documents(self) -> list[Document]:
        return [doc for doc in self.manifest().documents() if doc.status == k.FAILED]


def _cause(cause: Any) -> str:
    """The execution's cause: a Lambda error's JSON carries errorMessage; anything else as it is, cut short."""
    if not isinstance(cause, str):
        return ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause[:500]
    message = parsed.get("errorMessage") if isinstance(parsed, dict) else None
    return str(message or cause)[:500]


def progress_line(run: dict[str, Any]) -> str:
    done, total = int(run.get(k.RUN_DONE, 0)), int(run.get(k.RUN_TOTAL, 0))
    return (f"{done}/{total} documents, {int(run.get(k.RUN_FAILED, 0))} failed, "
            f"{int(run.get(k.RUN_UNAVAILABLE, 0))} unavailable, {int(run.get(k.RUN_SKIPPED, 0))} skipped, "
            f"{int(run.get(k.RUN_DELETED, 0))} deleted")  # fmt: skip


def run_row(run: dict[str, Any]) -> list[str]:
    duration = run.get(k.RUN_DURATION)
    return [_when(str(run.get(k.RUN_STARTED, ""))), str(run.get(k.RUN_STATUS, "")),
            f"{int(run.get(k.RUN_DONE, 0))}/{int(run.get(k.RUN_TOTAL, 0))}",
            *(str(int(run.get(name, 0))) for name in (k.RUN_FAILED, k.RUN_UNAVAILABLE, k.RUN_SKIPPED, k.RUN_DELETED,
                                                      k.RUN_CHUNKS, k.RUN_TOKENS, k.RUN_EMBED_CALLS)),
            "" if duration is None else f"{float(duration):.1f}"]  # fmt: skip


def _when(started: str) -> str:
    """A run's start (Step Functions' ISO time) as UTC to the second."""
    try:
        moment = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return started[:20]
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}Z"


def print_table(rows: list[list[str]], header: Sequence[str], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in [list(header), *rows]) for i in range(len(header))]
    for row in [list(header), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)


def print_documents(documents: list[Document], out: TextIO) -> None:
    for doc in documents:
        print(f"  {doc.document_id}: {doc.error or 'failed'}", file=out)


def sync(admin: KnowledgeAdmin, *, wait: bool, out: TextIO, poll_seconds: float | None = None) -> int:
    arn, name = admin.start()
    print(f"Started run {name}.", file=out)
    if not wait:
        print(f"`python -m tools.knowledge status --stage {admin.stage}` follows it.", file=out)
        return 0
    tty = out.isatty()

    def progress(run: dict[str, Any]) -> None:
        print(("\r" if tty else "") + progress_line(run), end="" if tty else "\n", file=out, flush=True)

    outcome = admin.follow(arn, name, progress=progress, poll_seconds=POLL_SECONDS if poll_seconds is None
                           else poll_seconds)  # fmt: skip
    if tty:
        print(file=out)
    run = outcome.run
    sources = run.get(k.RUN_SOURCE_ERRORS) or {}
    for source, message in sorted(sources.items()):
        print(f"Source {source} was not read: {message}", file=out)
    if outcome.status == "SUCCEEDED":
        print(f"Run {name} succeeded: {int(run.get(k.RUN_CHUNKS, 0))} chunks stored, {int(run.get(k.RUN_TOKENS, 0))}"
              f" tokens in {int(run.get(k.RUN_EMBED_CALLS, 0))} embedding calls, "
              f"{float(run.get(k.RUN_DURATION, 0)):.1f} s.", file=out)  # fmt: skip
    else:
        print(f"Run {name} {outcome.status.lower()}: {outcome.error}", file=out)
    if outcome.failed_documents:
        print(f"{len(outcome.failed_documents)} document(s) failed:", file=out)
        print_documents(outcome.failed_documents, out)
    return 0 if outcome.status == "SUCCEEDED" else 1


def status(admin: KnowledgeAdmin, *, runs: int, out: TextIO) -> int:
    recent = admin.runs(runs)
    if not recent:
        print("No runs yet: `python -m tools.knowledge sync` starts one (the schedule runs weekly).", file=out)
    else:
        print_table([run_row(run) for run in recent], RUN_FIELDS, out)
        for source, message in sorted((recent[0].get(k.RUN_SOURCE_ERRORS) or {}).items()):
            print(f"The latest run could not read {source}: {message}", file=out)
    failed = admin.failed_documents()
    print(f"{len(failed)} failed document(s)" + (":" if failed else "."), file=out)
    print_documents(failed, out)
    return 0


def main(argv: Sequence[str] | None = None, clients: Clients | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.knowledge", description=__doc__.splitlines()[0])
    parser.add_argument("--region", help="AWS region of the deployment (default: the shell's)")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("sync", help="start a pipeline run and follow it to its end")
    start.add_argument("--stage", required=True)
    start.add_argument("--no-wait", action="store_true", help="start the run and return")
    report = commands.add_parser("status", help="recent runs and failed documents")
    report.add_argument("--stage", required=True)
    report.add_argument("--runs", type=int, default=10, help="how many recent runs (default: %(default)s)")
    args = parser.parse_args(argv)

    def command() -> int:
        admin = KnowledgeAdmin(args.stage, clients or Clients.default(args.region))
        if args.command == "sync":
            return sync(admin, wait=not args.no_wait, out=out)
        if not 1 <= args.runs <= 100:
            raise ToolError(f"--runs must be from 1 to 100 (got {args.runs}).")
        return status(admin, runs=args.runs, out=out)

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main())
