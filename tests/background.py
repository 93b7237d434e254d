"""Subprocess checks (the CDK CLI, cfn-lint) that run beside the in-process tests instead of after them.

The suite's in-process work (synthesis through jsii, moto) keeps one core busy; the CLI runs and cfn-lint
are separate processes, so they are started as soon as their inputs exist and the tests that assert on
them only wait for the result. A job is started at most once per session and always by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_SECONDS = 300

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="background-check")
_jobs: dict[str, Future[subprocess.CompletedProcess[str]]] = {}
_lock = threading.Lock()  # jobs start jobs they depend on from worker threads


def run_cdk(*args: str) -> subprocess.CompletedProcess[str]:
    """The project's pinned CDK CLI, run from the repo root as a user would, with no AWS credentials."""
    path = os.pathsep.join([str(ROOT / "node_modules" / ".bin"), os.path.dirname(sys.executable), os.environ["PATH"]])
    env = {**os.environ, "PATH": path, "CDK_DISABLE_CLI_TELEMETRY": "true"}
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    cdk_cli = str(ROOT / "node_modules" / ".bin" / "cdk")
    return subprocess.run(
        [cdk_cli, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )


def start(name: str, work: Callable[[], subprocess.CompletedProcess[str]]) -> None:
    """Start `work` in the background under `name` unless a job of that name already exists."""
    with _lock:
        if name not in _jobs:
            _jobs[name] = _pool.submit(work)


def result(name: str, work: Callable[[], subprocess.CompletedProcess[str]]) -> subprocess.CompletedProcess[str]:
    """The finished job `name`, started now if nothing started it earlier."""
    start(name, work)
    with _lock:
        job = _jobs[name]
    return job.result(timeout=TIMEOUT_SECONDS)


def shutdown() -> None:
    """Wait for jobs still running (a test that failed early may not have waited for its own)."""
    _pool.shutdown(wait=True, cancel_futures=True)
