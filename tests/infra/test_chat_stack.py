"""ChatStack's template (the user pool, its browser client, the history table) and the conversation routes in the
api stack: the Cognito authorizer on exactly those routes, the chat function's IAM exactly, CORS."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from constructs_lib.chat.settings import ChatConfig
from constructs_lib.foundation.settings import ConfigError
from lambda_src.contracts import chat as c
from lambda_src.contracts.api import AUTH_USER, ROUTES
from stacks.stages import DEV, PROD
from tests.infra.templates import by_type, rendered
from tools.local.assembly import route_path


def test_administrators_create_the_users_with_a_strong_password_policy_and_threat_protection(dev, prod):
    for synth, mfa, protection in ((dev, "OPTIONAL", "INACTIVE"), (prod, "ON", "ACTIVE")):
        pool = synth.properties("chat", "Users/Pool")
        assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
        assert pool["Policies"]["PasswordPolicy"] == {
            "MinimumLength": 14, "RequireLowercase": True, "RequireNumbers": True, "RequireSymbols": True,
            "RequireUppercase": True, "TemporaryPasswordValidityDays": 3}  # fmt: skip
        assert (pool["MfaConfiguration"], pool["EnabledMfas"]) == (mfa, ["SOFTWARE_TOKEN_MFA"])
        assert pool["UserPoolTier"] == "PLUS" and pool["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
        assert pool["UsernameAttributes"] == ["email"] and pool["DeletionProtection"] == protection


def test_the_stage_switches_let_users_sign_up_on_the_essentials_plan_with_both_findings_acknowledged(dev, dev_upload):
    """The stage switches' synth (tests/infra/conftest.py UPLOAD_STAGE: chat.self_sign_up, chat.feature_plan)."""
    pool = dev_upload.properties("chat", "Users/Pool")
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": False}
    assert pool["UserPoolTier"] == "ESSENTIALS" and "UserPoolAddOns" not in pool
    # cdk-nag passes: COG8 (not on Plus) acknowledged on the pool itself, with the reason; COG2 is dev's optional MFA.
    pool_path = f"{dev_upload.stack_name('chat')}/Users/Pool"
    on_pool = {ack.rule_id: ack.reason for ack in dev_upload.report.acknowledgments if ack.path == pool_path}
    assert set(on_pool) == {"AwsSolutions-COG2", "AwsSolutions-COG8"} and "Essentials" in on_pool["AwsSolutions-COG8"]
    assert dev_upload.report.findings == () and dev_upload.report.passed
    # The Plus plan clears the finding instead.
    assert "AwsSolutions-COG8" not in {ack.rule_id for ack in dev.report.acknowledgments}


