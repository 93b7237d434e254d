"""API Gateway's account-level settings: the CloudWatch Logs role every REST API stage of the account and
region uses for execution logging. One per account and region (AWS::ApiGateway::Account is a singleton), so
it lives in its own account-wide stack, never in a stage's stack."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.foundation.nag import acknowledge

PUSH_TO_CLOUDWATCH_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


class GatewayAccount(Construct):
    """Attributes: ``role`` (assumed by API Gateway), ``account`` (the account's API Gateway settings).

    Both are retained when removed from the app: other APIs of the account may log through them.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "CloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway writes the execution logs of every REST API stage in this account and region",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(PUSH_TO_CLOUDWATCH_POLICY)],
        )
        self.role.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        acknowledge(
            self.role,
            "API Gateway's account-level logging role uses the AWS managed policy the service maintains "
            "for exactly that purpose (writing its own execution logs to CloudWatch Logs).",
            [f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{PUSH_TO_CLOUDWATCH_POLICY}]"],
        )
        self.account = apigw.CfnAccount(self, "Settings", cloud_watch_role_arn=self.role.role_arn)
        self.account.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
