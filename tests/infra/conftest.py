"""The app is synthesized once per test session per variant; tests read templates from these fixtures."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_stacks, create_app, synthesize
from constructs_lib.foundation.compliance_report import ComplianceReport
from constructs_lib.foundation.nag import (
    AcknowledgedFinding,
    acknowledgments_disabled,
    apply_nag_packs,
    collect_acknowledgments,
)
from constructs_lib.guardrails.settings import DeniedTopic, GuardrailConfig, RegexFilter
from constructs_lib.web.settings import WebConfig
from stacks.context import Deployment
from stacks.stages import DEV, PROD, StageConfig
from tests import background
from tests.infra.templates import logical_id_at

ROOT = Path(__file__).resolve().parents[2]
# The feature flags and defaults the CDK CLI passes to app.py from cdk.json, and the metadata switches the
# CLI turns on by default (construct paths let tests find resources without hashed logical ids).
CDK_JSON_CONTEXT: dict[str, Any] = {
    **json.loads((ROOT / "cdk.json").read_text())["context"],
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
}
DATASET_FIXTURE = ROOT / "tests" / "fixtures" / "dataset"


@dataclass(frozen=True)
class Synth:
    """One synthesized app: its cloud assembly folder, templates by stack name and nag report."""

    outdir: Path
    report: ComplianceReport
    templates: dict[str, dict[str, Any]]

    def template(self, component: str) -> Template:
        return Template.from_json(self.raw(component))

    def raw(self, component: str) -> dict[str, Any]:
        return self.templates[self.stack_name(component)]

    def stack_name(self, component: str) -> str:
        matches = [name for name in self.templates if name.endswith(f"-{component}")]
        assert len(matches) == 1, f"expected one {component} stack, found {sorted(self.templates)}"
        return matches[0]

    def logical_id(self, component: str, path: str) -> str:
        """The logical id of the resource at construct path ``path`` of the component's stack."""
        return logical_id_at(self.raw(component), f"{self.stack_name(component)}/{path}")

    def resource(self, component: str, path: str) -> dict[str, Any]:
        """The resource at construct path ``path``, e.g. ``resource("api", "Inference/Policy")``."""
        resource: dict[str, Any] = self.raw(component)["Resources"][self.logical_id(component, path)]
        return resource

    def properties(self, component: str, path: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resource(component, path)["Properties"]
        return props


def ref(synth: Synth, component: str, path: str) -> dict[str, str]:
    return {"Ref": synth.logical_id(component, path)}


def arn_of(synth: Synth, component: str, path: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [synth.logical_id(component, path), "Arn"]}


def _synth(app: cdk.App) -> Synth:
    report = synthesize(app)
    outdir = Path(app.outdir)
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in outdir.glob("*.template.json")
    }
    return Synth(outdir=outdir, report=report, templates=templates)


def synth_context(tmp_path_factory: pytest.TempPathFactory, **context: Any) -> Synth:
    """Synthesize exactly as `cdk synth -c key=value` would: cdk.json context plus the given keys."""
    outdir = tmp_path_factory.mktemp("cdk-out")
    app, _ = create_app(context={**CDK_JSON_CONTEXT, **context}, outdir=str(outdir))
    return _synth(app)


def synth_deployment(tmp_path_factory: pytest.TempPathFactory, deployment: Deployment) -> Synth:
    """Synthesize a Deployment built in code (a stage variant no context value selects)."""
    outdir = tmp_path_factory.mktemp("cdk-out")
    app = cdk.App(context=CDK_JSON_CONTEXT, outdir=str(outdir), builtin_cloud_formation_validation=False)
    build_stacks(app, deployment)
    apply_nag_packs(app)
    return _synth(app)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth_context(tmp_path_factory, stage="dev")


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth_context(tmp_path_factory, stage="prod")


