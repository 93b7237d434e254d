"""DataStack: the dataset bucket LLM workloads read from, and the role ML services assume to read it."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.dataset.prefix_access import PrefixPolicies
from constructs_lib.dataset.read_role import DatasetReadRole, DatasetReadRoleProps
from constructs_lib.dataset.upload import DatasetUpload, DatasetUploadProps
from constructs_lib.foundation.settings import ConfigError
from stacks.base import PlatformStack
from stacks.stages import StageConfig


class DataStack(PlatformStack):
    """Dataset bucket (SecureBucket) + DatasetReadRole, with an optional deploy-time upload.

    Exposed for other stacks: ``bucket``, ``key``, ``read_role``, ``dataset_prefix`` and
    ``dataset_uris`` (``s3://`` URIs of the dataset prefix), ``knowledge_access`` (PrefixPolicies of the
    knowledge prefix).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: StageConfig, env: cdk.Environment | None = None
    ) -> None:
        super().__init__(scope, construct_id, stage=stage, purpose="dataset bucket and ML read role", env=env)
        settings = stage.dataset
        data = self.secure_bucket("Dataset", purpose="dataset")
        self.bucket = data.bucket
        self.key = data.key
        self.dataset_prefix = settings.prefix
        self.dataset_uris: tuple[str, ...] = (f"s3://{self.bucket.bucket_name}/{settings.prefix}",)

        self.read_role = DatasetReadRole(
            self,
            "DatasetReader",
            props=DatasetReadRoleProps(
                bucket=self.bucket,
                key=self.key,
                prefix=settings.prefix,
                service_principals=settings.reader_service_principals,
            ),
        ).role

        # What the knowledge pipeline (KnowledgeStack) attaches to its functions: listing and reading that prefix.
        self.knowledge_access = PrefixPolicies(self, "KnowledgeAccess", bucket=self.bucket, key=self.key,
                                               prefix=stage.knowledge.prefix, purpose="knowledge pipeline")  # fmt: skip

        if settings.source_dir is not None:
            source = Path(settings.source_dir)
            if not source.is_dir():
                raise ConfigError(
                    f"Stage '{stage.name}': dataset.source_dir must name an existing folder (got {str(source)!r})."
                )
            DatasetUpload(
                self,
                "DatasetUpload",
                props=DatasetUploadProps(
                    bucket=self.bucket,
                    key=self.key,
                    prefix=settings.prefix,
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
