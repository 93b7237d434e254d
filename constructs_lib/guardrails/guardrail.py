"""The stage's Bedrock Guardrail and a numbered version of it, from GuardrailConfig.

Bedrock applies a guardrail by version: the DRAFT changes with every update, so the API only ever applies a
numbered version. A version is immutable, so this construct publishes a new one whenever the configuration changes
(its description carries a digest of the configuration, and a changed description replaces the version resource).
The version being replaced is kept (UpdateReplacePolicy Retain): functions that read the old number from their
settings cache still find it until their cache expires. Deleting the stack deletes the guardrail and its versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import aws_cdk as cdk
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.guardrails.settings import GuardrailConfig


class StageGuardrail(Construct):
    """Attributes: ``guardrail`` (CfnGuardrail), ``version`` (CfnGuardrailVersion), ``guardrail_arn``,
    ``guardrail_id``, ``version_number`` (tokens)."""

    def __init__(self, scope: Construct, construct_id: str, *, name: str, config: GuardrailConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.guardrail = bedrock.CfnGuardrail(
            self,
            "Guardrail",
            name=name,
            description="Content safety of the platform's model calls (stage configuration: guardrails)",
            blocked_input_messaging=config.blocked_input_message,
            blocked_outputs_messaging=config.blocked_output_message,
            content_policy_config=_content_policy(config),
            sensitive_information_policy_config=_sensitive_information(config),
            topic_policy_config=_topics(config),
            word_policy_config=_words(config),
        )
        self.version = bedrock.CfnGuardrailVersion(
            self,
            "Version",
            guardrail_identifier=self.guardrail.attr_guardrail_id,
            description=f"Published by the stack for configuration {digest(config)}",
        )
        self.version.apply_removal_policy(cdk.RemovalPolicy.RETAIN, apply_to_update_replace_policy=True)
        self.version.cfn_options.deletion_policy = cdk.CfnDeletionPolicy.DELETE
        self.guardrail_arn = self.guardrail.attr_guardrail_arn
        self.guardrail_id = self.guardrail.attr_guardrail_id
        self.version_number = self.version.attr_version

    def grant_apply(self, grantee: iam.IGrantable) -> iam.Grant:
        """``bedrock:ApplyGuardrail`` on this guardrail only (Converse with guardrailConfig needs it too)."""
        return iam.Grant.add_to_principal(grantee=grantee, actions=["bedrock:ApplyGuardrail"],
                                          resource_arns=[self.guardrail_arn])  # fmt: skip


def digest(config: GuardrailConfig) -> str:
    """A short digest of everything the guardrail's policies are made of (not the route switches)."""
    policy = dataclasses.asdict(config)
    for switch in ("enabled", "inference_routes", "chat_routes", "stream_processing"):
        policy.pop(switch)
    return hashlib.sha256(json.dumps(policy, sort_keys=True).encode()).hexdigest()[:16]


def _content_policy(config: GuardrailConfig) -> bedrock.CfnGuardrail.ContentPolicyConfigProperty | None:
    if not config.content_filters:
        return None
    return bedrock.CfnGuardrail.ContentPolicyConfigProperty(filters_config=[
        bedrock.CfnGuardrail.ContentFilterConfigProperty(type=f.type, input_strength=f.input_strength,
                                                         output_strength=f.output_strength)
        for f in config.content_filters])  # fmt: skip


def _sensitive_information(
    config: GuardrailConfig,
) -> bedrock.CfnGuardrail.SensitiveInformationPolicyConfigProperty | None:
    if not (config.pii_entities or config.regexes):
        return None
    return bedrock.CfnGuardrail.SensitiveInformationPolicyConfigProperty(
        pii_entities_config=[bedrock.CfnGuardrail.PiiEntityConfigProperty(type=e.type, action=e.action)
                             for e in config.pii_entities] or None,
        regexes_config=[bedrock.CfnGuardrail.RegexConfigProperty(name=r.name, pattern=r.pattern, action=r.action,
                                                                 description=r.description or None)
                        for r in config.regexes] or None,
    )  # fmt: skip


def _topics(config: GuardrailConfig) -> bedrock.CfnGuardrail.TopicPolicyConfigProperty | None:
    if not config.denied_topics:
        return None
    return bedrock.CfnGuardrail.TopicPolicyConfigProperty(topics_config=[
        bedrock.CfnGuardrail.TopicConfigProperty(name=t.name, definition=t.definition, type="DENY",
                                                 examples=list(t.examples) or None)
        for t in config.denied_topics])  # fmt: skip


def _words(config: GuardrailConfig) -> bedrock.CfnGuardrail.WordPolicyConfigProperty | None:
    if not (config.words or config.profanity):
        return None
    return bedrock.CfnGuardrail.WordPolicyConfigProperty(
        words_config=[bedrock.CfnGuardrail.WordConfigProperty(text=w) for w in config.words] or None,
        managed_word_lists_config=[bedrock.CfnGuardrail.ManagedWordsConfigProperty(type="PROFANITY")]
        if config.profanity else None,
    )  # fmt: skip
