"""cdk-nag: no unacknowledged finding in any pack; every acknowledgment is real, reasoned and documented."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from app import synthesize
from constructs_lib.foundation.compliance_report import CSV_REPORT, MARKDOWN_REPORT, VALIDATION_REPORT
from constructs_lib.foundation.nag import NAG_PACKS, acknowledge, apply_nag_packs, collect_acknowledgments
from tests.infra.conftest import CDK_JSON_CONTEXT, ROOT

VARIANTS = ["dev", "prod", "dev_upload"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_unacknowledged_findings_in_any_pack(variant, variants):
    report = variants[variant].report
    assert report.findings == (), "\n".join(f"{f.path}: {f.rule_id}" for f in report.findings)
    assert report.passed


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_acknowledgment_has_a_reason(variant, variants):
    acknowledgments = variants[variant].report.acknowledgments
    assert acknowledgments, "expected the documented acknowledgments to be present"
    for ack in acknowledgments:
        assert len(ack.reason.split()) >= 8, f"{ack.rule_id} on {ack.path} has no real reason: {ack.reason!r}"


def test_acknowledge_refuses_a_missing_or_thin_reason():
    stack = cdk.Stack(cdk.App())
    bucket = s3.Bucket(stack, "B")
    with pytest.raises(ValueError, match="reason of at least 8 words"):
        acknowledge(bucket, "", ["AwsSolutions-S1"])
    with pytest.raises(ValueError, match="reason of at least 8 words"):
        acknowledge(bucket, "False positive.", ["AwsSolutions-S1"])
    with pytest.raises(ValueError, match="does not belong to any applied nag pack"):
        acknowledge(bucket, "a long enough reason that says nothing much at all", ["Foo-S1"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_acknowledgment_hides_a_real_finding_at_that_construct(variant, variants, unacknowledged):
    """Synthesized without acknowledgments, each one must correspond to a finding on its construct."""
    raw = unacknowledged[variant]
    findings = {(f.rule_id, f.path) for f in raw.report.findings}
    for ack in raw.intended:
        assert any(
            rule == ack.rule_id and (path == ack.path or path.startswith(ack.path + "/")) for rule, path in findings
        ), f"acknowledgment {ack.rule_id} on {ack.path} hides nothing: remove it"
    # ... and acknowledging those is exactly what makes the real synth pass.
    assert len(raw.report.findings) > 0
    assert {(a.rule_id, a.path) for a in raw.intended} == {
        (a.rule_id, a.path) for a in variants[variant].report.acknowledgments
    }


def test_no_acknowledgment_is_placed_on_an_app_or_a_stack(variants):
    for synth in variants.values():
        for ack in synth.report.acknowledgments:
            assert ack.path.count("/") >= 1, f"{ack.rule_id} is acknowledged on a whole stack or the app"


def test_readme_lists_every_acknowledged_rule(variants):
    readme = (ROOT / "README.md").read_text()
    compliance = readme[readme.index("## Compliance") :]
    missing = set()
    for synth in variants.values():
        for ack in synth.report.acknowledgments:
            # Ids naming a hashed logical id are listed up to the hash ("...[Resource::<DatasetBucket").
            documented = ack.rule_id.split("<", 1)[0]
            if f"`{documented}" not in compliance:
                missing.add(ack.rule_id)
    assert not missing, f"README compliance section does not list: {sorted(missing)}"


# --- the compliance report ------------------------------------------------------------------------


def test_report_files_are_written_with_one_summary_line_per_pack(dev):
    markdown = (dev.outdir / MARKDOWN_REPORT).read_text()
    for pack in NAG_PACKS:
        assert f"| {pack} | PASS - 0 unacknowledged finding(s)" in markdown
    with (dev.outdir / CSV_REPORT).open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "CSV report is empty"
    assert {r["status"] for r in rows} == {"ACKNOWLEDGED"}
    # Every stack has acknowledgments but the monitoring stack, which needs none.
    assert {r["stack"] for r in rows} == set(dev.templates) - {dev.stack_name("monitoring")}
    row = next(r for r in rows if r["rule"] == "NIST.800.53.R5-S3DefaultEncryptionKMS" and r["stack"].endswith("-data"))
    assert row["pack"] == "NIST.800.53.R5"
    assert row["resource_path"] == "llm-platform-dev-data/Dataset/AccessLogs"
    assert "SSE-S3" in row["reason_or_description"]


def test_a_failing_synth_still_writes_the_report_naming_what_to_fix(tmp_path: Path):
    (tmp_path / VALIDATION_REPORT).write_text('{"pluginReports": [{"pluginName": "stale", "violations": []}]}')
    app = cdk.App(context=CDK_JSON_CONTEXT, outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "naive")
    bucket = s3.Bucket(stack, "Plain")
    acknowledge(bucket, "Access logging is out of scope for this deliberately naive test bucket.", ["AwsSolutions-S1"])
    apply_nag_packs(app)

    report = synthesize(app)

    assert not report.passed
    rules = {(f.pack, f.rule_id, f.path) for f in report.findings}
    assert ("AwsSolutions", "AwsSolutions-S10", "naive/Plain/Resource") in rules
    assert ("NIST.800.53.R5", "NIST.800.53.R5-S3DefaultEncryptionKMS", "naive/Plain/Resource") in rules
    assert not any(f.rule_id == "AwsSolutions-S1" for f in report.findings)
    assert "stale" not in {f.pack for f in report.findings}
    markdown = (tmp_path / MARKDOWN_REPORT).read_text()
    assert "| AwsSolutions | FAIL - " in markdown
    assert "| FINDING | `AwsSolutions-S10` | `naive/Plain/Resource` |" in markdown
    assert "| acknowledged | `AwsSolutions-S1` | `naive/Plain` |" in markdown
    with (tmp_path / CSV_REPORT).open() as handle:
        statuses = {(r["status"], r["rule"]) for r in csv.DictReader(handle)}
    assert ("FINDING", "AwsSolutions-S10") in statuses
    assert ("ACKNOWLEDGED", "AwsSolutions-S1") in statuses
    assert json.loads((tmp_path / VALIDATION_REPORT).read_text())["pluginReports"]
    assert collect_acknowledgments(app)[0].stack == "naive"


@pytest.mark.parametrize(("variant", "streams"), [("dev", True), ("prod", True), ("dev_upload", False)])
def test_the_stage_cache_acknowledgment_says_why_streaming_rules_a_cache_out(variant, streams, variants):
    (cache,) = {a.reason for a in variants[variant].report.acknowledgments
                if a.rule_id.endswith("APIGWCacheEnabledAndEncrypted")}  # fmt: skip
    assert ("API Gateway cannot cache them" in cache) is streams
