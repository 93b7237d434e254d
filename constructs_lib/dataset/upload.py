"""Upload a local folder under the dataset prefix at deploy time, with a least-privilege handler.

Wraps CDK's BucketDeployment but replaces its default grants (AWS managed policy, ``s3:*Object*`` and
``kms:*`` wildcards on the whole bucket) with one customer-managed policy: read the one asset object,
list and write under the prefix, use the bucket key through S3, write to its own encrypted log group.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from constructs_lib.dataset.prefix_access import prefix_statements
from constructs_lib.dataset.settings import is_prefix
from constructs_lib.foundation.deploy_time_upload import harden_deployment_handlers
from constructs_lib.foundation.logs import encrypted_log_group
from constructs_lib.foundation.nag import acknowledge, nag_ref


@dataclass(frozen=True, kw_only=True)
class DatasetUploadProps:
    bucket: s3.IBucket
    key: kms.IKey
    prefix: str
    source_dir: Path
    retain: bool
    log_retention_days: int

    def __post_init__(self) -> None:
        if not self.source_dir.is_dir():
            raise ValueError(f"DatasetUploadProps.source_dir must be an existing folder, got {str(self.source_dir)!r}.")
        if not is_prefix(self.prefix):
            raise ValueError(f"DatasetUploadProps.prefix must be relative and end in '/', got {self.prefix!r}.")


class DatasetUpload(Construct):
    """Copies ``source_dir`` to ``bucket/prefix`` on every deploy; never deletes other objects there."""

    def __init__(self, scope: Construct, construct_id: str, *, props: DatasetUploadProps) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        asset = s3_assets.Asset(self, "Files", path=str(props.source_dir))

        self.log_group = encrypted_log_group(
            self, "Logs", key=props.key, retention_days=props.log_retention_days, retain=props.retain
        )

        role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Deploy-time copy of the local dataset folder into the dataset prefix",
        )
        policy = iam.ManagedPolicy(
            self,
            "HandlerPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadAsset",
                    actions=["s3:GetObject"],
                    resources=[asset.bucket.arn_for_objects(asset.s3_object_key)],
                ),
                *prefix_statements(
                    props.bucket,
                    props.key,
                    props.prefix,
                    object_actions=["s3:PutObject"],
                    key_actions=["kms:GenerateDataKey", "kms:Decrypt"],
                ),
                iam.PolicyStatement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                ),
            ],
        )
        acknowledge(
            policy,
            "The handler writes the files of the local dataset folder, whose names are only known at "
            "deploy time, so the object ARN ends in the dataset prefix wildcard and nothing wider.",
            [f"AwsSolutions-IAM5[Resource::{nag_ref(props.bucket)}/{props.prefix}*]"],
        )

        deployment = s3_deployment.BucketDeployment(
            self,
            "Deployment",
            destination_bucket=props.bucket,
            destination_key_prefix=props.prefix,
            sources=[s3_deployment.Source.bucket(asset.bucket, asset.s3_object_key)],
            # Our policy above replaces the grants BucketDeployment would add.
            role=role.without_policy_updates(),
            log_group=self.log_group,
            # Objects others put under the prefix survive a redeploy; only these files are written.
            prune=False,
            retain_on_delete=props.retain,
        )
        deployment.node.add_dependency(policy)
        harden_deployment_handlers(stack)
