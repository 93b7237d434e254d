"""API Gateway's account-level CloudWatch role lives in one account-wide stack, never in a stage's stacks."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest

from app import build_stacks
from constructs_lib.foundation.settings import ConfigError
from lambda_src.contracts.naming import account_stack_name
from stacks.context import Deployment, resolve_deployment
from stacks.stages import DEV
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth
from tests.infra.templates import by_type

ACCOUNT = account_stack_name()


def _manifest_stacks(synth: Synth) -> dict[str, dict[str, Any]]:
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    return {name: a for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"}


@pytest.mark.parametrize("variant", ["dev", "prod", "dev_upload"])
def test_exactly_one_stack_owns_the_account_setting_and_it_is_not_a_stage_stack(variant, variants):
    synth = variants[variant]
    owners = {name for name, t in synth.templates.items() if by_type(t, "AWS::ApiGateway::Account")}
    assert owners == {ACCOUNT}
    gateway_roles = {
        name
        for name, template in synth.templates.items()
        for role in by_type(template, "AWS::IAM::Role").values()
        if "apigateway.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    }
    assert gateway_roles == {ACCOUNT}


def test_the_account_stack_is_the_same_whichever_stage_synthesizes_it(dev, prod):
    """Deploying it with dev and then with prod must change nothing (no stage name or tag in it)."""
    assert dev.templates[ACCOUNT] == prod.templates[ACCOUNT]
    assert '"stage"' not in json.dumps(dev.templates[ACCOUNT])


def test_the_role_and_the_setting_are_retained_and_the_stack_protected(dev):
    template = dev.templates[ACCOUNT]
    (account,) = by_type(template, "AWS::ApiGateway::Account").values()
    (role_id, role), *others = by_type(template, "AWS::IAM::Role").items()
    assert others == []
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    for resource in (account, role):
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    assert _manifest_stacks(dev)[ACCOUNT]["properties"]["terminationProtection"] is True


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_only_the_api_stack_waits_for_the_account_stack_and_nothing_imports_from_it(variant, variants):
    synth = variants[variant]
    waiting = {name for name, stack in _manifest_stacks(synth).items() if ACCOUNT in stack.get("dependencies", [])}
    assert waiting == {synth.stack_name("api")}
    # An ordering, not a reference: with `-c account_stack=false` the stage stacks synthesize unchanged.
    outputs = synth.templates[ACCOUNT]["Outputs"]
    assert outputs.keys() == {"ApiGatewayCloudWatchRoleArn"}
    assert "Export" not in outputs["ApiGatewayCloudWatchRoleArn"]


def test_account_stack_false_leaves_it_out_for_accounts_that_manage_the_setting_elsewhere():
    app = cdk.App(context=CDK_JSON_CONTEXT, builtin_cloud_formation_validation=False)
    build_stacks(app, Deployment(stage=DEV, account_stack=False))
    stacks = [child for child in app.node.children if isinstance(child, cdk.Stack)]
    expected = ("data", "config", "audit", "knowledge", "chat", "web", "api", "monitoring")
    assert sorted(s.stack_name for s in stacks) == sorted(DEV.stack_name(c) for c in expected)
    assert not any(
        isinstance(node, cdk.CfnResource) and node.cfn_resource_type == "AWS::ApiGateway::Account"
        for stack in stacks
        for node in stack.node.find_all()
    )


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("", True), ("true", True), (True, True),
                                                 ("false", False), (False, False)])  # fmt: skip
def test_account_stack_context_flag(value, expected):
    assert resolve_deployment({"account_stack": value}).account_stack is expected


@pytest.mark.parametrize("value", ["no", "False", 0, "yes"])
def test_a_malformed_account_stack_flag_names_the_key(value):
    with pytest.raises(ConfigError) as error:
        resolve_deployment({"account_stack": value})
    assert str(error.value) == f"Context key 'account_stack' must be true or false (got {value!r})."
