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

from stacks.context import Deployment
from stacks.data_stack import DataStack
from stacks.stages import DEV
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth, arn_of, ref, synth_context, synth_deployment
from tests.infra.templates import by_type, logical_id_at

# Construct paths in the data stack.
DATASET_BUCKET = "Dataset/Bucket"
ACCESS_LOG_BUCKET = "Dataset/AccessLogs"
DATASET_KEY = "Dataset/Key"
READ_ROLE = "DatasetReader/Role"
AUTO_DELETE_ROLE = "Custom::S3AutoDeleteObjectsCustomResourceProvider/Role"


def _bucket_props(synth: Synth, path: str) -> dict[str, Any]:
    return synth.properties("data", path)


def _statements_of(synth: Synth, path: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = synth.properties("data", path)["PolicyDocument"]["Statement"]
    return statements


def prefix_statements_json(
    synth: Synth, object_action: str, key_actions: str | list[str], prefix: str
) -> list[dict[str, Any]]:
    """The exact statements granting ``object_action`` under ``prefix`` of the dataset bucket."""
    bucket_arn = arn_of(synth, "data", DATASET_BUCKET)
    key_arn = arn_of(synth, "data", DATASET_KEY)
    return [
        {
            "Sid": "PrefixObjects",
            "Action": object_action,
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [bucket_arn, f"/{prefix}*"]]},
        },
        {
            "Sid": "ListPrefix",
            "Action": "s3:ListBucket",
            "Effect": "Allow",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
        },
        {
            "Sid": "KeyViaS3",
            "Action": key_actions,
            "Effect": "Allow",
            "Resource": key_arn,
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]},
                    "kms:EncryptionContext:aws:s3:arn": bucket_arn,
                }
            },
        },
    ]


# --- dataset bucket -------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_dataset_bucket_is_encrypted_with_the_customer_managed_key_and_bucket_keys(stage, variants):
    key_arn = arn_of(variants[stage], "data", DATASET_KEY)
    variants[stage].template("data").has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
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
    synth = variants[stage]
    policies = by_type(synth.raw("data"), "AWS::S3::BucketPolicy")
    (policy,) = [p for p in policies.values() if p["Properties"]["Bucket"] == ref(synth, "data", bucket)]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    arn = arn_of(synth, "data", bucket)
    both = [arn, {"Fn::Join": ["", [arn, "/*"]]}]
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
        allowed.append({"AWS": arn_of(synth, "data", AUTO_DELETE_ROLE)})
    for statement in statements:
        if statement["Effect"] == "Allow":
            assert statement["Principal"] in allowed


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_dataset_bucket_sends_access_logs_to_the_log_bucket(stage, variants):
    props = _bucket_props(variants[stage], DATASET_BUCKET)
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": ref(variants[stage], "data", ACCESS_LOG_BUCKET),
        "LogFilePrefix": "dataset/",
    }


def test_log_bucket_accepts_log_delivery_only_from_the_dataset_bucket_in_this_account(dev):
    statements = _statements_of(dev, "Dataset/AccessLogs/Policy")
    (delivery,) = [s for s in statements if s["Principal"] == {"Service": "logging.s3.amazonaws.com"}]
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"]["ArnLike"] == {"aws:SourceArn": arn_of(dev, "data", DATASET_BUCKET)}
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


@pytest.mark.parametrize("path", [DATASET_BUCKET, ACCESS_LOG_BUCKET, DATASET_KEY])
def test_prod_retains_buckets_and_key(path, prod):
    resource = prod.resource("data", path)
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("path", [DATASET_BUCKET, ACCESS_LOG_BUCKET, DATASET_KEY])
def test_dev_deletes_buckets_and_key(path, dev):
    assert dev.resource("data", path)["DeletionPolicy"] == "Delete"


