"""ApiStack template assertions: routes, authorizer, usage plans, validation, logging, WAF, CORS and IAM."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from constructs_lib.api_contract import ACCESS_LOG_FORMAT, GATEWAY_ERRORS
from stacks.stages import DEV, PROD, Deployment
from tests.infra.conftest import Synth, by_type, only, synth_deployment

INFERENCE_POLICY = "InferencePolicyB08644C5"
AUTHORIZER_POLICY = "AuthorizerPolicy52DA209A"
KEY_TABLE = "KeysTableF42AC009"
API_KEY = "ApiKeyF9DDEE66"
STAGES = {"dev": DEV, "prod": PROD}


def _path_of(template: dict[str, Any], resource_id: str) -> str:
    parts: list[str] = []
    while resource_id:
        props = template["Resources"][resource_id]["Properties"]
        parts.insert(0, props["PathPart"])
        parent = props["ParentId"]
        resource_id = parent.get("Ref", "") if isinstance(parent, dict) and "Ref" in parent else ""
    return "/" + "/".join(parts)


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_regional_api_with_keys_from_the_authorizer(variant, variants):
    api = only(variants[variant].raw("api"), "AWS::ApiGateway::RestApi")
    assert api["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert api["ApiKeySourceType"] == "AUTHORIZER"


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_every_route_needs_the_authorizer_and_an_api_key(variant, variants):
    template = variants[variant].raw("api")
    methods = {}
    for method in by_type(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if props["HttpMethod"] == "OPTIONS":
            continue
        resource = props["ResourceId"]
        path = _path_of(template, resource["Ref"]) if "Ref" in resource else "/"
        methods[(props["HttpMethod"], path)] = props
    assert set(methods) == {("GET", "/models"), ("POST", "/chat/completions"), ("POST", "/model")}
    for props in methods.values():
        assert props["AuthorizationType"] == "CUSTOM"
        assert props["AuthorizerId"] == {"Ref": "ApiAuthorizer787544C1"}
        assert props["ApiKeyRequired"] is True
        assert props["Integration"]["Type"] == "AWS_PROXY"
    for key in [("POST", "/chat/completions"), ("POST", "/model")]:
        assert methods[key]["RequestValidatorId"] == {"Ref": "ApiBodyValidatorB96F9021"}
        assert list(methods[key]["RequestModels"]) == ["application/json"]
    assert "RequestValidatorId" not in methods[("GET", "/models")]


@pytest.mark.parametrize(("variant", "ttl"), [("dev", 60), ("prod", 300)])
def test_token_authorizer_reads_the_bearer_header_and_caches(variant, ttl, variants):
    authorizer = only(variants[variant].raw("api"), "AWS::ApiGateway::Authorizer")
    assert authorizer["Type"] == "TOKEN"
    assert authorizer["IdentitySource"] == "method.request.header.Authorization"
    assert authorizer["IdentityValidationExpression"] == "^Bearer sk-llm-[A-Za-z0-9_-]{43}$"
    assert authorizer["AuthorizerResultTtlInSeconds"] == ttl


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_usage_plans_follow_the_stage_config(variant, variants):
    plans = {p["Properties"]["UsagePlanName"]: p["Properties"]
             for p in by_type(variants[variant].raw("api"), "AWS::ApiGateway::UsagePlan").values()}  # fmt: skip
    expected = STAGES[variant].api.usage_plans
    assert len(plans) == len(expected)
    for plan in expected:
        props = plans[f"llm-platform-{variant}-api-{plan.name}"]
        assert props["Throttle"] == {"RateLimit": plan.rate_limit, "BurstLimit": plan.burst_limit}
        assert props["Quota"] == {"Limit": plan.daily_quota, "Period": "DAY"}
        assert props["ApiStages"][0]["Stage"] == {"Ref": "ApiDeploymentStagev1149A6FAE"}


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_stage_v1_logging_tracing_and_throttling(variant, variants):
    stage = only(variants[variant].raw("api"), "AWS::ApiGateway::Stage")
    config = STAGES[variant].api
    assert stage["StageName"] == "v1"
    assert stage["TracingEnabled"] is True
    assert "ApiAccessLogs50B185DB" in json.dumps(stage["AccessLogSetting"]["DestinationArn"])
    access_format = json.loads(stage["AccessLogSetting"]["Format"])
    assert access_format == ACCESS_LOG_FORMAT
    assert "$context.authorizer.keyId" in access_format.values()
    assert not any("body" in v.lower() or "header" in v.lower() for v in access_format.values())
    assert stage["MethodSettings"] == [
        {
            "DataTraceEnabled": False,
            "HttpMethod": "*",
            "LoggingLevel": "ERROR",
            "MetricsEnabled": True,
            "ResourcePath": "/*",
            "ThrottlingBurstLimit": config.throttle_burst_limit,
            "ThrottlingRateLimit": config.throttle_rate_limit,
        }
    ]


@pytest.mark.parametrize(("variant", "days"), [("dev", 14), ("prod", 365)])
def test_access_logs_are_encrypted_and_kept_per_stage(variant, days, variants):
    logs = variants[variant].raw("api")["Resources"]["ApiAccessLogs50B185DB"]["Properties"]
    assert logs["KmsKeyId"] == {"Fn::GetAtt": [API_KEY, "Arn"]}
    assert logs["RetentionInDays"] == days


def test_gateway_errors_use_the_openai_error_shape(dev):
    responses = {r["Properties"]["ResponseType"]: r["Properties"]
                 for r in by_type(dev.raw("api"), "AWS::ApiGateway::GatewayResponse").values()}  # fmt: skip
    assert set(responses) == set(GATEWAY_ERRORS)
    for kind, (status, error_type, code, _message) in GATEWAY_ERRORS.items():
        props = responses[kind]
        assert props["StatusCode"] == status
        body = json.loads(props["ResponseTemplates"]["application/json"])
        assert body["error"]["type"] == error_type and body["error"]["code"] == code
        assert props["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"
    assert responses["THROTTLED"]["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    assert responses["QUOTA_EXCEEDED"]["StatusCode"] == "429"


def test_post_bodies_are_validated_against_json_schemas(dev):
    template = dev.raw("api")
    validator = only(template, "AWS::ApiGateway::RequestValidator")
    assert validator["ValidateRequestBody"] is True
    models = {logical_id[3:-8]: m["Properties"]["Schema"]
              for logical_id, m in by_type(template, "AWS::ApiGateway::Model").items()}  # fmt: skip
    assert models["ChatRequest"]["required"] == ["messages"]
    assert models["ChatRequest"]["properties"]["messages"]["minItems"] == 1
    assert models["ChatRequest"]["properties"]["stream"] == {"type": "boolean"}
    assert models["PromptRequest"]["required"] == ["prompt"]


def test_waf_only_where_the_stage_enables_it(dev, prod):
    assert by_type(dev.raw("api"), "AWS::WAFv2::WebACL") == {}
    template = prod.raw("api")
    acl = only(template, "AWS::WAFv2::WebACL")
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"]: r for r in acl["Rules"]}
    assert set(rules) == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "RateLimitPerIp"}
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert common["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    rate = rules["RateLimitPerIp"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == PROD.api.waf_rate_limit
    association = only(template, "AWS::WAFv2::WebACLAssociation")
    assert json.dumps(association["ResourceArn"]).count("ApiDeploymentStagev1149A6FAE") == 1
    logging = only(template, "AWS::WAFv2::LoggingConfiguration")
    assert logging["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}]
    assert "aws-waf-logs-llm-platform-prod-api" in json.dumps(logging["LogDestinationConfigs"])


def test_cors_only_for_configured_origins(dev, prod):
    def options_origins(synth: Synth) -> set[str]:
        found = set()
        for method in by_type(synth.raw("api"), "AWS::ApiGateway::Method").values():
            props = method["Properties"]
            if props["HttpMethod"] == "OPTIONS":
                params = props["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
                found.add(params["method.response.header.Access-Control-Allow-Origin"])
        return found

    assert options_origins(dev) == {"'http://localhost:3000'"}
    assert options_origins(prod) == set()


@pytest.mark.parametrize(("variant", "concurrency"), [("dev", 5), ("prod", 50)])
def test_functions_runtime_layer_and_environment(variant, concurrency, variants):
    template = Template.from_json(variants[variant].raw("api"))
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "inference.handler.lambda_handler",
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Timeout": 29,
            "ReservedConcurrentExecutions": concurrency,
            "TracingConfig": {"Mode": "Active"},
            "Layers": [{"Ref": "PowertoolsLayer355B073B"}],
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "MODEL_PARAMETER_PATH": f"/llm-platform/{variant}/model",
                        "UPSTREAM_API_KEY_PARAMETER": f"/llm-platform/{variant}/secrets/upstream-api-key",
                        "POWERTOOLS_SERVICE_NAME": "llm-inference",
                    }
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "authorizer.handler.lambda_handler", "Timeout": 5, "ReservedConcurrentExecutions": concurrency},
    )


def test_function_packages_hold_only_project_code(dev):
    template = dev.raw("api")
    for logical_id, package in (
        ("InferenceFunction05D34FA4", "inference"),
        ("AuthorizerFunctionEB19F618", "authorizer"),
    ):
        asset = template["Resources"][logical_id]["Properties"]["Code"]["S3Key"].removesuffix(".zip")
        folder = dev.outdir / f"asset.{asset}"
        files = {p.relative_to(folder).parts[0] for p in folder.rglob("*") if p.is_file()}
        assert files == {package}


def test_inference_policy_is_exact(dev):
    statements = dev.raw("api")["Resources"][INFERENCE_POLICY]["Properties"]["PolicyDocument"]["Statement"]
    actions = [s["Action"] for s in statements]
    assert actions == [
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
        ["ssm:GetParameter", "ssm:GetParameters"],
        "ssm:GetParametersByPath",
        "ssm:GetParameter",
        "kms:Decrypt",
        ["firehose:PutRecord", "firehose:PutRecordBatch"],
        "bedrock:InvokeModel",
    ]
    assert len(statements[2]["Resource"]) == 9  # exactly the model parameters
    assert json.dumps(statements[3]["Resource"]).endswith(':parameter/llm-platform/dev/model"]]}')
    assert json.dumps(statements[4]["Resource"]).endswith(':parameter/llm-platform/dev/secrets/upstream-api-key"]]}')
    assert statements[5]["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Join": ["", ["ssm.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]
    }
    # The audit stream of this stage, and nothing else.
    assert list(statements[6]["Resource"]) == ["Fn::ImportValue"]
    assert statements[6]["Resource"]["Fn::ImportValue"].startswith("llm-platform-dev-audit:")
    assert statements[7]["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":bedrock:", {"Ref": "AWS::Region"},
                          "::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"]]
    }  # fmt: skip


def test_authorizer_policy_is_exact(dev):
    statements = dev.raw("api")["Resources"][AUTHORIZER_POLICY]["Properties"]["PolicyDocument"]["Statement"]
    assert statements[2:] == [
        {"Action": "dynamodb:GetItem", "Effect": "Allow", "Resource": {"Fn::GetAtt": [KEY_TABLE, "Arn"]}},
        {
            "Action": "kms:Decrypt",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [API_KEY, "Arn"]},
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": {"Fn::Join": ["", ["dynamodb.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
                }
            },
        },
    ]


def test_inference_profiles_get_the_profile_and_its_models_only_through_it(tmp_path_factory):
    model = dataclasses.replace(DEV.model, model_id="us.anthropic.claude-3-5-haiku-20241022-v1:0",
                                additional_model_ids=("amazon.nova-lite-v1:0",))  # fmt: skip
    synth = synth_deployment(tmp_path_factory, Deployment(stage=dataclasses.replace(DEV, model=model)))
    assert synth.report.passed, synth.report.findings
    statements = synth.raw("api")["Resources"][INFERENCE_POLICY]["Properties"]["PolicyDocument"]["Statement"]
    bedrock = [s for s in statements if s["Action"] == "bedrock:InvokeModel"]
    rendered = json.dumps(bedrock)
    assert ":inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0" in rendered
    assert "::foundation-model/amazon.nova-lite-v1:0" in rendered
    (through_profile,) = [s for s in bedrock if "Condition" in s]
    assert through_profile["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                          ":bedrock:*::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0"]]
    }  # fmt: skip
    assert "bedrock:InferenceProfileArn" in through_profile["Condition"]["StringEquals"]


@pytest.mark.parametrize(("variant", "protected"), [("dev", False), ("prod", True)])
def test_key_table_is_encrypted_recoverable_and_protected_in_prod(variant, protected, variants):
    table = variants[variant].raw("api")["Resources"][KEY_TABLE]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "key_hash", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"KMSMasterKeyId": {"Fn::GetAtt": [API_KEY, "Arn"]}, "SSEEnabled": True,
                                         "SSEType": "KMS"}  # fmt: skip
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["DeletionProtectionEnabled"] is protected
    assert table["DeletionPolicy"] == ("Retain" if protected else "Delete")


def test_admin_tooling_parameters_and_outputs(dev):
    template = dev.raw("api")
    names = {p["Properties"]["Name"] for p in by_type(template, "AWS::SSM::Parameter").values()}
    assert names == {"/llm-platform/dev/api/key-table", "/llm-platform/dev/api/usage-plans/standard",
                     "/llm-platform/dev/api/usage-plans/premium"}  # fmt: skip
    outputs = template["Outputs"]
    invoke_url = json.dumps(outputs["InvokeUrl"]["Value"])
    assert invoke_url.startswith('{"Fn::Join": ["", ["https://", {"Ref": "ApiCD79AAA0"}')
    assert '{"Ref": "ApiDeploymentStagev1149A6FAE"}, "/"]]}' in invoke_url  # .../v1/


def test_no_key_material_in_the_api_template(dev, prod):
    for synth in (dev, prod):
        assert "sk-llm-" not in json.dumps(synth.raw("api")).replace("^Bearer sk-llm-[A-Za-z0-9_-]{43}$", "")
