"""Test-wide set-up: the venv's Node 24 for jsii, as app.py does, before any test imports aws_cdk."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_VENV_BIN = Path(sys.executable).parent
if (_VENV_BIN / "node").exists():
    os.environ["PATH"] = f"{_VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
