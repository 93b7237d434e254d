"""A hardened S3 bucket: customer-managed KMS key, TLS only, no public access, versioned, access-logged.

Every data bucket in the platform goes through this construct so the compliant settings live in one place.
By default each SecureBucket makes its own key and access-log bucket; a later bucket may share a key and an
access-log bucket that already exist (``encryption_key``, ``access_log_bucket``) instead of adding its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.foundation.keys import customer_managed_key, removal_policy
from constructs_lib.foundation.nag import acknowledge

_REPLICATION_RULES = (
    "NIST.800.53.R5-S3BucketReplicationEnabled",
    "HIPAA.Security-S3BucketReplicationEnabled",
    "PCI.DSS.321-S3BucketReplicationEnabled",
)
_REPLICATION_REASON = (
    "Cross-region replication needs a destination bucket and KMS key in a second region chosen per "
    "deployment; this env-agnostic stack keeps data recoverable in-region with versioning, a retained "
    "KMS key and RETAIN removal in prod."
)


@dataclass(frozen=True, kw_only=True)
class SecureBucketProps:
    """Settings of a SecureBucket; lifecycle values are in days."""

    # Short lowercase name of what the bucket holds; also the access-log prefix.
    purpose: str
    retain: bool
    auto_delete_objects: bool
    noncurrent_version_expiration_days: int
    intelligent_tiering_transition_days: int
    abort_incomplete_multipart_upload_days: int
    access_log_retention_days: int
    kms_pending_window_days: int = 30
    # S3 Object Lock in governance mode with this default retention; None leaves it off.
    object_lock_days: int | None = None
    # Current objects move to Glacier Instant Retrieval after this many days; None keeps them where they are.
    cold_transition_days: int | None = None
    # An existing key to encrypt with (e.g. another SecureBucket's ``key``); None makes the bucket its own key
    # (and only then does ``kms_pending_window_days`` apply).
    encryption_key: kms.IKey | None = None
    # An existing bucket of this app to receive the server access logs (e.g. another SecureBucket's
    # ``access_log_bucket``); None makes the bucket its own (and only then does ``access_log_retention_days``
    # apply). It gets a bucket-policy statement letting S3 log delivery write this bucket's logs.
    access_log_bucket: s3.IBucket | None = None
    # Where this bucket's access logs go in the log bucket; None: "<purpose>/".
    access_log_prefix: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,40}", self.purpose):
            raise ValueError(
                "SecureBucketProps.purpose must be a short lowercase name such as 'dataset' "
                f"(it prefixes the access logs), got {self.purpose!r}."
            )
        if self.retain and self.auto_delete_objects:
            raise ValueError("SecureBucketProps.auto_delete_objects must be False when retain is True.")
        for name in (
            "noncurrent_version_expiration_days",
            "abort_incomplete_multipart_upload_days",
            "access_log_retention_days",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"SecureBucketProps.{name} must be at least 1 day.")
        if self.intelligent_tiering_transition_days < 0:
            raise ValueError("SecureBucketProps.intelligent_tiering_transition_days must not be negative.")
        if not 7 <= self.kms_pending_window_days <= 30:
            raise ValueError("SecureBucketProps.kms_pending_window_days must be from 7 to 30.")
        if self.access_log_prefix is not None and not re.fullmatch(
            r"[a-z0-9][a-z0-9/-]{0,60}/", self.access_log_prefix
        ):
            raise ValueError(
                "SecureBucketProps.access_log_prefix must be a short lowercase key prefix ending in '/', such as "
                f"'website/', got {self.access_log_prefix!r}."
            )
        self._check_shared_key()
        self._check_shared_log_bucket()

    def _check_shared_key(self) -> None:
        key = self.encryption_key
        if key is None or not self.retain:
            return
        cfn = key.node.default_child
        # An imported key is not deleted with any stack; a key of this app must outlive the data it encrypts.
        if isinstance(cfn, cdk.CfnResource) and cfn.cfn_options.deletion_policy != cdk.CfnDeletionPolicy.RETAIN:
            raise ValueError(
                f"SecureBucketProps.encryption_key {key.node.path} must be retained (RemovalPolicy.RETAIN) when "
                "retain is True: a retained bucket encrypted with a deleted key is unreadable."
            )

    def _check_shared_log_bucket(self) -> None:
        target = self.access_log_bucket
        if target is None:
            return
        if not isinstance(target, s3.Bucket):
            raise ValueError(
                f"SecureBucketProps.access_log_bucket must be a bucket defined in this app (such as another "
                f"SecureBucket's access_log_bucket): S3 log delivery needs a statement in its bucket policy, "
                f"which cannot be added to the imported bucket {target.node.path}."
            )
        cfn = target.node.default_child
        if (
            self.retain
            and isinstance(cfn, cdk.CfnResource)
            and cfn.cfn_options.deletion_policy != (cdk.CfnDeletionPolicy.RETAIN)
        ):
            raise ValueError(
                f"SecureBucketProps.access_log_bucket {target.node.path} must be retained when retain is True: the "
                "retained bucket's access logs would go to a bucket deleted with its stack."
            )
        if target.encryption_key is not None:
            raise ValueError(
                f"SecureBucketProps.access_log_bucket {target.node.path} is encrypted with a KMS key; S3 server "
                "access logging only delivers to buckets encrypted with SSE-S3."
            )


class SecureBucket(Construct):
    """A KMS-encrypted data bucket plus the hardened bucket that receives its server access logs.

    Attributes: ``bucket``, ``key`` (customer-managed, rotated: its own or ``props.encryption_key``),
    ``access_log_bucket`` (its own or ``props.access_log_bucket``).
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: SecureBucketProps) -> None:
        super().__init__(scope, construct_id)
        shared_logs = props.access_log_bucket
        if shared_logs is not None and cdk.Stack.of(shared_logs) is not cdk.Stack.of(self):
            raise ValueError(
                f"SecureBucketProps.access_log_bucket {shared_logs.node.path} must be in the stack of the bucket "
                f"logging to it ({cdk.Stack.of(self).node.path}): across stacks CDK writes the log-delivery "
                "statement without its source-bucket and source-account conditions."
            )
        # Log delivery through a bucket policy, not the legacy LogDeliveryWrite ACL (which BUCKET_OWNER_ENFORCED
        # forbids), whatever feature flags the enclosing app sets.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        removal = removal_policy(props.retain)

        self.key: kms.IKey = props.encryption_key or customer_managed_key(
            self,
            "Key",
            description=f"Encrypts the {props.purpose} bucket",
            retain=props.retain,
            pending_window_days=props.kms_pending_window_days,
        )
        self.access_log_bucket: s3.IBucket = props.access_log_bucket or self._access_log_bucket(props, removal)

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix=props.access_log_prefix or f"{props.purpose}/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="intelligent-tiering",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                            transition_after=cdk.Duration.days(props.intelligent_tiering_transition_days),
                        )
                    ],
                ),
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=cdk.Duration.days(props.noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(
                        props.abort_incomplete_multipart_upload_days
                    ),
                ),
            ],
            removal_policy=removal,
            auto_delete_objects=props.auto_delete_objects,
            object_lock_enabled=props.object_lock_days is not None or None,
            object_lock_default_retention=(
                s3.ObjectLockRetention.governance(cdk.Duration.days(props.object_lock_days))
                if props.object_lock_days is not None
                else None
            ),
        )
        if props.cold_transition_days is not None:
            self.bucket.add_lifecycle_rule(
                id="to-glacier-instant-retrieval",
                transitions=[
                    s3.Transition(
                        storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                        transition_after=cdk.Duration.days(props.cold_transition_days),
                    )
                ],
            )
        acknowledge(self.bucket, _REPLICATION_REASON, _REPLICATION_RULES)

    def _access_log_bucket(self, props: SecureBucketProps, removal: cdk.RemovalPolicy) -> s3.Bucket:
        return log_bucket(self, "AccessLogs", retention_days=props.access_log_retention_days, removal=removal,
                          auto_delete_objects=props.auto_delete_objects)  # fmt: skip


