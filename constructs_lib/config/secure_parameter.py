"""SSM SecureString parameters created by a custom resource, so no value ever enters a template.

``SecureParameterProvider`` is the one Lambda per stack that calls PutParameter/DeleteParameter;
``SecureParameter`` is one parameter. The provider's policy names exactly the registered parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from constructs_lib.foundation.lazy import lazy_list
from constructs_lib.foundation.python_function import PythonFunction, PythonFunctionProps
from lambda_src.contracts import secure_string

_NAME = re.compile(r"^/[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)+$")


def parameter_arn(scope: Construct, name: str) -> str:
    """ARN of the parameter called ``name`` (leading slash) in the scope's account and region."""
    return cdk.Stack.of(scope).format_arn(
        service="ssm",
        resource="parameter",
        resource_name=name.lstrip("/"),
        arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
    )


def ssm_decrypt_statement(key: kms.IKey, parameter_arns: list[str], actions: list[str]) -> iam.PolicyStatement:
    """Use of ``key`` only by SSM, and only for the named parameters (SSM's encryption context)."""
    region = cdk.Stack.of(key).region
    return iam.PolicyStatement(
        actions=actions,
        resources=[key.key_arn],
        conditions={
            "StringEquals": {
                "kms:ViaService": f"ssm.{region}.amazonaws.com",
                "kms:EncryptionContext:PARAMETER_ARN": parameter_arns,
            }
        },
    )


@dataclass(frozen=True, kw_only=True)
class SecureParameterProviderProps:
    key: kms.IKey
    log_retention_days: int
    retain_logs: bool


class SecureParameterProvider(Construct):
    """The custom-resource Lambda. Attribute: ``service_token``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: SecureParameterProviderProps) -> None:
        super().__init__(scope, construct_id)
        self._key = props.key
        self._arns: list[str] = []
        self.handler = PythonFunction(
            self,
            "Handler",
            props=PythonFunctionProps(
                package="secure_parameter",
                description="Creates SSM SecureString parameters without their values entering templates",
                log_key=props.key,
                log_retention_days=props.log_retention_days,
                retain_logs=props.retain_logs,
                timeout=cdk.Duration.seconds(60),
                memory_size=256,
                # CloudFormation creates the stack's parameters in parallel; throttled events are retried.
                reserved_concurrency=2,
            ),
        )
        self.service_token = self.handler.function.function_arn
        # Statements naming exactly the registered parameters, filled in by register() before synthesis.
        self.handler.add_to_policy(
            iam.PolicyStatement(
                sid="ManageSecureParameters",
                actions=["ssm:PutParameter", "ssm:DeleteParameter", "ssm:GetParameter"],
                resources=lazy_list(self._arns),
            )
        )
        self.handler.add_to_policy(
            ssm_decrypt_statement(
                props.key,
                lazy_list(self._arns),
                # Standard-tier SecureStrings: SSM encrypts and decrypts with the key directly.
                ["kms:Encrypt", "kms:Decrypt"],
            )
        )
        self.handler.acknowledge_dlq_and_vpc(
            dlq_reason="CloudFormation invokes this provider; it answers every request itself, including a FAILED "
            "answer shortly before a timeout, so a dead-letter queue would never hold anything useful.",
            vpc_reason="The provider only calls the SSM and KMS APIs during deploys; the platform has no VPC, and one "
            "with interface endpoints for a deploy-time function adds cost without reducing exposure.",
        )

    def register(self, parameter_arn: str) -> None:
        self._arns.append(parameter_arn)


@dataclass(frozen=True, kw_only=True)
class SecureParameterProps:
    provider: SecureParameterProvider
    key: kms.IKey
    # Absolute name, e.g. "/llm-platform/dev/secrets/upstream-api-key".
    name: str
    # "generated": a random 256-bit value made at creation; "placeholder": an operator replaces it.
    value_kind: str
    description: str
    # Keep the parameter when the stack (or this resource) is deleted.
    retain: bool

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"SecureParameterProps.name must be an absolute hierarchical name, got {self.name!r}.")
        if self.value_kind not in secure_string.VALUE_KINDS:
            raise ValueError(
                f"SecureParameterProps.value_kind must be one of {secure_string.VALUE_KINDS}, got {self.value_kind!r}."
            )


class SecureParameter(Construct):
    """One SecureString parameter. Attributes: ``parameter_name``, ``parameter_arn``, ``key``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: SecureParameterProps) -> None:
        super().__init__(scope, construct_id)
        self.parameter_name = props.name
        self.parameter_arn = parameter_arn(self, props.name)
        self.key = props.key
        props.provider.register(self.parameter_arn)
        # Only names and settings: the value is made inside the provider and never returned.
        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=props.provider.service_token,
            resource_type=secure_string.RESOURCE_TYPE,
            properties=secure_string.resource_properties(
                parameter_name=props.name,
                key_id=props.key.key_arn,
                value_kind=props.value_kind,
                description=props.description,
                retain_on_delete=props.retain,
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN if props.retain else cdk.RemovalPolicy.DESTROY,
        )
        self.resource.node.add_dependency(props.provider.handler.policy)

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """``ssm:GetParameter`` on this parameter and ``kms:Decrypt`` of it through SSM only."""
        grant = iam.Grant.add_to_principal(grantee=grantee, actions=["ssm:GetParameter"],
                                           resource_arns=[self.parameter_arn])  # fmt: skip
        decrypt = ssm_decrypt_statement(self.key, [self.parameter_arn], ["kms:Decrypt"])
        grantee.grant_principal.add_to_principal_policy(decrypt)
        return grant
