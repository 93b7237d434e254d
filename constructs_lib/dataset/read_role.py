"""An IAM role that named AWS ML services assume to read one prefix of a dataset bucket, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.dataset.prefix_access import prefix_statements
from constructs_lib.dataset.settings import SERVICE_PRINCIPAL, is_prefix
from constructs_lib.foundation.nag import acknowledge, nag_ref


@dataclass(frozen=True, kw_only=True)
class DatasetReadRoleProps:
    bucket: s3.IBucket
    key: kms.IKey
    # Relative key prefix ending in '/', e.g. "datasets/".
    prefix: str
    service_principals: tuple[str, ...]

    def __post_init__(self) -> None:
        if not is_prefix(self.prefix):
            raise ValueError(
                f"DatasetReadRoleProps.prefix must be a relative key prefix ending in '/' without "
                f"wildcards, got {self.prefix!r}."
            )
        if not self.service_principals or not all(SERVICE_PRINCIPAL.match(p) for p in self.service_principals):
            raise ValueError(
                "DatasetReadRoleProps.service_principals must name at least one AWS service principal "
                f"such as 'sagemaker.amazonaws.com', got {self.service_principals!r}."
            )


class DatasetReadRole(Construct):
    """Read-only access to ``bucket/prefix*`` for the given service principals.

    Trust is limited to this account (``aws:SourceAccount``) to prevent the confused-deputy problem.
    Permissions: ``s3:GetObject`` on objects under the prefix, ``s3:ListBucket`` restricted to the prefix,
    ``kms:Decrypt`` on the bucket key only when called through S3 for this bucket. Attribute: ``role``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: DatasetReadRoleProps) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        self.role = iam.Role(
            self,
            "Role",
            description=f"Read-only access for ML services to s3 prefix {props.prefix}",
            assumed_by=iam.CompositePrincipal(
                *(iam.ServicePrincipal(p) for p in props.service_principals)
            ).with_conditions({"StringEquals": {"aws:SourceAccount": stack.account}}),
            max_session_duration=cdk.Duration.hours(1),
        )

        # A customer-managed policy rather than an inline one (NIST/HIPAA/PCI IAMNoInlinePolicy).
        self.policy = iam.ManagedPolicy(
            self,
            "ReadPolicy",
            description=f"Read objects under {props.prefix} of the dataset bucket",
            roles=[self.role],
            statements=prefix_statements(
                props.bucket, props.key, props.prefix, object_actions=["s3:GetObject"], key_actions=["kms:Decrypt"]
            ),
        )
        acknowledge(
            self.policy,
            "Reading a dataset means reading every object under its prefix; object keys are not known "
            "at deploy time, so the object ARN ends in the prefix wildcard and nothing wider.",
            [f"AwsSolutions-IAM5[Resource::{nag_ref(props.bucket)}/{props.prefix}*]"],
        )
