"""AccountStack: what the platform needs once per account and region rather than once per stage.

Today that is API Gateway's CloudWatch Logs role (``AWS::ApiGateway::Account``). Every stage's app
synthesizes the same template under the same name, so deploying it from dev or from prod is the same
no-op once it exists; ``-c account_stack=false`` leaves it out where the account manages that setting
elsewhere (stacks/context.py).
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.inference.gateway_account import GatewayAccount


class AccountStack(cdk.Stack):
    """Attribute: ``gateway`` (GatewayAccount). Termination protection is on: every stage of the account
    and region relies on it."""

    def __init__(self, scope: Construct, construct_id: str, *, env: cdk.Environment | None = None) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description="LLM platform (once per account and region): API Gateway's CloudWatch Logs role",
            termination_protection=True,
        )
        self.gateway = GatewayAccount(self, "ApiGateway")
        cdk.CfnOutput(
            self,
            "ApiGatewayCloudWatchRoleArn",
            value=self.gateway.role.role_arn,
            description="Role API Gateway uses for the execution logs of every stage in this region",
        )
