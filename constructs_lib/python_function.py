"""A hardened Python Lambda: one package of lambda_src/, arm64, own role with a customer-managed policy,
an encrypted log group with retention, X-Ray tracing and reserved concurrency."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from constructs_lib.defaults import encrypted_log_group
from constructs_lib.nag import LAMBDA_DLQ_RULES, LAMBDA_VPC_RULES, acknowledge
from constructs_lib.retention import retention

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"
# The newest Python runtime: the longest support window (cdk-nag AwsSolutions-L1).
PYTHON_RUNTIME = lambda_.Runtime.PYTHON_3_14


@dataclass(frozen=True, kw_only=True)
class PythonFunctionProps:
    # Folder (Python package) under lambda_src/ holding handler.py with ``lambda_handler``.
    package: str
    description: str
    # Encrypts the log group; the CloudWatch Logs service is granted its use.
    log_key: kms.IKey
    log_retention_days: int
    retain_logs: bool
    timeout: cdk.Duration = field(default_factory=lambda: cdk.Duration.seconds(30))
    memory_size: int = 256
    reserved_concurrency: int = 5
    environment: dict[str, str] = field(default_factory=dict)
    layers: tuple[lambda_.ILayerVersion, ...] = ()

    def __post_init__(self) -> None:
        if (
            not re.fullmatch(r"[a-z][a-z0-9_]*", self.package)
            or not (LAMBDA_SRC / self.package / "handler.py").is_file()
        ):
            raise ValueError(
                "PythonFunctionProps.package must name a folder of lambda_src/ with a handler.py, "
                f"got {self.package!r}."
            )
        if not 1 <= self.reserved_concurrency <= 1000:
            raise ValueError("PythonFunctionProps.reserved_concurrency must be from 1 to 1000.")
        if not 128 <= self.memory_size <= 10240:
            raise ValueError("PythonFunctionProps.memory_size must be from 128 to 10240 MB.")
        retention(self.log_retention_days)


class PythonFunction(Construct):
    """Attributes: ``function``, ``role``, ``policy`` (add permissions here: no inline policies), ``log_group``.

    The role is immutable to CDK grants (they would add an inline policy): add statements to ``policy``,
    e.g. ``fn.policy.add_statements(*parameters.read_statements())``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: PythonFunctionProps) -> None:
        super().__init__(scope, construct_id)

        self.log_group = encrypted_log_group(
            self, "Logs", key=props.log_key, retention_days=props.log_retention_days, retain=props.retain_logs
        )

        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=props.description
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                ),
                iam.PolicyStatement(
                    sid="XRayTracing",
                    actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                    resources=["*"],
                ),
            ],
        )
        acknowledge(
            self.policy,
            "X-Ray trace segments and telemetry have no resource-level permissions; AWS requires "
            "Resource '*' for xray:PutTraceSegments and xray:PutTelemetryRecords.",
            ["AwsSolutions-IAM5[Resource::*]"],
        )

        self.function = lambda_.Function(
            self,
            "Function",
            description=props.description,
            runtime=PYTHON_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            # Only this function's package goes into its asset.
            code=lambda_.Code.from_asset(
                str(LAMBDA_SRC), exclude=["*", f"!{props.package}", f"!{props.package}/**", "**/__pycache__"]
            ),
            handler=f"{props.package}.handler.lambda_handler",
            # The managed policy above is the role's only policy: CDK must not add an inline one.
            role=self.role.without_policy_updates(),
            log_group=self.log_group,
            timeout=props.timeout,
            memory_size=props.memory_size,
            reserved_concurrent_executions=props.reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            environment=props.environment,
            layers=list(props.layers),
        )
        self.function.node.add_dependency(self.policy)

    def acknowledge_dlq_and_vpc(self, *, dlq_reason: str, vpc_reason: str) -> None:
        """Acknowledge the Lambda DLQ and VPC rules on this function, each with the caller's reason."""
        acknowledge(self.function, dlq_reason, LAMBDA_DLQ_RULES)
        acknowledge(self.function, vpc_reason, LAMBDA_VPC_RULES)
