"""The set-up is idempotent: with nothing changed, `make` has nothing to reinstall."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_setup_targets_are_up_to_date_after_setup():
    # `make --question` exits 0 only when every prerequisite stamp is newer than its inputs.
    result = subprocess.run(
        ["make", "--question", "setup-dev"],  # noqa: S607 - make from PATH, as the README runs it
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, "make would reinstall dependencies although nothing changed"
