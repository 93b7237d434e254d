"""Least-privilege Bedrock invocation: exactly the configured models, in the forms Bedrock accepts.

- a foundation model id (``anthropic.claude-3-haiku-20240307-v1:0``): that model in the stack's region;
- a cross-region inference profile id (``us.anthropic...``): the profile in the stack's region, plus the
  foundation model in whatever region the profile routes to, only when called through that profile;
- an ARN (inference profile, application inference profile, provisioned model): that ARN.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

_GEO_PROFILE = re.compile(r"^(?:us|eu|apac|us-gov|jp|au|ca|global)\.(?P<model>[a-z][a-z0-9-]*\..+)$")
ACTIONS = ["bedrock:InvokeModel"]  # Converse is authorized as bedrock:InvokeModel


def invoke_statements(scope: Construct, model_ids: list[str]) -> tuple[list[iam.PolicyStatement], list[str]]:
    """Statements for ``model_ids`` and the cdk-nag finding ids their cross-region wildcards raise."""
    stack = cdk.Stack.of(scope)
    partition, region, account = stack.partition, stack.region, stack.account
    direct: list[str] = []
    statements: list[iam.PolicyStatement] = []
    wildcard_findings: list[str] = []
    for model_id in dict.fromkeys(model_ids):
        if model_id.startswith("arn:"):
            direct.append(model_id)
            continue
        profile = _GEO_PROFILE.match(model_id)
        if profile is None:
            direct.append(f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}")
            continue
        profile_arn = f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model_id}"
        direct.append(profile_arn)
        statements.append(
            iam.PolicyStatement(
                actions=ACTIONS,
                resources=[f"arn:{partition}:bedrock:*::foundation-model/{profile.group('model')}"],
                conditions={"StringEquals": {"bedrock:InferenceProfileArn": profile_arn}},
            )
        )
        wildcard_findings.append(
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{profile.group('model')}]"
        )
    if direct:
        statements.insert(0, iam.PolicyStatement(actions=ACTIONS, resources=direct))
    return statements, wildcard_findings
