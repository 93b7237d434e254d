"""DataStack: the dataset bucket LLM workloads read from, and the role ML services assume to read it."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.dataset_read_role import DatasetReadRole, DatasetReadRoleProps
from constructs_lib.dataset_upload import DatasetUpload, DatasetUploadProps
from constructs_lib.secure_bucket import SecureBucket, SecureBucketProps
from stacks.base import PlatformStack
from stacks.stages import ConfigError, StageConfig


class DataStack(PlatformStack):
    """Dataset bucket (SecureBucket) + DatasetReadRole, with an optional deploy-time upload.

    Exposed for other stacks: ``bucket``, ``key``, ``read_role``, ``dataset_prefix`` and
    ``dataset_uris`` (``s3://`` URIs of the dataset prefix).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: StageConfig, env: cdk.Environment | None = None
    ) -> None:
        super().__init__(scope, construct_id, stage=stage, purpose="dataset bucket and ML read role", env=env)
        data = SecureBucket(
            self,
            "Dataset",
            props=SecureBucketProps(
                purpose="dataset",
                retain=stage.retain_data,
                auto_delete_objects=stage.auto_delete_objects,
                noncurrent_version_expiration_days=stage.noncurrent_version_expiration_days,
                intelligent_tiering_transition_days=stage.intelligent_tiering_transition_days,
                abort_incomplete_multipart_upload_days=stage.abort_incomplete_multipart_upload_days,
                access_log_retention_days=stage.access_log_retention_days,
                kms_pending_window_days=stage.kms_pending_window_days,
            ),
        )
        self.bucket = data.bucket
        self.key = data.key
        self.dataset_prefix = stage.dataset_prefix
        self.dataset_uris: tuple[str, ...] = (f"s3://{self.bucket.bucket_name}/{stage.dataset_prefix}",)

        self.read_role = DatasetReadRole(
            self,
            "DatasetReader",
            props=DatasetReadRoleProps(
                bucket=self.bucket,
                key=self.key,
                prefix=stage.dataset_prefix,
                service_principals=stage.reader_service_principals,
            ),
        ).role

        if stage.dataset_source_dir is not None:
            source = Path(stage.dataset_source_dir)
            if not source.is_dir():
                raise ConfigError(
                    f"Stage '{stage.name}': dataset_source_dir must name an existing folder (got {str(source)!r})."
                )
            DatasetUpload(
                self,
                "DatasetUpload",
                props=DatasetUploadProps(
                    bucket=self.bucket,
                    key=self.key,
                    prefix=stage.dataset_prefix,
                    source_dir=source,
                    retain=stage.retain_data,
                    log_retention_days=stage.log_retention_days,
                ),
            )

        cdk.CfnOutput(self, "DatasetBucketName", value=self.bucket.bucket_name, description="Dataset bucket name")
        cdk.CfnOutput(self, "DatasetBucketArn", value=self.bucket.bucket_arn, description="Dataset bucket ARN")
        cdk.CfnOutput(
            self,
            "DatasetReadRoleArn",
            value=self.read_role.role_arn,
            description="Role ML services assume to read the dataset prefix",
        )
        cdk.CfnOutput(
            self, "DatasetKeyArn", value=self.key.key_arn, description="KMS key encrypting the dataset bucket"
        )
