"""Every synthesized template passes cfn-lint (the built-in CloudFormation validation is off in synth)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Every ignored check is listed there with its reason.
CFN_LINT_CONFIG = Path(__file__).resolve().parents[2] / ".cfnlintrc.yaml"


def test_cfn_lint_reports_nothing_on_any_template(variants):
    templates = sorted(str(p) for synth in variants.values() for p in synth.outdir.glob("*.template.json"))
    assert len(templates) == 4 * len(variants)  # data, config, audit and api stacks of each variant
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--config-file",
            str(CFN_LINT_CONFIG),
            "--format",
            "parseable",
            *templates,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
