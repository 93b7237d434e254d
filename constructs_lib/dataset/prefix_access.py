"""IAM statements for access to one key prefix of a KMS-encrypted bucket, shared by the dataset roles."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3


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
    region = cdk.Stack.of(bucket).region
    return [
        iam.PolicyStatement(
            sid="PrefixObjects",
            actions=list(object_actions),
            resources=[bucket.arn_for_objects(f"{prefix}*")],
        ),
        iam.PolicyStatement(
            sid="ListPrefix",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
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
