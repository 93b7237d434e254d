"""The pinned CDK CLI drives app.py as users run it: synth writes templates and reports; diff works offline."""

from __future__ import annotations

import json

import pytest

from tests.infra import cli_runs
from tests.infra.conftest import ROOT


@pytest.mark.cli("synth-prod")
def test_cli_synth_writes_templates_and_compliance_reports():
    result = cli_runs.result("synth-prod")
    assert result.returncode == 0, result.stderr
    out = cli_runs.out() / "prod"
    assert (out / f"{cli_runs.PROD_DATA_STACK}.template.json").is_file()
    assert (out / "compliance-report.md").is_file()
    assert (out / "compliance-report.csv").is_file()
    assert json.loads((out / "validation-report.json").read_text())["pluginReports"] == []


@pytest.mark.cli("synth-prod", "diff-same", "diff-changed")
def test_cli_diff_against_a_saved_template_works_offline():
    same = cli_runs.result("diff-same")
    assert same.returncode == 0, same.stderr
    assert "There were no differences" in same.stdout + same.stderr
    # A real change shows up in the diff.
    changed = cli_runs.result("diff-changed")
    assert "EnableKeyRotation" in changed.stdout + changed.stderr


@pytest.mark.cli("synth-prod")
def test_synth_needs_no_context_lookup():
    assert cli_runs.result("synth-prod").returncode == 0
    # A lookup (VPC, AZs, SSM value...) shows up as "missing" context the CLI would fetch from AWS.
    manifest = json.loads((cli_runs.out() / "prod" / "manifest.json").read_text())
    assert "missing" not in manifest
    assert not (ROOT / "cdk.context.json").exists()
