"""What every stack of the platform shares: its description, the stage's termination protection, and the
stage's lifecycle settings for the buckets it creates."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.foundation.keys import customer_managed_key
from constructs_lib.foundation.secure_bucket import SecureBucket, SecureBucketProps
from stacks.stages import StageConfig


class PlatformStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, stage: StageConfig, purpose: str, env: cdk.Environment | None
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=f"LLM platform ({stage.name}): {purpose}",
            termination_protection=stage.termination_protection,
        )
        self.stage = stage

    def stage_key(self, construct_id: str, *, description: str) -> kms.Key:
        """A customer-managed key with the stage's retention and deletion window."""
        return customer_managed_key(self, construct_id, description=description, retain=self.stage.retain_data,
                                    pending_window_days=self.stage.kms_pending_window_days)  # fmt: skip

    def secure_bucket(
        self,
        construct_id: str,
        *,
        purpose: str,
        retain: bool | None = None,
        object_lock_days: int | None = None,
        cold_transition_days: int | None = None,
        encryption_key: kms.IKey | None = None,
        access_log_bucket: s3.IBucket | None = None,
    ) -> SecureBucket:
        """A SecureBucket with the stage's lifecycle; kept on deletion per the stage unless ``retain`` says.

        ``encryption_key`` and ``access_log_bucket`` share what another SecureBucket already made (for example
        ``other.key`` and ``other.access_log_bucket``) instead of adding a key and a log bucket of its own.
        """
        stage = self.stage
        keep = stage.retain_data if retain is None else retain
        return SecureBucket(
            self,
            construct_id,
            props=SecureBucketProps(
                purpose=purpose,
                retain=keep,
                auto_delete_objects=stage.auto_delete_objects and not keep,
                noncurrent_version_expiration_days=stage.noncurrent_version_expiration_days,
                intelligent_tiering_transition_days=stage.intelligent_tiering_transition_days,
                abort_incomplete_multipart_upload_days=stage.abort_incomplete_multipart_upload_days,
                access_log_retention_days=stage.access_log_retention_days,
                kms_pending_window_days=stage.kms_pending_window_days,
                object_lock_days=object_lock_days,
                cold_transition_days=cold_transition_days,
                encryption_key=encryption_key,
                access_log_bucket=access_log_bucket,
            ),
        )
