"""The CDK CLI runs the CLI tests assert on, by name.

tests/conftest.py starts the runs named by the selected tests' `cli` markers when collection ends, so the
CLI (Node, then app.py in a fresh Python) works beside the in-process tests; each test waits for its runs.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests import background
from tests.background import run_cdk
from tests.infra.templates import logical_id_at

PROD_DATA_STACK = "llm-platform-prod-data"


@functools.cache
def out() -> Path:
    """One scratch folder for every CLI run of the session (removed by `cleanup`)."""
    return Path(tempfile.mkdtemp(prefix="llm-platform-cli-"))


def _synth_prod() -> subprocess.CompletedProcess[str]:
    return run_cdk("synth", "--quiet", "-c", "stage=prod", "-o", str(out() / "prod"))


def _synth_bad_stage() -> subprocess.CompletedProcess[str]:
    return run_cdk("synth", "--quiet", "-c", "stage=qa", "-o", str(out() / "bad-stage"))


def _diff(*, rotation_off: bool) -> subprocess.CompletedProcess[str]:
    """`cdk diff` of the CLI-synthesized prod data stack against a saved copy, changed or not."""
    synth = result("synth-prod")
    if synth.returncode != 0:
        return synth
    template = json.loads((out() / "prod" / f"{PROD_DATA_STACK}.template.json").read_text())
    if rotation_off:
        key = logical_id_at(template, f"{PROD_DATA_STACK}/Dataset/Key")
        template["Resources"][key]["Properties"]["EnableKeyRotation"] = False
    saved = out() / f"saved-{'changed' if rotation_off else 'same'}.template.json"
    saved.write_text(json.dumps(template))
    return run_cdk("diff", "--app", str(out() / "prod"), "--template", str(saved), PROD_DATA_STACK)


RUNS: dict[str, Callable[[], subprocess.CompletedProcess[str]]] = {
    "synth-prod": _synth_prod,
    "synth-bad-stage": _synth_bad_stage,
    "diff-same": functools.partial(_diff, rotation_off=False),
    "diff-changed": functools.partial(_diff, rotation_off=True),
}


def start(name: str) -> None:
    out()  # created here, on the calling thread, before any run needs it
    background.start(f"cli:{name}", RUNS[name])


def result(name: str) -> subprocess.CompletedProcess[str]:
    out()
    return background.result(f"cli:{name}", RUNS[name])


def cleanup() -> None:
    if out.cache_info().currsize:
        shutil.rmtree(out(), ignore_errors=True)
