"""SecureBucket with a key and an access-log bucket that already exist: nothing new is made, grants and log
delivery still work, and combinations that cannot work fail with a sentence naming the field."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs_lib.foundation.keys import customer_managed_key
from constructs_lib.foundation.secure_bucket import SecureBucket, SecureBucketProps
from tests.infra.conftest import CDK_JSON_CONTEXT
from tests.infra.templates import by_type, logical_id_at

PROPS = SecureBucketProps(
    purpose="first",
    retain=False,
    auto_delete_objects=False,
    noncurrent_version_expiration_days=7,
    intelligent_tiering_transition_days=0,
    abort_incomplete_multipart_upload_days=1,
    access_log_retention_days=30,
)


def _synth(build: Any) -> dict[str, Any]:
    app = cdk.App(context=CDK_JSON_CONTEXT)
    stack = cdk.Stack(app, "buckets")
    build(stack)
    return dict(app.synth().get_stack_by_name("buckets").template)


def _sharing(stack: cdk.Stack) -> None:
    first = SecureBucket(stack, "First", props=PROPS)
    second = SecureBucket(
        stack,
        "Second",
        props=dataclasses.replace(
            PROPS, purpose="second", encryption_key=first.key, access_log_bucket=first.access_log_bucket
        ),
    )
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    second.bucket.grant_read(reader)


@pytest.fixture(scope="module")
def shared() -> dict[str, Any]:
    return _synth(_sharing)


def test_the_default_makes_one_key_and_one_log_bucket_per_secure_bucket():
    template = _synth(lambda stack: SecureBucket(stack, "First", props=PROPS))
    assert len(by_type(template, "AWS::KMS::Key")) == 1
    assert len(by_type(template, "AWS::S3::Bucket")) == 2


def test_a_bucket_with_an_existing_key_uses_it_and_creates_no_key(shared):
    assert len(by_type(shared, "AWS::KMS::Key")) == 1
    key_arn = {"Fn::GetAtt": [logical_id_at(shared, "buckets/First/Key"), "Arn"]}
    second = shared["Resources"][logical_id_at(shared, "buckets/Second/Bucket")]["Properties"]
    (rule,) = second["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    # A grant on the second bucket reaches the shared key.
    (policy,) = by_type(shared, "AWS::IAM::Policy").values()
    assert key_arn in [s["Resource"] for s in policy["Properties"]["PolicyDocument"]["Statement"]]


def test_a_bucket_with_an_existing_log_bucket_creates_no_second_one_and_may_deliver_to_it(shared):
    assert len(by_type(shared, "AWS::S3::Bucket")) == 3  # two data buckets, one access-log bucket
    log_bucket = logical_id_at(shared, "buckets/First/AccessLogs")
    second = shared["Resources"][logical_id_at(shared, "buckets/Second/Bucket")]["Properties"]
    assert second["LoggingConfiguration"] == {"DestinationBucketName": {"Ref": log_bucket}, "LogFilePrefix": "second/"}
    policy = shared["Resources"][logical_id_at(shared, "buckets/First/AccessLogs/Policy")]["Properties"]
    sources = {
        json.dumps(s["Condition"]["ArnLike"]["aws:SourceArn"])
        for s in policy["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
    }
    assert sources == {
        json.dumps({"Fn::GetAtt": [logical_id_at(shared, f"buckets/{name}/Bucket"), "Arn"]})
        for name in ("First", "Second")
    }


def test_an_imported_log_bucket_is_refused_naming_the_field():
    stack = cdk.Stack(cdk.App(), "imported")
    imported = s3.Bucket.from_bucket_name(stack, "Logs", "someone-elses-logs")
    with pytest.raises(ValueError, match=r"SecureBucketProps\.access_log_bucket must be a bucket defined in this app"):
        dataclasses.replace(PROPS, access_log_bucket=imported)


def test_a_kms_encrypted_log_bucket_is_refused_naming_the_field():
    stack = cdk.Stack(cdk.App(), "kms-logs")
    encrypted = s3.Bucket(stack, "Logs", encryption_key=kms.Key(stack, "Key"))
    with pytest.raises(ValueError, match=r"SecureBucketProps\.access_log_bucket .* only delivers to .* SSE-S3"):
        dataclasses.replace(PROPS, access_log_bucket=encrypted)


def test_a_retained_bucket_refuses_a_key_deleted_with_the_stack_naming_the_field():
    stack = cdk.Stack(cdk.App(), "keys")
    deleted = customer_managed_key(stack, "Deleted", description="deleted with the stack", retain=False)
    retained = customer_managed_key(stack, "Retained", description="kept", retain=True)
    with pytest.raises(ValueError, match=r"SecureBucketProps\.encryption_key .* must be retained"):
        dataclasses.replace(PROPS, retain=True, encryption_key=deleted)
    dataclasses.replace(PROPS, retain=True, encryption_key=retained)
    dataclasses.replace(PROPS, retain=False, encryption_key=deleted)


def test_a_log_bucket_of_another_stack_is_refused_naming_the_field():
    """Across stacks CDK drops aws:SourceArn/aws:SourceAccount from the log-delivery statement (any bucket of
    any account could then write under the prefix): refused rather than weakened."""
    app = cdk.App(context=CDK_JSON_CONTEXT)
    first = SecureBucket(cdk.Stack(app, "data"), "First", props=PROPS)
    with pytest.raises(ValueError, match=r"SecureBucketProps\.access_log_bucket .* must be in the stack of the bucket"):
        SecureBucket(cdk.Stack(app, "site"), "Site", props=dataclasses.replace(
            PROPS, purpose="site", access_log_bucket=first.access_log_bucket))  # fmt: skip


def test_a_retained_bucket_refuses_a_log_bucket_deleted_with_the_stack_naming_the_field():
    stack = cdk.Stack(cdk.App(), "logs")
    deleted = SecureBucket(stack, "Deleted", props=PROPS)
    kept = SecureBucket(stack, "Kept", props=dataclasses.replace(PROPS, purpose="kept", retain=True))
    with pytest.raises(ValueError, match=r"SecureBucketProps\.access_log_bucket .* must be retained"):
        dataclasses.replace(PROPS, retain=True, access_log_bucket=deleted.access_log_bucket)
    dataclasses.replace(PROPS, retain=True, access_log_bucket=kept.access_log_bucket)


@pytest.mark.parametrize("prefix", ["", "Site/", "site", "/site/"])
def test_a_bad_access_log_prefix_is_refused_naming_the_field(prefix):
    with pytest.raises(ValueError, match=r"SecureBucketProps\.access_log_prefix must be"):
        dataclasses.replace(PROPS, access_log_prefix=prefix)