def test_dev_empties_both_buckets_on_delete_and_prod_never_does(dev, prod):
    auto_delete = by_type(dev.raw("data"), "Custom::S3AutoDeleteObjects")
    assert sorted(r["Properties"]["BucketName"]["Ref"] for r in auto_delete.values()) == sorted(
        [dev.logical_id("data", DATASET_BUCKET), dev.logical_id("data", ACCESS_LOG_BUCKET)]
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
    trust = roles[variants[stage].logical_id("data", READ_ROLE)]["Properties"]["AssumeRolePolicyDocument"]
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
    (reader,) = [p for p in policies.values() if p["Properties"].get("Roles") == [ref(synth, "data", READ_ROLE)]]
    assert reader["Properties"]["PolicyDocument"]["Statement"] == prefix_statements_json(
        synth, "s3:GetObject", "kms:Decrypt", "datasets/"
    )


def test_read_role_has_no_other_permissions(dev):
    template = dev.raw("data")
    role = dev.properties("data", READ_ROLE)
    assert "Policies" not in role
    assert "ManagedPolicyArns" not in role
    inline = by_type(template, "AWS::IAM::Policy")
    assert not [p for p in inline.values() if ref(dev, "data", READ_ROLE) in p["Properties"]["Roles"]]


def test_read_role_follows_stage_prefix_and_principals(tmp_path_factory):
    stage = dataclasses.replace(
        DEV,
        dataset=dataclasses.replace(
            DEV.dataset, prefix="corpora/v2/", reader_service_principals=("sagemaker.amazonaws.com",)
        ),
    )
    synth = synth_deployment(tmp_path_factory, Deployment(stage=stage))
    assert synth.report.passed, synth.report.findings
    template = synth.raw("data")
    trust = synth.properties("data", READ_ROLE)["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    Template.from_json(template).has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {"PolicyDocument": {"Statement": prefix_statements_json(synth, "s3:GetObject", "kms:Decrypt", "corpora/v2/")}},
    )


# --- optional deploy-time upload ------------------------------------------------------------------


def test_no_upload_unless_a_source_folder_is_configured(dev, prod):
    for synth in (dev, prod):
        assert by_type(synth.raw("data"), "Custom::CDKBucketDeployment") == {}


def test_upload_copies_the_folder_under_the_prefix_without_pruning(dev_upload):
    (deployment,) = by_type(dev_upload.raw("data"), "Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    assert props["DestinationBucketName"] == ref(dev_upload, "data", DATASET_BUCKET)
    assert props["DestinationBucketKeyPrefix"] == "datasets/"
    assert props["Prune"] is False
    assert props["RetainOnDelete"] is False


def test_upload_handler_policy_is_exact(dev_upload):
    template = dev_upload.raw("data")
    role_id = dev_upload.logical_id("data", "DatasetUpload/HandlerRole")
    (policy,) = [
        p
        for p in by_type(template, "AWS::IAM::ManagedPolicy").values()
        if p["Properties"].get("Roles") == [{"Ref": role_id}]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in statements] == ["ReadAsset", "PrefixObjects", "ListPrefix", "KeyViaS3", "WriteOwnLogs"]
    read_asset, log_statement = statements[0], statements[-1]
    assert read_asset["Action"] == "s3:GetObject"
    # Exactly the one asset object in the bootstrap bucket: no wildcard.
    assert "*" not in json.dumps(read_asset["Resource"]) and json.dumps(read_asset["Resource"]).endswith('.zip"]]}')
    assert statements[1:4] == prefix_statements_json(
        dev_upload, "s3:PutObject", ["kms:Decrypt", "kms:GenerateDataKey"], "datasets/"
    )
    assert log_statement == {
        "Sid": "WriteOwnLogs",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Effect": "Allow",
        "Resource": arn_of(dev_upload, "data", "DatasetUpload/Logs"),
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
            "Role": arn_of(dev_upload, "data", "DatasetUpload/HandlerRole"),
            "ReservedConcurrentExecutions": 1,
            "LoggingConfig": {"LogGroup": ref(dev_upload, "data", "DatasetUpload/Logs")},
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"KmsKeyId": arn_of(dev_upload, "data", DATASET_KEY), "RetentionInDays": 14}
    )


# --- outputs and attributes -----------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_outputs(stage, variants):
    synth = variants[stage]
    outputs = synth.raw("data")["Outputs"]
    assert outputs["DatasetBucketName"]["Value"] == ref(synth, "data", DATASET_BUCKET)
    assert outputs["DatasetBucketArn"]["Value"] == arn_of(synth, "data", DATASET_BUCKET)
    assert outputs["DatasetReadRoleArn"]["Value"] == arn_of(synth, "data", READ_ROLE)
    assert outputs["DatasetKeyArn"]["Value"] == arn_of(synth, "data", DATASET_KEY)


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
    data_template = dict(Template.from_stack(data).to_json())
    # A cross-stack reference (export/import or stack output, per the app's feature flags), not a copied name.
    assert uris.startswith('{"Fn::Join": ["", ["s3://", {"Fn::') and uris.endswith('"/datasets/"]]}')
    assert logical_id_at(data_template, f"data/{DATASET_BUCKET}") in uris
    assert logical_id_at(data_template, f"data/{READ_ROLE}") in json.dumps(outputs["Role"]["Value"])
