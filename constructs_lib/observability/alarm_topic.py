"""The stage's alarm topic: SNS, encrypted with an existing customer-managed key of the stage, TLS only, open to the
stage's CloudWatch alarms, with one email subscription per address of the stage config.

CloudWatch cannot publish to a topic encrypted with the AWS-managed `alias/aws/sns` key (its policy cannot be
changed), so the topic uses a key of the stage's own and that key's policy lets cloudwatch.amazonaws.com use it:
only for this topic (the `aws:sns:topicArn` encryption context SNS sends), only for this account's alarms whose
names start with the stage's prefix. A key of its own would cost $1 a month; an existing one costs nothing more.
Nothing in the key policy names a resource of this construct's stack (the topic's and the alarms' names are
fixed), so the key may live in a stack this one depends on without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from constructs_lib.foundation.nag import acknowledge
from lambda_src.contracts.naming import resource_name

CLOUDWATCH = "cloudwatch.amazonaws.com"
EMAIL_REDRIVE_REASON = (
    "An alarm email is a notification of a state CloudWatch keeps itself (the alarm and its history are the "
    "record); SNS retries email delivery and counts what still fails in the topic's NumberOfNotificationsFailed, "
    "which the dashboard shows. A dead-letter queue would hold copies nobody is told about, and be one more "
    "acknowledged queue (a dead-letter queue has none of its own)."
)
# What SNS passes to KMS with every data key request: the topic's ARN.
SNS_TOPIC_CONTEXT = "kms:EncryptionContext:aws:sns:topicArn"


@dataclass(frozen=True, kw_only=True)
class AlarmTopicProps:
    stage_name: str
    # A customer-managed key of the stage, defined in this app (its policy gains the statement below).
    key: kms.Key
    emails: tuple[str, ...] = ()


class AlarmTopic(Construct):
    """Attributes: ``topic``, ``topic_name``, ``alarm_name_prefix`` (every alarm that publishes here is named
    ``<prefix><id>``)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: AlarmTopicProps) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.topic_name = resource_name(props.stage_name, "alarms")
        self.alarm_name_prefix = resource_name(props.stage_name, "")
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=self.topic_name,
            display_name=f"LLM platform {props.stage_name} alarms",
            master_key=props.key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="StageAlarmsPublish",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": self.alarm_arns(stack)},
                },
            )
        )
        for email in props.emails:
            subscription = self.topic.add_subscription(subscriptions.EmailSubscription(email))
            acknowledge(subscription, EMAIL_REDRIVE_REASON, ["Serverless-SNSRedrivePolicy"])
        self._let_cloudwatch_use(props.key)

    def alarm_arns(self, stack: cdk.Stack) -> str:
        """The ARN pattern of the stage's alarms, in ``stack``'s terms."""
        return stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{self.alarm_name_prefix}*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def _let_cloudwatch_use(self, key: kms.Key) -> None:
        """The key policy statement: CloudWatch's data keys for this topic, on behalf of the stage's alarms. Written
        in the key's stack with fixed names only (a reference to this construct would make the stacks a cycle)."""
        key_stack = cdk.Stack.of(key)
        topic_arn = key_stack.format_arn(
            service="sns", resource=self.topic_name, arn_format=cdk.ArnFormat.NO_RESOURCE_NAME
        )
        statement = iam.PolicyStatement(
            sid="StageAlarmsToTheAlarmTopic",
            principals=[iam.ServicePrincipal(CLOUDWATCH)],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={
                "StringEquals": {"aws:SourceAccount": key_stack.account, SNS_TOPIC_CONTEXT: topic_arn},
                "ArnLike": {"aws:SourceArn": self.alarm_arns(key_stack)},
            },
        )
        if not key.add_to_resource_policy(statement).statement_added:
            raise ValueError(f"AlarmTopicProps.key must be a key defined in this app; {key.node.path} is imported.")