def test_the_browser_client_has_no_secret_signs_in_with_srp_and_the_code_flow_to_the_stages_urls(dev, prod):
    client = dev.properties("chat", "Users/Pool/WebClient")
    assert client["GenerateSecret"] is False
    assert client["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert client["AllowedOAuthFlows"] == ["code"] and client["CallbackURLs"] == list(DEV.chat.callback_urls)
    assert client["PreventUserExistenceErrors"] == "ENABLED" and client["EnableTokenRevocation"] is True
    assert (client["IdTokenValidity"], client["TokenValidityUnits"]["IdToken"]) == (60, "minutes")
    # Prod names no web app yet (issue 16 adds it): SRP only, no managed login domain.
    prod_client = prod.properties("chat", "Users/Pool/WebClient")
    assert "AllowedOAuthFlows" not in prod_client and prod_client["AllowedOAuthFlowsUserPoolClient"] is False
    assert not by_type(prod.raw("chat"), "AWS::Cognito::UserPoolDomain")
    assert by_type(dev.raw("chat"), "AWS::Cognito::UserPoolDomain")


def test_the_history_is_keyed_by_user_encrypted_with_the_stacks_key_recoverable_and_expires(dev, prod):
    for synth, retained in ((dev, False), (prod, True)):
        table = synth.resource("chat", "History/Table")
        props = table["Properties"]
        assert [k["AttributeName"] for k in props["KeySchema"]] == [c.PARTITION_KEY, c.SORT_KEY]
        assert props["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": [synth.logical_id("chat", "ChatKey"),
                                                                              "Arn"]}  # fmt: skip
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["TimeToLiveSpecification"] == {"AttributeName": c.EXPIRES_AT, "Enabled": True}
        assert (table.get("DeletionPolicy") == "Retain") is retained


def test_the_user_pools_authorizer_is_on_exactly_the_conversation_routes(dev):
    template = dev.raw("api")
    authorizer = dev.properties("api", "Api/UserAuthorizer")
    assert authorizer["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["IdentitySource"] == "method.request.header.Authorization"
    assert "UsersPool" in json.dumps(authorizer["ProviderARNs"])
    on_user_authorizer = {
        (m["Properties"]["HttpMethod"], route_path(template["Resources"], m["Properties"]["ResourceId"]))
        for m in by_type(template, "AWS::ApiGateway::Method").values()
        if m["Properties"].get("AuthorizerId") == {"Ref": dev.logical_id("api", "Api/UserAuthorizer")}
    }
    assert on_user_authorizer == {(r.method, r.path) for r in ROUTES if r.auth == AUTH_USER}
    assert {r.function for r in ROUTES if r.auth == AUTH_USER} == {"chat"}


def actions(statement: dict[str, Any]) -> tuple[str, ...]:
    found = statement["Action"]
    return tuple(sorted([found] if isinstance(found, str) else found))


def test_the_chat_function_may_use_exactly_its_table_the_index_read_the_models_and_the_audit_stream(dev):
    found = dev.properties("api", "Chat/Policy")["PolicyDocument"]["Statement"]
    assert sorted(actions(s) for s in found) == sorted([
        ("logs:CreateLogStream", "logs:PutLogEvents"), ("xray:PutTelemetryRecords", "xray:PutTraceSegments"),
        ("dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
         "dynamodb:UpdateItem"), ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"),
        ("s3vectors:GetVectors", "s3vectors:QueryVectors"), ("kms:Decrypt",), ("dynamodb:UpdateItem",),
        ("ssm:GetParameter", "ssm:GetParameters"), ("ssm:GetParametersByPath",), ("ssm:GetParameter",),
        ("kms:Decrypt",), ("bedrock:InvokeModel",), ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"),
        ("firehose:PutRecord", "firehose:PutRecordBatch"), ("bedrock:ApplyGuardrail",)])  # fmt: skip
    text = {actions(s): json.dumps(s["Resource"]) for s in found}
    # The stage's guardrail and nothing else (its ARN from the config stack).
    (guardrail,) = [s["Resource"] for s in found if s["Action"] == "bedrock:ApplyGuardrail"]
    assert re.fullmatch(r"<import:llm-platform-dev-config:\w*GuardrailArn\w*>", rendered(guardrail))
    assert "HistoryTable" in text[("dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem",
                                   "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem")]  # fmt: skip
    assert "VectorsIndex" in text[("s3vectors:GetVectors", "s3vectors:QueryVectors")]
    assert "foundation-model/amazon.titan-embed-text-v2:0" in text[("bedrock:InvokeModel",)]
    assert f"foundation-model/{DEV.model.model_id}" in text[("bedrock:InvokeModel",
                                                             "bedrock:InvokeModelWithResponseStream")]  # fmt: skip
    # Each user's budget: a reservation and a settlement are each one transaction of two updates on the usage table.
    assert "UsageTable" in text[("dynamodb:UpdateItem",)]
    paths = json.dumps([s["Resource"] for s in found if s["Action"] == "ssm:GetParametersByPath"])
    assert "/llm-platform/dev/model" in paths and "/llm-platform/dev/knowledge/embedding" in paths
    environment = dev.properties("api", "Chat/Function")["Environment"]["Variables"]
    assert environment["AWS_LAMBDA_EXEC_WRAPPER"].endswith("lambda_src/shared/runtime/wrapper")
    assert environment["HISTORY_RETENTION_DAYS"] == str(DEV.chat.history_retention_days)
    # The stage's origins, then the web app's distribution (a reference to the web stack, not a copied name).
    *configured, distribution = json.loads(rendered(environment["CORS_ALLOWED_ORIGINS"]))
    assert configured == list(DEV.api.cors_allowed_origins)
    assert re.fullmatch(r"https://<import:llm-platform-dev-web:\w*SiteDistribution\w*DomainName\w*>", distribution)


def test_the_stage_config_sets_mfa_retention_and_callbacks_per_stage():
    assert (DEV.chat.mfa, DEV.chat.history_retention_days) == ("optional", 30)
    assert (PROD.chat.mfa, PROD.chat.history_retention_days, PROD.chat.self_sign_up) == ("required", 365, False)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"mfa": "sometimes"}, "mfa"), ({"feature_plan": "lite"}, "feature_plan"), ({"password_min_length": 8},
     "password_min_length"), ({"history_retention_days": 0}, "history_retention_days"),
     ({"callback_urls": ("http://chat.example.com/",)}, "callback_urls"), ({"retrieval_top_k": 21}, "retrieval_top_k"),
     ({"self_sign_up": "no"}, "self_sign_up")],
)  # fmt: skip
def test_bad_chat_settings_fail_with_a_sentence_naming_the_field(change, field):
    with pytest.raises(ConfigError, match=rf"^Stage 'dev': chat\.{field} must "):
        dataclasses.replace(DEV, chat=dataclasses.replace(ChatConfig(), **change))
