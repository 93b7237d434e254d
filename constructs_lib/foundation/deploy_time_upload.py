"""Files written into a bucket at deploy time (CDK's BucketDeployment) with least privilege: one role per stack
and bucket whose customer-managed policy reads exactly the source assets and writes exactly the named objects,
with the bucket key used only through S3 and logs in an encrypted log group of its own.

BucketDeployment's own grants (an AWS managed policy, ``s3:*Object*`` and ``kms:*`` on the whole bucket) are
replaced: the role is handed over ``without_policy_updates``. Its singleton handler, shared by every
deployment of a stack, gets the settings BucketDeployment does not expose (``harden_deployment_handlers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from constructs_lib.foundation.logs import encrypted_log_group
from constructs_lib.foundation.nag import LAMBDA_DLQ_RULES, LAMBDA_VPC_RULES, acknowledge

HANDLER_ID_PREFIX = "Custom::CDKBucketDeployment"


@dataclass(frozen=True, kw_only=True)
class DeployTimeUploadProps:
    bucket: s3.IBucket
    # The bucket's encryption key.
    key: kms.IKey
    # Encrypts the handler's log group.
    log_key: kms.IKey
    # What is uploaded, for the role's description (e.g. "the web app's files").
    purpose: str
    retain: bool
    log_retention_days: int


class DeployTimeUpload(Construct):
    """Attributes: ``role``, ``policy`` (the role's one managed policy), ``log_group``. ``add`` makes each
    deployment."""

    def __init__(self, scope: Construct, construct_id: str, *, props: DeployTimeUploadProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        bucket = props.bucket
        region = cdk.Stack.of(self).region
        self.log_group = encrypted_log_group(self, "Logs", key=props.log_key, retention_days=props.log_retention_days,
                                             retain=props.retain)  # fmt: skip
        self.role = iam.Role(self, "HandlerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"Deploy-time upload of {props.purpose}")  # fmt: skip
        self.policy = iam.ManagedPolicy(
            self,
            "HandlerPolicy",
            roles=[self.role],
            statements=[
                # `aws s3 sync` lists the destination to compare; the keys it then writes are named below.
                iam.PolicyStatement(sid="ListDestination", actions=["s3:ListBucket"], resources=[bucket.bucket_arn]),
                iam.PolicyStatement(
                    sid="KeyViaS3",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[props.key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com",
                                                 "kms:EncryptionContext:aws:s3:arn": bucket.bucket_arn}},
                ),
                iam.PolicyStatement(sid="WriteOwnLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                    resources=[self.log_group.log_group_arn]),
            ],
        )  # fmt: skip
        self._count = 0

    def add(self, construct_id: str, *, sources: Sequence[s3_deployment.ISource], object_keys: Sequence[str],
            cache_control: str, prefix: str = "",
            after: Sequence[Construct] = ()) -> s3_deployment.BucketDeployment:  # fmt: skip
        """A deployment of ``sources`` to ``prefix``, which must write exactly ``object_keys`` (full keys) with
        ``cache_control``; objects already there stay (no pruning: a page still open keeps its assets)."""
        if not object_keys or any(not key.startswith(prefix) for key in object_keys):
            raise ValueError(f"DeployTimeUpload.add({construct_id!r}) needs object_keys under {prefix!r}.")
        self._count += 1
        deployment = s3_deployment.BucketDeployment(
            self,
            construct_id,
            destination_bucket=self.props.bucket,
            destination_key_prefix=prefix or None,
            sources=list(sources),
            role=self.role.without_policy_updates(),
            log_group=self.log_group,
            prune=False,
            retain_on_delete=True,
            cache_control=[s3_deployment.CacheControl.from_string(cache_control)],
        )
        assets = [child for child in deployment.node.children if isinstance(child, s3_assets.Asset)]
        self.policy.add_statements(
            iam.PolicyStatement(sid=f"ReadSources{self._count}", actions=["s3:GetObject"],
                                resources=[a.bucket.arn_for_objects(a.s3_object_key) for a in assets]),
            iam.PolicyStatement(sid=f"WriteObjects{self._count}", actions=["s3:PutObject"],
                                resources=[self.props.bucket.arn_for_objects(key) for key in object_keys]),
        )  # fmt: skip
        deployment.node.add_dependency(self.policy, *after)
        harden_deployment_handlers(cdk.Stack.of(self))
        return deployment


def harden_deployment_handlers(stack: cdk.Stack) -> None:
    """Settings BucketDeployment does not expose, on each of the stack's singleton handler functions."""
    handlers = [c for c in stack.node.children if c.node.id.startswith(HANDLER_ID_PREFIX)]
    if not handlers or not all(isinstance(h.node.default_child, lambda_.CfnFunction) for h in handlers):
        raise RuntimeError("BucketDeployment handler function not found; the CDK internals changed.")
    for handler in handlers:
        function = handler.node.default_child
        if not isinstance(function, lambda_.CfnFunction) or function.reserved_concurrent_executions == 1:
            continue  # hardened by an earlier deployment of this stack
        # One deployment at a time is all a deploy-time copy needs, and it cannot starve other functions.
        function.reserved_concurrent_executions = 1
        acknowledge(
            function,
            "CloudFormation invokes this deploy-time handler synchronously and records any failure in "
            "the stack events, so a dead-letter queue would never receive anything.",
            LAMBDA_DLQ_RULES,
        )
        acknowledge(
            function,
            "The handler only talks to S3 and CloudWatch Logs during a deploy; this stack has no VPC, and "
            "adding one with endpoints for a deploy-time copy adds cost without reducing exposure.",
            LAMBDA_VPC_RULES,
        )
        acknowledge(
            function,
            "CDK pins the runtime of its BucketDeployment handler to the version its bundled AWS CLI "
            "layer is tested with; overriding it would run untested code during deploys.",
            ["AwsSolutions-L1", "Serverless-LambdaLatestVersion"],
        )
        acknowledge(
            function,
            "A deploy-time copy has no request path to trace; its outcome and logs are in the stack events "
            "and in its own encrypted log group.",
            ["Serverless-LambdaTracing"],
        )
