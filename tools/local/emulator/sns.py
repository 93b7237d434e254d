"""SNS: `AWS::SNS::TopicPolicy` and `AWS::SNS::Subscription`, which moto's CloudFormation does not model (it models
the topic), applied through moto's backend: each topic's policy as its Policy attribute, each subscription as
Subscribe does (an email endpoint stays pending confirmation, as in AWS)."""

from __future__ import annotations

import json
from typing import Any

from moto.sns.models import sns_backends

from tools.local.emulator.cloudformation import register_model


def _topic_policy(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    backend = sns_backends[account][region]
    document = json.dumps(properties["PolicyDocument"])
    for topic_arn in properties["Topics"]:
        backend.set_topic_attribute(topic_arn, "policy", document)  # as SetTopicAttributes names it
    return name, {}


def _subscription(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    backend = sns_backends[account][region]
    subscription = backend.subscribe(properties["TopicArn"], properties["Endpoint"], properties["Protocol"])
    return subscription.arn, {}


def install() -> None:
    register_model("AWS::SNS::TopicPolicy", "sns", _topic_policy)
    register_model("AWS::SNS::Subscription", "sns", _subscription)
