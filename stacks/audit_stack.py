"""AuditStack: every inference recorded in a tamper-resistant, Athena-queryable audit log."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.audit.audit_log import AuditLog, AuditLogProps
from stacks.base import PlatformStack
from stacks.stages import StageConfig


class AuditStack(PlatformStack):
    """Audit bucket (Object Lock), Firehose -> Parquet, Glue table, Athena workgroup, auditor policy.

    Attribute: ``audit`` (AuditLog): ``grant_write(fn)`` for functions that record inferences.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: StageConfig, env: cdk.Environment | None = None
    ) -> None:
        super().__init__(scope, construct_id, stage=stage, purpose="inference audit log (S3, Glue, Athena)", env=env)
        config = stage.audit
        # Locked records outlive the stack in every stage: nothing, not even `cdk destroy`, may delete them early.
        data = self.secure_bucket(
            "AuditData",
            purpose="audit",
            retain=True,
            object_lock_days=config.object_lock_days,
            cold_transition_days=config.cold_transition_days,
        )
        results = self.secure_bucket("QueryResults", purpose="athena-results")
        self.audit = AuditLog(
            self,
            "AuditLog",
            props=AuditLogProps(
                stage_name=stage.name,
                data=data,
                results=results,
                buffer_seconds=config.buffer_seconds,
                bytes_scanned_cutoff=config.athena_bytes_scanned_cutoff,
                log_retention_days=stage.log_retention_days,
                retain_logs=stage.retain_data,
            ),
        )
        cdk.CfnOutput(self, "AuditBucketName", value=data.bucket.bucket_name)
        cdk.CfnOutput(self, "AuditStreamName", value=self.audit.stream.delivery_stream_name)
        cdk.CfnOutput(self, "AthenaWorkGroup", value=self.audit.workgroup_name)
        cdk.CfnOutput(self, "AuditorPolicyArn", value=self.audit.auditor_policy.managed_policy_arn,
                      description="Attach to the roles of people who may query the audit log")  # fmt: skip
