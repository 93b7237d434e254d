"""A hardened Python Lambda: one package of lambda_src/ (with lambda_src/shared and the contracts), arm64,
its own role with one customer-managed policy, an encrypted log group with retention, X-Ray tracing and
reserved concurrency.

CDK's grants work on it as anywhere else (``table.grant_read_write_data(fn)``, ``secret.grant_read(fn)``,
``stream.grant_put_records(fn)``): the role routes every statement a grant adds into the function's
managed policy instead of an inline default policy, so the strict shape (no inline policies, cdk-nag
IAMNoInlinePolicy) is kept without a private statement protocol.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from constructs_lib.foundation.logs import encrypted_log_group, retention
from constructs_lib.foundation.nag import LAMBDA_DLQ_RULES, LAMBDA_VPC_RULES, acknowledge
from constructs_lib.foundation.staging import package_files, staged

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_SRC = ROOT / "lambda_src"
# Bundled into every function beside its own package.
SHARED_PACKAGES = ("shared", "contracts")
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
    # The entry point in the package's handler.py (one package may serve several functions).
    handler: str = "lambda_handler"

    def __post_init__(self) -> None:
        if (
            not re.fullmatch(r"[a-z][a-z0-9_]*", self.package)
            or self.package in SHARED_PACKAGES
            or not (LAMBDA_SRC / self.package / "handler.py").is_file()
        ):
            raise ValueError(
                "PythonFunctionProps.package must name a function folder of lambda_src/ with a handler.py, "
                f"got {self.package!r}."
            )
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.handler):
            raise ValueError(f"PythonFunctionProps.handler must be a function name, got {self.handler!r}.")
        if not 1 <= self.reserved_concurrency <= 1000:
            raise ValueError("PythonFunctionProps.reserved_concurrency must be from 1 to 1000.")
        if not 128 <= self.memory_size <= 10240:
            raise ValueError("PythonFunctionProps.memory_size must be from 128 to 10240 MB.")
        retention(self.log_retention_days)


class ManagedPolicyRole(iam.Role):
    """An IAM role whose added permissions (grants, ``add_to_policy``) all go into one customer-managed policy."""

    def __init__(self, scope: Construct, construct_id: str, *, policy_id: str, description: str,
                 assumed_by: iam.IPrincipal) -> None:  # fmt: skip
        super().__init__(scope, construct_id, assumed_by=assumed_by, description=description)
        self.policy = iam.ManagedPolicy(scope, policy_id, roles=[self])

    def add_to_principal_policy(self, statement: iam.PolicyStatement) -> iam.AddToPrincipalPolicyResult:
        # CDK's Role.addToPolicy and every grant call this (jsii dispatches to the Python override).
        self.policy.add_statements(statement)
        return iam.AddToPrincipalPolicyResult(statement_added=True, policy_dependable=self.policy)


@jsii.implements(iam.IGrantable)
class PythonFunction(Construct):
    """Attributes: ``function``, ``role`` (a ManagedPolicyRole), ``policy`` (its managed policy), ``log_group``.

    Grant to the construct itself (it is IGrantable) or to ``function``; both land in ``policy``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: PythonFunctionProps) -> None:
        super().__init__(scope, construct_id)

        self.log_group = encrypted_log_group(
            self, "Logs", key=props.log_key, retention_days=props.log_retention_days, retain=props.retain_logs
        )
        self.role = ManagedPolicyRole(
            self,
            "Role",
            policy_id="Policy",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=props.description,
        )
        self.policy = self.role.policy
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description=props.description,
            runtime=PYTHON_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            code=lambda_.Code.from_asset(str(stage_package(props.package))),
            handler=f"lambda_src.{props.package}.handler.{props.handler}",
            role=self.role,
            log_group=self.log_group,
            timeout=props.timeout,
            memory_size=props.memory_size,
            reserved_concurrent_executions=props.reserved_concurrency,
            # X-Ray: CDK grants the role the trace permissions (they land in the managed policy too).
            tracing=lambda_.Tracing.ACTIVE,
            environment=props.environment,
            layers=list(props.layers),
        )
        self.function.node.add_dependency(self.policy)
        acknowledge(
            self.policy,
            "X-Ray trace segments and telemetry have no resource-level permissions; AWS requires "
            "Resource '*' for xray:PutTraceSegments and xray:PutTelemetryRecords.",
            ["AwsSolutions-IAM5[Resource::*]"],
        )

    @property
    def grant_principal(self) -> iam.IPrincipal:
        return self.role

    def add_to_policy(self, statement: iam.PolicyStatement) -> None:
        """Add a statement to the managed policy (also one whose resources are a lazy list)."""
        self.role.add_to_principal_policy(statement)

    def acknowledge_dlq_and_vpc(self, *, dlq_reason: str, vpc_reason: str) -> None:
        """Acknowledge the Lambda DLQ and VPC rules on this function, each with the caller's reason."""
        acknowledge(self.function, dlq_reason, LAMBDA_DLQ_RULES)
        acknowledge(self.function, vpc_reason, LAMBDA_VPC_RULES)


def stage_package(package: str) -> Path:
    """The function's asset: lambda_src/__init__.py, its own package and the shared packages, nothing else."""
    files = {"lambda_src/__init__.py": LAMBDA_SRC / "__init__.py"}
    for name in (package, *SHARED_PACKAGES):
        files.update(package_files(ROOT, LAMBDA_SRC / name))
    return staged(files, f"llm-platform-function-{package.replace('_', '-')}")
