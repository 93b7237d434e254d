"""Least-privilege Bedrock invocation: exactly the configured models, in the forms Bedrock accepts.

- a foundation model id (``anthropic.claude-3-haiku-20240307-v1:0``): that model in the stack's region;
- a cross-region inference profile id (``us.anthropic...``): the profile in the stack's region, plus the
  foundation model in whatever region the profile routes to, only when called through that profile;
- an ARN (inference profile, application inference profile, provisioned model): that ARN.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from lambda_src.contracts.parameters import GEO_PROFILE

# Converse is authorized as bedrock:InvokeModel, ConverseStream as bedrock:InvokeModelWithResponseStream.
ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]


def grant_invoke(scope: Construct, grantee: iam.IGrantable, model_ids: list[str],
                 actions: list[str] = ACTIONS) -> list[str]:  # fmt: skip
    """Grant ``actions`` (invoking, streamed or not) on ``model_ids``; returns the cdk-nag finding ids their
    cross-region wildcards raise."""
    stack = cdk.Stack.of(scope)
    partition, region, account = stack.partition, stack.region, stack.account
    direct: list[str] = []
    through_profiles: list[tuple[str, str]] = []
    for model_id in dict.fromkeys(model_ids):
        if model_id.startswith("arn:"):
            direct.append(model_id)
            continue
        profile = GEO_PROFILE.match(model_id)
        if profile is None:
            direct.append(f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}")
            continue
        profile_arn = f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model_id}"
        direct.append(profile_arn)
        through_profiles.append((profile_arn, profile.group("model")))
    if direct:
        iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=direct)
    for profile_arn, model in through_profiles:
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(actions),
            resource_arns=[f"arn:{partition}:bedrock:*::foundation-model/{model}"],
            conditions={"StringEquals": {"bedrock:InferenceProfileArn": profile_arn}},
        )
    return [f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{model}]"
            for _, model in through_profiles]  # fmt: skip
