"""The pinned CDK CLI drives app.py as users run it: synth writes templates and reports; diff works offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.infra.conftest import ROOT, run_cdk

pytestmark = pytest.mark.cli
STACK = "llm-platform-prod-data"


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "cdk.out"
    result = run_cdk("synth", "--quiet", "-c", "stage=prod", "-o", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_cli_synth_writes_templates_and_compliance_reports(cli_out):
    assert (cli_out / f"{STACK}.template.json").is_file()
    assert (cli_out / "compliance-report.md").is_file()
    assert (cli_out / "compliance-report.csv").is_file()
    assert json.loads((cli_out / "validation-report.json").read_text())["pluginReports"] == []


def test_cli_diff_against_a_saved_template_works_offline(cli_out, tmp_path):
    saved = tmp_path / "saved.template.json"
    template = json.loads((cli_out / f"{STACK}.template.json").read_text())
    saved.write_text(json.dumps(template))
    same = run_cdk("diff", "--app", str(cli_out), "--template", str(saved), STACK)
    assert same.returncode == 0, same.stderr
    assert "There were no differences" in same.stdout + same.stderr

    # A real change shows up in the diff.
    template["Resources"]["DatasetKeyF70C338B"]["Properties"]["EnableKeyRotation"] = False
    saved.write_text(json.dumps(template))
    changed = run_cdk("diff", "--app", str(cli_out), "--template", str(saved), STACK)
    assert "EnableKeyRotation" in changed.stdout + changed.stderr


def test_synth_needs_no_context_lookup(cli_out):
    # A lookup (VPC, AZs, SSM value...) shows up as "missing" context the CLI would fetch from AWS.
    manifest = json.loads((cli_out / "manifest.json").read_text())
    assert "missing" not in manifest
    assert not (ROOT / "cdk.context.json").exists()