_LOG_ENCRYPTION_REASON = ("S3 server access logging only delivers to buckets encrypted with SSE-S3; SSE-KMS default "
                          "encryption on a log target bucket is not supported by S3.")  # fmt: skip


def log_bucket(scope: Construct, construct_id: str, *, retention_days: int, removal: cdk.RemovalPolicy,
               auto_delete_objects: bool, acl_writers: str | None = None) -> s3.Bucket:  # fmt: skip
    """A hardened bucket that receives logs: SSE-S3 (log delivery cannot write SSE-KMS), no public access, TLS
    1.2 only, versioned, logs expiring after ``retention_days``. ``acl_writers`` names a log writer that needs
    object ACLs (CloudFront's standard logging): ACLs then stay enabled, bucket owner preferred."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=(s3.ObjectOwnership.BUCKET_OWNER_PREFERRED if acl_writers
                          else s3.ObjectOwnership.BUCKET_OWNER_ENFORCED),
        enforce_ssl=True,
        minimum_tls_version=1.2,
        versioned=True,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-access-logs",
                expiration=cdk.Duration.days(retention_days),
                noncurrent_version_expiration=cdk.Duration.days(1),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
            )
        ],
        removal_policy=removal,
        auto_delete_objects=auto_delete_objects,
    )  # fmt: skip
    reason = _LOG_ENCRYPTION_REASON
    if acl_writers:
        reason += f" {acl_writers} writes without KMS parameters too."
    acknowledge(bucket, reason, ["NIST.800.53.R5-S3DefaultEncryptionKMS", "HIPAA.Security-S3DefaultEncryptionKMS",
                                 "PCI.DSS.321-S3DefaultEncryptionKMS"])  # fmt: skip
    acknowledge(bucket, _REPLICATION_REASON, _REPLICATION_RULES)
    return bucket
