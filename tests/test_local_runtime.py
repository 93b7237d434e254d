"""The host-Python Lambda environment `make local` runs deployed functions in (tools/local/runtime.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tools.local.runtime import FunctionError, Worker

HANDLER = """
import os
print("a log line on stdout must not reach the caller")
CALLS = []

def handle(event, context):
    CALLS.append(event)
    if event.get("fail"):
        raise ValueError("bad input")
    return {
        "event": event,
        "calls": len(CALLS),
        "request_id": context.aws_request_id,
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "setting": os.environ.get("SETTING"),
        "layer": __import__("layered").VALUE,
    }
"""


@pytest.fixture
def worker(tmp_path: Path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    layer = tmp_path / "layer"
    (layer / "python").mkdir(parents=True)
    (layer / "python" / "layered.py").write_text("VALUE = 'from the layer'\n")
    env = {"PATH": os.environ["PATH"], "SETTING": "x", "LOCAL_LAMBDA_FUNCTION_NAME": "fn"}
    started = Worker(handler="app.handle", code_dir=str(code), layers=[str(layer)], environment=env,
                     timeout_seconds=30, python=sys.executable)  # fmt: skip
    yield started
    started.close()


def test_a_warm_environment_answers_each_invocation_with_lambdas_context(worker):
    first = worker.invoke({"n": 1})
    second = worker.invoke({"n": 2})
    assert first["event"] == {"n": 1} and second["calls"] == 2  # one import, state kept between calls
    assert first["request_id"] != second["request_id"]
    assert first["function"] == "fn" and 0 < first["remaining_ms"] <= 30_000
    assert first["setting"] == "x" and first["layer"] == "from the layer"


def test_an_exception_is_a_function_error_and_the_environment_survives(worker):
    with pytest.raises(FunctionError, match="ValueError: bad input"):
        worker.invoke({"fail": True})
    assert worker.invoke({"n": 3})["calls"] == 2


def test_a_call_past_the_timeout_is_stopped_and_the_next_call_starts_fresh(tmp_path: Path):
    code = tmp_path / "slow"
    code.mkdir()
    (code / "app.py").write_text(
        "import time\nCALLS = []\n"
        "def handle(event, context):\n"
        "    CALLS.append(1)\n"
        "    time.sleep(event['sleep'])\n"
        "    return len(CALLS)\n"
    )
    worker = Worker(handler="app.handle", code_dir=str(code), layers=[], environment={"PATH": os.environ["PATH"]},
                    timeout_seconds=1, python=sys.executable)  # fmt: skip
    try:
        with pytest.raises(FunctionError, match=r"Task timed out after 1.00 seconds"):
            worker.invoke({"sleep": 30})
        assert worker.invoke({"sleep": 0}) == 1  # a new environment: the module state starts over
    finally:
        worker.close()
