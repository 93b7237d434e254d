"""CloudWatch Logs may use a stack's KMS key only for the log groups encrypted with it (aws:logs:arn context)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms

from constructs_lib.foundation.logs import LOGS_ARN_CONTEXT, encrypted_log_group
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth
from tests.infra.templates import by_type

LOGS_PRINCIPAL = {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}


def render(value: Any) -> str:
    """An ARN as a readable string: ``arn:${AWS::Partition}:logs:...``."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    separator, parts = value["Fn::Join"]
    return str(separator).join(render(part) for part in parts)


def log_group_arns_by_key(synth: Synth, stack: str) -> dict[str, set[str]]:
    """Key logical id -> the ARN (or, for a CloudFormation-named group, the ARN pattern) of each log group it
    encrypts, worked out from the log groups themselves."""
    found: dict[str, set[str]] = {}
    for logical_id, group in by_type(synth.templates[stack], "AWS::Logs::LogGroup").items():
        props = group["Properties"]
        key = props["KmsKeyId"]["Fn::GetAtt"][0]
        name = props.get("LogGroupName", f"{stack}-{logical_id}-*")
        found.setdefault(key, set()).add(
            f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{name}"
        )
    return found


def logs_statements(key: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if statement.get("Principal", {}).get("Service") == LOGS_PRINCIPAL
    ]


@pytest.mark.parametrize("variant", ["dev", "prod", "dev_upload"])
def test_each_key_lets_cloudwatch_logs_use_it_for_exactly_its_own_log_groups(variant, variants):
    synth = variants[variant]
    checked = 0
    for stack, template in synth.templates.items():
        expected = log_group_arns_by_key(synth, stack)
        for logical_id, key in by_type(template, "AWS::KMS::Key").items():
            statements = logs_statements(key)
            if logical_id not in expected:
                assert statements == [], f"{stack}/{logical_id} encrypts no log group: CloudWatch Logs needs no use"
                continue
            (statement,) = statements
            assert set(statement["Condition"]) == {"ArnLike"}, statement
            values = statement["Condition"]["ArnLike"][LOGS_ARN_CONTEXT]
            assert sorted(render(v) for v in values) == sorted(expected[logical_id]), f"{stack}/{logical_id}"
            assert statement["Resource"] == "*"
            checked += 1
    # data (with the upload), config, audit, knowledge, web and api each encrypt logs with one of their keys.
    assert checked == (6 if variant == "dev_upload" else 5)


def test_a_key_shared_by_two_log_groups_has_one_statement_listing_both_and_other_keys_list_neither():
    app = cdk.App(context=CDK_JSON_CONTEXT)
    stack = cdk.Stack(app, "logs")
    first, second = kms.Key(stack, "First"), kms.Key(stack, "Second")
    encrypted_log_group(stack, "A", key=first, retention_days=7, retain=False, log_group_name="named-a")
    encrypted_log_group(stack, "B", key=first, retention_days=7, retain=False, log_group_name="named-b")
    encrypted_log_group(stack, "C", key=second, retention_days=7, retain=False, log_group_name="named-c")
    template = app.synth().get_stack_by_name("logs").template
    names = {}
    for key_id, key in by_type(template, "AWS::KMS::Key").items():
        (statement,) = logs_statements(key)
        names[key_id] = sorted(render(v).rsplit(":", 1)[1] for v in statement["Condition"]["ArnLike"][LOGS_ARN_CONTEXT])
    assert sorted(names.values()) == [["named-a", "named-b"], ["named-c"]]


def test_an_imported_key_is_refused_with_a_sentence_saying_why():
    stack = cdk.Stack(cdk.App(), "imported")
    key = kms.Key.from_key_arn(stack, "Key", "arn:aws:kms:us-east-1:123456789012:key/abcd")
    with pytest.raises(ValueError, match=r"needs a KMS key defined in this app .* imported key"):
        encrypted_log_group(stack, "Logs", key=key, retention_days=7, retain=False)
