"""PythonFunction: CDK's own grants land in the function's one customer-managed policy (never an inline one)."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Template

from constructs_lib.foundation.python_function import PythonFunction, PythonFunctionProps, stage_package
from tests.infra.conftest import CDK_JSON_CONTEXT
from tests.infra.templates import by_type, logical_id_at


@pytest.fixture(scope="module")
def granted() -> dict[str, Any]:
    """A function granted with L2 grants, once to the construct and once to its lambda.Function."""
    app = cdk.App(context=CDK_JSON_CONTEXT, builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "grants")
    key = kms.Key(stack, "Key")
    props = PythonFunctionProps(package="authorizer", description="grants test", log_key=key, log_retention_days=7,
                                retain_logs=False)  # fmt: skip
    fn = PythonFunction(stack, "Fn", props=props)
    table = dynamodb.Table(
        stack, "Table", partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING)
    )
    secret = secretsmanager.Secret(stack, "Secret")
    stream = firehose.DeliveryStream(stack, "Stream", destination=firehose.S3Bucket(s3.Bucket(stack, "Bucket")))
    data = s3.Bucket(stack, "Data", encryption=s3.BucketEncryption.KMS, encryption_key=kms.Key(stack, "DataKey"))
    data.grant_read(fn)
    fn.role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=["arn:aws:sqs:us-east-1:1:q"]))
    table.grant_read_write_data(fn)
    secret.grant_read(fn.function)
    stream.grant_put_records(fn)
    return dict(Template.from_stack(stack).to_json())


def _function_policy(template: dict[str, Any]) -> str:
    return json.dumps(template["Resources"][logical_id_at(template, "grants/Fn/Policy")]["Properties"])


def test_l2_grants_land_in_the_functions_managed_policy(granted):
    policy = _function_policy(granted)
    table = logical_id_at(granted, "grants/Table")
    assert "dynamodb:PutItem" in policy and table in policy  # table.grant_read_write_data(fn)
    assert "secretsmanager:GetSecretValue" in policy and logical_id_at(granted, "grants/Secret") in policy
    assert "firehose:PutRecordBatch" in policy and logical_id_at(granted, "grants/Stream") in policy
    # bucket.grant_read(fn) on a KMS-encrypted bucket: the objects, and decrypting with the bucket's key.
    assert "s3:GetObject*" in policy and logical_id_at(granted, "grants/Data") in policy
    assert "kms:Decrypt" in policy and logical_id_at(granted, "grants/DataKey") in policy
    assert "sqs:SendMessage" in policy  # role.add_to_policy(...)
    # X-Ray and its own log group, added by CDK and by the construct, land there too.
    assert "xray:PutTraceSegments" in policy and logical_id_at(granted, "grants/Fn/Logs") in policy


def test_no_grant_creates_an_inline_policy(granted):
    role_ref = {"Ref": logical_id_at(granted, "grants/Fn/Role")}
    inline = [p for p in by_type(granted, "AWS::IAM::Policy").values() if role_ref in p["Properties"]["Roles"]]
    assert inline == []
    role = granted["Resources"][role_ref["Ref"]]["Properties"]
    assert "Policies" not in role and "ManagedPolicyArns" not in role


def test_the_function_waits_for_its_policy(granted):
    function = granted["Resources"][logical_id_at(granted, "grants/Fn/Function")]
    assert logical_id_at(granted, "grants/Fn/Policy") in function["DependsOn"]


def test_package_must_be_a_function_folder():
    key = kms.Key(cdk.Stack(cdk.App()), "Key")
    for package in ("shared", "contracts", "nope", "../tools"):
        with pytest.raises(ValueError, match="must name a function folder of lambda_src/"):
            PythonFunctionProps(package=package, description="x", log_key=key, log_retention_days=7, retain_logs=False)


def test_the_asset_is_the_package_and_the_shared_code_only():
    folder = stage_package("inference")
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert "lambda_src/__init__.py" in files and "lambda_src/inference/handler.py" in files
    assert {f.split("/")[1] for f in files if f.count("/") > 1} == {"inference", "shared", "contracts"}
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert stage_package("inference") == folder  # staged once per content
