"""IAM statements for access to one key prefix of a KMS-encrypted bucket, shared by the dataset roles."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.foundation.nag import acknowledge, nag_ref


def prefix_statements(
    bucket: s3.IBucket,
    key: kms.IKey,
    prefix: str,
    *,
    object_actions: Sequence[str],
    key_actions: Sequence[str],
) -> list[iam.PolicyStatement]:
    """``object_actions`` on objects under ``prefix``, listing limited to it, the bucket key only via S3.

    Sids: ``PrefixObjects``, ``ListPrefix``, ``KeyViaS3``.
    """
    objects, key_via_s3 = object_statements(bucket, key, prefix, object_actions=object_actions,
                                            key_actions=key_actions)  # fmt: skip
    return [objects, list_statement(bucket, prefix), key_via_s3]


def list_statement(bucket: s3.IBucket, prefix: str) -> iam.PolicyStatement:
    """Listing the bucket limited to ``prefix`` (sid ``ListPrefix``)."""
    return iam.PolicyStatement(
        sid="ListPrefix",
        actions=["s3:ListBucket"],
        resources=[bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
    )


def object_statements(
    bucket: s3.IBucket, key: kms.IKey, prefix: str, *, object_actions: Sequence[str], key_actions: Sequence[str]
) -> list[iam.PolicyStatement]:
    """``object_actions`` on objects under ``prefix`` and the bucket key only via S3, for this bucket
    (sids ``PrefixObjects``, ``KeyViaS3``)."""
    region = cdk.Stack.of(bucket).region
    return [
        iam.PolicyStatement(
            sid="PrefixObjects",
            actions=list(object_actions),
            resources=[bucket.arn_for_objects(f"{prefix}*")],
        ),
        iam.PolicyStatement(
            sid="KeyViaS3",
            actions=list(key_actions),
            resources=[key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": f"s3.{region}.amazonaws.com",
                    # With S3 bucket keys the encryption context is the bucket ARN.
                    "kms:EncryptionContext:aws:s3:arn": bucket.bucket_arn,
                }
            },
        ),
    ]


class PrefixPolicies(Construct):
    """Two customer-managed policies on one prefix, made beside the bucket so another stack's roles can attach
    them (its own grant would reference the bucket across stacks): ``list_policy`` lists the prefix,
    ``read_policy`` reads its objects."""

    def __init__(self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, key: kms.IKey, prefix: str,
                 purpose: str) -> None:  # fmt: skip
        super().__init__(scope, construct_id)
        self.list_policy = iam.ManagedPolicy(
            self, "ListPolicy", statements=[list_statement(bucket, prefix)], description=f"List {prefix} ({purpose})"
        )
        self.read_policy = iam.ManagedPolicy(
            self,
            "ReadPolicy",
            statements=object_statements(
                bucket, key, prefix, object_actions=["s3:GetObject"], key_actions=["kms:Decrypt"]
            ),
            description=f"Read objects under {prefix} ({purpose})",
        )
        acknowledge(
            self.read_policy,
            f"The {purpose} reads every object under its prefix; object keys are not known at deploy time, so "
            "the object ARN ends in the prefix wildcard and nothing wider.",
            [f"AwsSolutions-IAM5[Resource::{nag_ref(bucket)}/{prefix}*]"],
        )