# A guardrail of the organisation's own, applied to the OpenAI-compatible routes only.
GUARDRAIL_VARIANT = GuardrailConfig(
    chat_routes=False,
    words=("project bluebird",),
    regexes=(RegexFilter("employee-id", r"EMP-\d{6}", "ANONYMIZE", "Employee numbers"),),
    denied_topics=(
        DeniedTopic(
            "Investment advice", "Recommendations about buying or selling securities.", ("Should I buy this stock?",)
        ),
    ),
    profanity=False,
)
# The switches a stage may turn, in one synth: the deploy-time dataset upload on, response streaming off, the web app
# on a custom domain behind an existing CloudFront web ACL, the chat's users signing themselves up on the Essentials
# plan, the knowledge pipeline's schedule off, alarm emails, the guardrail above.
ALARM_EMAILS = ("ops@example.org", "oncall@example.org")
WEB_CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-0b0a-0908-0706-050403020100"
WEB_ACL = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/org-sites/0f0e0d0c-0b0a-0908-0706-050403020100"
UPLOAD_STAGE = dataclasses.replace(DEV, dataset=dataclasses.replace(DEV.dataset, source_dir=str(DATASET_FIXTURE)),
                                   api=dataclasses.replace(DEV.api, streaming=False),
                                   web=WebConfig(domain_name="chat.example.com", certificate_arn=WEB_CERTIFICATE,
                                                 web_acl_arn=WEB_ACL),
                                   chat=dataclasses.replace(DEV.chat, self_sign_up=True,
                                                            feature_plan="essentials"),
                                   knowledge=dataclasses.replace(DEV.knowledge, schedule_enabled=False),
                                   observability=dataclasses.replace(DEV.observability,
                                                                     alarm_emails=ALARM_EMAILS),
                                   guardrails=GUARDRAIL_VARIANT)  # fmt: skip


@pytest.fixture(scope="session")
def dev_upload(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """dev with the optional deploy-time dataset upload switched on, response streaming off, the web app on a
    custom domain with a web ACL, self sign-up on the Essentials plan for the chat's users, the knowledge pipeline's
    schedule off and two alarm emails."""
    return synth_deployment(tmp_path_factory, Deployment(stage=UPLOAD_STAGE))


@pytest.fixture(scope="session")
def variants(dev: Synth, prod: Synth, dev_upload: Synth) -> dict[str, Synth]:
    synths = {"dev": dev, "prod": prod, "dev_upload": dev_upload}
    background.start("cfn-lint", lambda: cfn_lint(synths))
    return synths


# Every ignored check is listed there with its reason.
CFN_LINT_CONFIG = ROOT / ".cfnlintrc.yaml"


def cfn_lint(synths: dict[str, Synth]) -> subprocess.CompletedProcess[str]:
    """cfn-lint over every distinct template of every variant (variants share byte-identical templates)."""
    distinct: dict[str, str] = {}
    for synth in synths.values():
        for path in sorted(synth.outdir.glob("*.template.json")):
            distinct.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), str(path))
    command = [str(Path(sys.executable).parent / "cfn-lint"), "--config-file", str(CFN_LINT_CONFIG)]
    return subprocess.run(
        [*command, "--format", "parseable", *distinct.values()],
        capture_output=True,
        text=True,
        timeout=background.TIMEOUT_SECONDS,
        check=False,
    )


@dataclass(frozen=True)
class UnacknowledgedSynth:
    report: ComplianceReport
    intended: list[AcknowledgedFinding]


def _unacknowledged(tmp_path_factory: pytest.TempPathFactory, stage: StageConfig) -> UnacknowledgedSynth:
    outdir = tmp_path_factory.mktemp("cdk-out-unacked")
    app = cdk.App(context=CDK_JSON_CONTEXT, outdir=str(outdir), builtin_cloud_formation_validation=False)
    with acknowledgments_disabled():
        build_stacks(app, Deployment(stage=stage))
    apply_nag_packs(app)
    return UnacknowledgedSynth(report=synthesize(app), intended=collect_acknowledgments(app, disabled=True))


@pytest.fixture(scope="session")
def unacknowledged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, UnacknowledgedSynth]:
    """Each variant built with acknowledgments switched off: the findings they would hide."""
    return {
        name: _unacknowledged(tmp_path_factory, stage)
        for name, stage in (("dev", DEV), ("prod", PROD), ("dev_upload", UPLOAD_STAGE))
    }
