"""DataStack template assertions: dataset bucket, access-log bucket, KMS key, read role, upload, outputs."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from stacks.data_stack import DataStack
from stacks.stages import DEV, Deployment
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth, by_type, synth_context, synth_deployment

DATASET_BUCKET = "DatasetBucket5A07B7EE"
ACCESS_LOG_BUCKET = "DatasetAccessLogs4E9CB989"
DATASET_KEY = "DatasetKeyF70C338B"
BUCKET_ARN = {"Fn::GetAtt": [DATASET_BUCKET, "Arn"]}
KEY_ARN = {"Fn::GetAtt": [DATASET_KEY, "Arn"]}
AUTO_DELETE_ROLE = "CustomS3AutoDeleteObjectsCustomResourceProviderRole3B1BD092"


def _bucket_props(synth: Synth, logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = synth.raw("data")["Resources"][logical_id]["Properties"]
    return props


def _statements_of(synth: Synth, logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = synth.raw("data")["Resources"][logical_id]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    return statements


def prefix_statements_json(object_action: str, key_actions: str | list[str], prefix: str) -> list[dict[str, Any]]:
    """The exact statements granting ``object_action`` under ``prefix`` of the dataset bucket."""
    return [
        {
            "Sid": "PrefixObjects",
            "Action": object_action,
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [BUCKET_ARN, f"/{prefix}*"]]},
        },
        {
            "Sid": "ListPrefix",
            "Action": "s3:ListBucket",
            "Effect": "Allow",
            "Resource": BUCKET_ARN,
            "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
        },
        {
            "Sid": "KeyViaS3",
            "Action": key_actions,
            "Effect": "Allow",
            "Resource": KEY_ARN,
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]},
                    "kms:EncryptionContext:aws:s3:arn": BUCKET_ARN,
                }
            },
        },
    ]


# --- dataset bucket -------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_dataset_bucket_is_encrypted_with_the_customer_managed_key_and_bucket_keys(stage, variants):
    variants[stage].template("data").has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN},
                    }
                ]
            }
        },
    )


@pytest.mark.parametrize("stage", ["dev", "prod"])
@pytest.mark.parametrize("bucket", [DATASET_BUCKET, ACCESS_LOG_BUCKET])
def test_buckets_block_public_access_enforce_ownership_and_are_versioned(stage, bucket, variants):
    props = _bucket_props(variants[stage], bucket)
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "AccessControl" not in props


@pytest.mark.parametrize("stage", ["dev", "prod"])
@pytest.mark.parametrize("bucket", [DATASET_BUCKET, ACCESS_LOG_BUCKET])
def test_bucket_policies_deny_plain_http_and_old_tls(stage, bucket, variants):
    policies = by_type(variants[stage].raw("data"), "AWS::S3::BucketPolicy")
    (policy,) = [p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": bucket}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    both = [{"Fn::GetAtt": [bucket, "Arn"]}, {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]}]
    assert {
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": both,
    } in statements
    assert {
        "Action": "s3:*",
        "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": both,
    } in statements
    # The only grants: S3 log delivery, and in dev CDK's auto-delete handler (same stack) emptying the bucket.
    allowed: list[dict[str, Any]] = [{"Service": "logging.s3.amazonaws.com"}]
    if stage == "dev":
        allowed.append({"AWS": {"Fn::GetAtt": [AUTO_DELETE_ROLE, "Arn"]}})
    for statement in statements:
        if statement["Effect"] == "Allow":
            assert statement["Principal"] in allowed


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_dataset_bucket_sends_access_logs_to_the_log_bucket(stage, variants):
    props = _bucket_props(variants[stage], DATASET_BUCKET)
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": ACCESS_LOG_BUCKET},
        "LogFilePrefix": "dataset/",
    }


def test_log_bucket_accepts_log_delivery_only_from_the_dataset_bucket_in_this_account(dev):
    statements = _statements_of(dev, "DatasetAccessLogsPolicy85467F88")
    (delivery,) = [s for s in statements if s["Principal"] == {"Service": "logging.s3.amazonaws.com"}]
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"]["ArnLike"] == {"aws:SourceArn": BUCKET_ARN}
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


@pytest.mark.parametrize(
    ("stage", "tiering_days", "noncurrent_days", "abort_days"),
    [("dev", 0, 7, 1), ("prod", 30, 90, 7)],
)
def test_dataset_lifecycle_per_stage(stage, tiering_days, noncurrent_days, abort_days, variants):
    rules = _bucket_props(variants[stage], DATASET_BUCKET)["LifecycleConfiguration"]["Rules"]
    assert rules == [
        {
            "Id": "intelligent-tiering",
            "Status": "Enabled",
            "Transitions": [{"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": tiering_days}],
        },
        {
            "Id": "expire-noncurrent-versions",
            "Status": "Enabled",
            "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort_days},
        },
    ]


@pytest.mark.parametrize(("stage", "days"), [("dev", 30), ("prod", 365)])
def test_access_logs_expire_per_stage_and_use_sse_s3(stage, days, variants):
    props = _bucket_props(variants[stage], ACCESS_LOG_BUCKET)
    assert props["LifecycleConfiguration"]["Rules"] == [
        {
            "Id": "expire-access-logs",
            "Status": "Enabled",
            "ExpirationInDays": days,
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
    ]
    # S3 server access logging cannot deliver into an SSE-KMS bucket.
    assert props["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert "LoggingConfiguration" not in props


# --- retention per stage --------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", [DATASET_BUCKET, ACCESS_LOG_BUCKET, DATASET_KEY])
def test_prod_retains_buckets_and_key(logical_id, prod):
    resource = prod.raw("data")["Resources"][logical_id]
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("logical_id", [DATASET_BUCKET, ACCESS_LOG_BUCKET, DATASET_KEY])
def test_dev_deletes_buckets_and_key(logical_id, dev):
    assert dev.raw("data")["Resources"][logical_id]["DeletionPolicy"] == "Delete"


def test_dev_empties_both_buckets_on_delete_and_prod_never_does(dev, prod):
    auto_delete = by_type(dev.raw("data"), "Custom::S3AutoDeleteObjects")
    assert sorted(r["Properties"]["BucketName"]["Ref"] for r in auto_delete.values()) == sorted(
        [DATASET_BUCKET, ACCESS_LOG_BUCKET]
    )
    assert by_type(prod.raw("data"), "Custom::S3AutoDeleteObjects") == {}


def test_termination_protection_only_in_prod(dev, prod):
    def protected(synth: Synth) -> bool:
        manifest = json.loads((synth.outdir / "manifest.json").read_text())
        (stack,) = [
            a for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack" and "data" in name
        ]
        return bool(stack["properties"].get("terminationProtection", False))

    assert protected(prod) is True
    assert protected(dev) is False


@pytest.mark.parametrize(("stage", "days"), [("dev", 7), ("prod", 30)])
def test_key_rotates_and_has_stage_pending_window(stage, days, variants):
    variants[stage].template("data").has_resource_properties(
        "AWS::KMS::Key", {"EnableKeyRotation": True, "PendingWindowInDays": days}
    )


# --- read role ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_read_role_trusts_only_configured_services_from_this_account(stage, variants):
    roles = by_type(variants[stage].raw("data"), "AWS::IAM::Role")
    trust = roles["DatasetReaderRole24D6E7AC"]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": ["bedrock.amazonaws.com", "sagemaker.amazonaws.com"]},
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        }
    ]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_read_role_policy_is_exactly_read_under_the_prefix(stage, variants):
    synth = variants[stage]
    template = synth.template("data")
    policies = template.find_resources(
        "AWS::IAM::ManagedPolicy", {"Properties": {"Roles": [{"Ref": Match.any_value()}]}}
    )
    (reader,) = [p for p in policies.values() if p["Properties"]["Roles"] == [{"Ref": "DatasetReaderRole24D6E7AC"}]]
    assert reader["Properties"]["PolicyDocument"]["Statement"] == prefix_statements_json(
        "s3:GetObject", "kms:Decrypt", "datasets/"
    )


def test_read_role_has_no_other_permissions(dev):
    template = dev.raw("data")
    role = template["Resources"]["DatasetReaderRole24D6E7AC"]["Properties"]
    assert "Policies" not in role
    assert "ManagedPolicyArns" not in role
    inline = by_type(template, "AWS::IAM::Policy")
    assert not [p for p in inline.values() if {"Ref": "DatasetReaderRole24D6E7AC"} in p["Properties"]["Roles"]]


def test_read_role_follows_stage_prefix_and_principals(tmp_path_factory):
    stage = dataclasses.replace(
        DEV, dataset_prefix="corpora/v2/", reader_service_principals=("sagemaker.amazonaws.com",)
    )
    synth = synth_deployment(tmp_path_factory, Deployment(stage=stage))
    assert synth.report.passed, synth.report.findings
    template = synth.raw("data")
    trust = template["Resources"]["DatasetReaderRole24D6E7AC"]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    Template.from_json(template).has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {"PolicyDocument": {"Statement": prefix_statements_json("s3:GetObject", "kms:Decrypt", "corpora/v2/")}},
    )


# --- optional deploy-time upload ------------------------------------------------------------------


def test_no_upload_unless_a_source_folder_is_configured(dev, prod):
    for synth in (dev, prod):
        assert by_type(synth.raw("data"), "Custom::CDKBucketDeployment") == {}


def test_upload_copies_the_folder_under_the_prefix_without_pruning(dev_upload):
    (deployment,) = by_type(dev_upload.raw("data"), "Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    assert props["DestinationBucketName"] == {"Ref": DATASET_BUCKET}
    assert props["DestinationBucketKeyPrefix"] == "datasets/"
    assert props["Prune"] is False
    assert props["RetainOnDelete"] is False


def test_upload_handler_policy_is_exact(dev_upload):
    template = dev_upload.raw("data")
    role_id = "DatasetUploadHandlerRole974330EB"
    (policy,) = [
        p
        for p in by_type(template, "AWS::IAM::ManagedPolicy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in statements] == ["ReadAsset", "PrefixObjects", "ListPrefix", "KeyViaS3", "WriteOwnLogs"]
    read_asset, log_statement = statements[0], statements[-1]
    assert read_asset["Action"] == "s3:GetObject"
    # Exactly the one asset object in the bootstrap bucket: no wildcard.
    assert "*" not in json.dumps(read_asset["Resource"]) and json.dumps(read_asset["Resource"]).endswith('.zip"]]}')
    assert statements[1:4] == prefix_statements_json(
        "s3:PutObject", ["kms:Decrypt", "kms:GenerateDataKey"], "datasets/"
    )
    assert log_statement == {
        "Sid": "WriteOwnLogs",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Effect": "Allow",
        "Resource": {"Fn::GetAtt": ["DatasetUploadLogsA79310A4", "Arn"]},
    }
    # The role carries no AWS managed policy and no inline policy: only the one above.
    role = template["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    assert not [
        p for p in by_type(template, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
    ]


def test_upload_handler_is_bounded_and_logs_encrypted(dev_upload):
    template = dev_upload.template("data")
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Role": {"Fn::GetAtt": ["DatasetUploadHandlerRole974330EB", "Arn"]},
            "ReservedConcurrentExecutions": 1,
            "LoggingConfig": {"LogGroup": {"Ref": "DatasetUploadLogsA79310A4"}},
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"KmsKeyId": KEY_ARN, "RetentionInDays": 14})


# --- outputs and attributes -----------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_outputs(stage, variants):
    outputs = variants[stage].raw("data")["Outputs"]
    assert outputs["DatasetBucketName"]["Value"] == {"Ref": DATASET_BUCKET}
    assert outputs["DatasetBucketArn"]["Value"] == BUCKET_ARN
    assert outputs["DatasetReadRoleArn"]["Value"] == {"Fn::GetAtt": ["DatasetReaderRole24D6E7AC", "Arn"]}
    assert outputs["DatasetKeyArn"]["Value"] == KEY_ARN


def test_stacks_are_environment_agnostic_unless_account_and_region_are_given(dev, tmp_path_factory):
    def environment(synth: Synth) -> str:
        manifest = json.loads((synth.outdir / "manifest.json").read_text())
        (env,) = {a["environment"] for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"}
        return str(env)

    assert environment(dev) == "aws://unknown-account/unknown-region"
    pinned = synth_context(tmp_path_factory, stage="prod", account="123456789012", region="eu-west-1")
    assert environment(pinned) == "aws://123456789012/eu-west-1"


def test_other_stacks_receive_the_dataset_as_constructs():
    """Later stacks (ConfigStack) read bucket, key, role and dataset URIs straight from DataStack."""
    app = cdk.App(context=CDK_JSON_CONTEXT, builtin_cloud_formation_validation=False)
    data = DataStack(app, "data", stage=DEV)
    consumer = cdk.Stack(app, "consumer")
    cdk.CfnOutput(consumer, "Uris", value=cdk.Fn.join(",", list(data.dataset_uris)))
    cdk.CfnOutput(consumer, "Role", value=data.read_role.role_arn)
    assert data.dataset_prefix == "datasets/"
    assert isinstance(data.key, kms.Key) and isinstance(data.bucket, s3.Bucket)
    outputs = Template.from_stack(consumer).to_json()["Outputs"]
    uris = json.dumps(outputs["Uris"]["Value"])
    # A cross-stack reference (export/import or stack output, per the app's feature flags), not a copied name.
    assert uris.startswith('{"Fn::Join": ["", ["s3://", {"Fn::') and uris.endswith('"/datasets/"]]}')
    assert "DatasetBucket5A07B7EE" in uris
    assert "DatasetReaderRole24D6E7AC" in json.dumps(outputs["Role"]["Value"])
