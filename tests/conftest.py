"""Test-wide set-up: the venv's Node 24 for jsii, as app.py does, before any test imports aws_cdk."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from tests import background
from tests.aws_fakes import REGION
from tests.infra import cli_runs

_VENV_BIN = Path(sys.executable).parent
if (_VENV_BIN / "node").exists():
    os.environ["PATH"] = f"{_VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"

# Every new botocore session (moto's per-test mock, each boto3.Session() the handlers make) would parse
# the same service-model JSON again: ~3 s per 30 moto tests. One loader per data path serves them all.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 with fake credentials in the tests' region: no profile, no endpoint override, so nothing reaches
    AWS or a local emulator (for a test that starts moto itself, after patching it)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def aws(aws_credentials: None) -> Iterator[None]:
    """moto, in-process (no network), for the test."""
    with mock_aws():
        yield


@pytest.fixture(autouse=True)
def _module_logs_reach_caplog() -> None:
    """Importing an inference handler routes the lambda_src module loggers through its Powertools Logger (not to
    the root logger, where caplog listens), for the rest of the process: each test starts from the default."""
    package = logging.getLogger("lambda_src")
    package.handlers.clear()
    package.propagate = True
    package.setLevel(logging.NOTSET)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that wait for background subprocesses run last, so the subprocesses overlap everything else."""
    items.sort(key=lambda item: bool(item.get_closest_marker("cli") or item.get_closest_marker("background")))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the CDK CLI runs the selected tests assert on (tests/infra/cli_runs.py)."""
    names = {name for item in session.items for marker in item.iter_markers("cli") for name in marker.args}
    for name in sorted(names):
        cli_runs.start(name)


def pytest_sessionfinish(session: pytest.Session) -> None:
    background.shutdown()
    cli_runs.cleanup()
