"""ApiStack template assertions: routes, authorizer, usage plans, validation, logging, WAF, CORS and IAM."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from constructs_lib.config.settings import FallbackModel, ModelPrice
from constructs_lib.inference import rest_api
from constructs_lib.inference.rest_api import ACCESS_LOG_FORMAT
from lambda_src.contracts import spend as s
from lambda_src.contracts.api import AUTH_USER, ROUTES, Route
from lambda_src.contracts.gateway import GATEWAY_ERRORS
from lambda_src.contracts.keys import AUTHORIZATION_HEADER_REGEX, KEY_ID_INDEX, KEY_PREFIX, new_key
from lambda_src.contracts.schemas import PROMPT_REQUEST, REQUEST_SCHEMAS
from stacks.api_stack import STREAMING_WRAPPER
from stacks.context import Deployment
from stacks.stages import DEV, PROD
from tests.infra.conftest import CDK_JSON_CONTEXT, UPLOAD_STAGE, Synth, arn_of, ref, synth_deployment
from tests.infra.templates import by_type, logical_id_at, only, rendered
from tools.local.assembly import route_path

STAGES = {"dev": DEV, "prod": PROD}


def _statements(synth: Synth, path: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = synth.properties("api", path)["PolicyDocument"]["Statement"]
    return statements


def _with_action(statements: list[dict[str, Any]], action: str | list[str]) -> list[dict[str, Any]]:
    return [s for s in statements if s["Action"] == action]


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_regional_api_with_keys_from_the_authorizer(variant, variants):
    api = only(variants[variant].raw("api"), "AWS::ApiGateway::RestApi")
    assert api["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert api["ApiKeySourceType"] == "AUTHORIZER"


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_every_route_of_the_route_table_has_its_authorizer_and_key_routes_an_api_key(variant, variants):
    """Key routes: the TOKEN authorizer and an API key (its usage plan); user routes: the user pool's Cognito
    authorizer and no API key (a signed-in user has none)."""
    synth = variants[variant]
    template = synth.raw("api")
    methods = {}
    for method in by_type(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if props["HttpMethod"] == "OPTIONS":
            continue
        methods[(props["HttpMethod"], route_path(template["Resources"], props["ResourceId"]))] = props
    assert set(methods) == {(route.method, route.path) for route in ROUTES}
    for route in ROUTES:
        function = synth.logical_id("api", f"{route.function.title()}/Function")
        props = methods[(route.method, route.path)]
        user_route = route.auth == AUTH_USER
        assert props["AuthorizationType"] == ("COGNITO_USER_POOLS" if user_route else "CUSTOM")
        assert props["AuthorizerId"] == ref(synth, "api", "Api/UserAuthorizer" if user_route else "Api/Authorizer")
        assert props["ApiKeyRequired"] is not user_route
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert function in json.dumps(props["Integration"]["Uri"])  # the route table's function
        if route.body is None:
            assert "RequestValidatorId" not in props and "RequestModels" not in props
        else:
            assert props["RequestValidatorId"] == ref(synth, "api", "Api/Api/BodyValidator")
            assert props["RequestModels"] == {"application/json": ref(synth, "api", f"Api/Api/{route.body}")}


@pytest.mark.parametrize("variant", ["dev", "prod", "dev_upload"])
def test_routes_stream_through_a_stream_integration_unless_switched_off(variant, variants):
    """The inference and chat functions stream; the retrieval function's answers are JSON, buffered."""
    stage = UPLOAD_STAGE if variant == "dev_upload" else STAGES[variant]
    streaming = [variants[variant].logical_id("api", f"{name}/Function") for name in ("Inference", "Chat")]
    for method in by_type(variants[variant].raw("api"), "AWS::ApiGateway::Method").values():
        integration = method["Properties"]["Integration"]
        if integration["Type"] != "AWS_PROXY":
            continue
        uri = json.dumps(integration["Uri"])
        if stage.api.streaming and any(function in uri for function in streaming):
            assert integration["ResponseTransferMode"] == "STREAM"
            assert "/response-streaming-invocations" in uri
            assert integration["TimeoutInMillis"] == stage.api.stream_timeout_seconds * 1000
        else:
            assert integration.get("ResponseTransferMode", "BUFFERED") == "BUFFERED"
            assert "/response-streaming-invocations" not in uri and uri.endswith('/invocations"]]}')
            assert "TimeoutInMillis" not in integration  # API Gateway's default 29 s


def test_the_stream_wrapper_is_an_executable_file_of_the_function_asset(dev):
    asset = dev.properties("api", "Inference/Function")["Code"]["S3Key"].removesuffix(".zip")
    wrapper = dev.outdir / f"asset.{asset}" / STREAMING_WRAPPER.removeprefix("/var/task/")
    assert wrapper.is_file() and wrapper.stat().st_mode & 0o111 == 0o111
    assert wrapper.read_text().startswith("#!/bin/sh")


@pytest.mark.parametrize(("variant", "ttl"), [("dev", 60), ("prod", 300)])
def test_token_authorizer_reads_the_bearer_header_and_caches(variant, ttl, variants):
    authorizer = variants[variant].properties("api", "Api/Authorizer")
    assert authorizer["Type"] == "TOKEN"
    assert authorizer["IdentitySource"] == "method.request.header.Authorization"
    assert authorizer["IdentityValidationExpression"] == AUTHORIZATION_HEADER_REGEX
    assert authorizer["AuthorizerResultTtlInSeconds"] == ttl


def test_keys_the_admin_command_makes_pass_the_gateways_header_check(dev):
    """The key format has two readers: API Gateway's regex (a template) and the authorizer (Python). A key made
    by the admin code must pass the regex as deployed, or every key would be refused, and only in AWS."""
    expression = re.compile(dev.properties("api", "Api/Authorizer")["IdentityValidationExpression"])
    for _ in range(200):
        assert expression.fullmatch(f"Bearer {new_key()}")
    assert not expression.fullmatch("Bearer sk-llm-short")


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
        assert props["ApiStages"][0]["Stage"] == ref(variants[variant], "api", "Api/Api/DeploymentStage.v1")


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_stage_v1_logging_tracing_and_throttling(variant, variants):
    stage = only(variants[variant].raw("api"), "AWS::ApiGateway::Stage")
    config = STAGES[variant].api
    assert stage["StageName"] == "v1"
    assert stage["TracingEnabled"] is True
    assert variants[variant].logical_id("api", "Api/AccessLogs") in json.dumps(
        stage["AccessLogSetting"]["DestinationArn"]
    )
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
    logs = variants[variant].properties("api", "Api/AccessLogs")
    assert logs["KmsKeyId"] == arn_of(variants[variant], "api", "ApiKey")
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
    unknown_route = json.loads(responses["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"]["application/json"])
    assert all(f"{route.method} {route.path}" in unknown_route["error"]["message"] for route in ROUTES)
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"
    assert responses["THROTTLED"]["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    assert responses["QUOTA_EXCEEDED"]["StatusCode"] == "429"


def test_request_models_are_exactly_the_contract_schemas(dev):
    """API Gateway validates bodies with the same JSON schema the handler does (one home: the contract)."""
    template = dev.raw("api")
    validator = only(template, "AWS::ApiGateway::RequestValidator")
    assert validator["ValidateRequestBody"] is True
    bodies = {route.body for route in ROUTES if route.body}
    assert bodies and len(by_type(template, "AWS::ApiGateway::Model")) == len(bodies)
    for name in bodies:
        model = dev.properties("api", f"Api/Api/{name}")
        assert model["ContentType"] == "application/json"
        assert model["Schema"] == REQUEST_SCHEMAS[name]


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
    assert json.dumps(association["ResourceArn"]).count(prod.logical_id("api", "Api/Api/DeploymentStage.v1")) == 1
    logging = only(template, "AWS::WAFv2::LoggingConfiguration")
    assert logging["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}]
    assert "aws-waf-logs-llm-platform-prod-api" in json.dumps(logging["LogDestinationConfigs"])


def test_cors_only_for_configured_origins_and_the_web_apps_distribution(dev, prod):
    web_origin = "https://<the {} web app's distribution>"

    def options_origins(synth: Synth) -> set[str]:
        found = set()
        for method in by_type(synth.raw("api"), "AWS::ApiGateway::Method").values():
            props = method["Properties"]
            if props["HttpMethod"] == "OPTIONS":
                (response,) = props["Integration"]["IntegrationResponses"]
                found.add(
                    rendered(response["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"])
                )
                # Several origins: CDK's template echoes the request's Origin when it is one of the others.
                template = rendered(response.get("ResponseTemplates", {}).get("application/json", ""))
                found.update(f"echo {o}" for o in re.findall(r'\$origin == "([^"]+)"', template))
        # The distribution's domain name, imported from the web stack.
        return {re.sub(r"<import:llm-platform-(\w+)-web:\w*SiteDistribution\w*DomainName\w*>",
                       r"<the \1 web app's distribution>", origin) for origin in found}  # fmt: skip

    assert options_origins(dev) == {"'http://localhost:3000'", f"echo {web_origin.format('dev')}"}
    # Prod names no origin of its own: only the web app's.
    assert options_origins(prod) == {f"'{web_origin.format('prod')}'"}


@pytest.mark.parametrize("variant", ["dev", "prod", "dev_upload"])
def test_functions_runtime_layer_and_environment(variant, variants):
    stage = UPLOAD_STAGE if variant == "dev_upload" else STAGES[variant]
    concurrency = stage.api.reserved_concurrency
    template = Template.from_json(variants[variant].raw("api"))
    streaming = stage.api.streaming
    stream_timeout = stage.api.stream_timeout_seconds if streaming else 0
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambda_src.inference.handler.lambda_handler",
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            # Behind a STREAM integration the function lives as long as its stream may; else API Gateway's 29 s.
            "Timeout": stream_timeout or 29,
            "ReservedConcurrentExecutions": concurrency,
            "TracingConfig": {"Mode": "Active"},
            "Layers": [ref(variants[variant], "api", "Powertools/Layer")],
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "MODEL_PARAMETER_PATH": f"/llm-platform/{stage.name}/model",
                        "UPSTREAM_API_KEY_PARAMETER": f"/llm-platform/{stage.name}/secrets/upstream-api-key",
                        "POWERTOOLS_SERVICE_NAME": "llm-inference",
                        "STREAM_TIMEOUT_SECONDS": str(stream_timeout),
                        "AWS_LAMBDA_EXEC_WRAPPER": STREAMING_WRAPPER if streaming else Match.absent(),
                    }
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambda_src.authorizer.handler.lambda_handler",
            "Timeout": 5,
            "ReservedConcurrentExecutions": concurrency,
        },
    )


@pytest.mark.parametrize("package", ["inference", "authorizer"])
def test_function_packages_hold_their_package_and_the_shared_code_only(dev, package):
    path = f"{package.title()}/Function"
    asset = dev.properties("api", path)["Code"]["S3Key"].removesuffix(".zip")
    folder = dev.outdir / f"asset.{asset}"
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {f.split("/")[1] for f in files if f.count("/") > 1} == {package, "shared", "contracts"}
    assert f"lambda_src/{package}/handler.py" in files and "lambda_src/__init__.py" in files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)


def test_inference_policy_is_exact(dev):
    statements = _statements(dev, "Inference/Policy")
    assert sorted(json.dumps(s["Action"]) for s in statements) == sorted(json.dumps(a) for a in [
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
        "ssm:GetParametersByPath",
        "ssm:GetParameter",
        "kms:Decrypt",
        ["firehose:PutRecord", "firehose:PutRecordBatch"],
        ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
        ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"],
        ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
        "bedrock:ApplyGuardrail",
    ])  # fmt: skip
    # The stage's guardrail and nothing else: its ARN, exported by the config stack that builds it.
    (guardrail,) = _with_action(statements, "bedrock:ApplyGuardrail")
    assert re.fullmatch(r"llm-platform-dev-config:ExportsOutputFnGetAttGuardrail\w+GuardrailArn\w+",
                        guardrail["Resource"]["Fn::ImportValue"])  # fmt: skip
    # The model settings are read as one tree: Parameter Store authorizes that against the path alone.
    (by_path,) = _with_action(statements, "ssm:GetParametersByPath")
    assert json.dumps(by_path["Resource"]).endswith(':parameter/llm-platform/dev/model"]]}')
    (get_key,) = _with_action(statements, "ssm:GetParameter")
    assert json.dumps(get_key["Resource"]).endswith(':parameter/llm-platform/dev/secrets/upstream-api-key"]]}')
    (decrypt,) = _with_action(statements, "kms:Decrypt")
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Join": ["", ["ssm.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]
    }
    # The audit stream of this stage, and nothing else (the L2 grant_put_records landed in the managed policy).
    (firehose,) = _with_action(statements, ["firehose:PutRecord", "firehose:PutRecordBatch"])
    assert list(firehose["Resource"]) == ["Fn::ImportValue"]
    assert firehose["Resource"]["Fn::ImportValue"].startswith("llm-platform-dev-audit:")
    (bedrock,) = _with_action(statements, ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"])
    assert bedrock["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":bedrock:", {"Ref": "AWS::Region"},
                          "::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"]]
    }  # fmt: skip
    (logs,) = _with_action(statements, ["logs:CreateLogStream", "logs:PutLogEvents"])
    assert logs["Resource"] == arn_of(dev, "api", "Inference/Logs")
    # Budgets: a reservation and a settlement are each one transaction of two updates, GET /usage one batch read,
    # on the usage table only, under its key through DynamoDB only.
    (usage,) = _with_action(statements, ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"])
    assert usage["Resource"] == arn_of(dev, "api", "Usage/Table")
    (table_key,) = _with_action(statements, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"])
    assert table_key["Resource"] == arn_of(dev, "api", "ApiKey")
    assert "dynamodb." in json.dumps(table_key["Condition"]["StringEquals"]["kms:ViaService"])


def test_authorizer_policy_is_exact(dev):
    statements = _statements(dev, "Authorizer/Policy")
    assert _with_action(statements, "dynamodb:GetItem") == [
        {"Action": "dynamodb:GetItem", "Effect": "Allow", "Resource": arn_of(dev, "api", "Keys/Table")}
    ]
    assert _with_action(statements, "kms:Decrypt") == [
        {
            "Action": "kms:Decrypt",
            "Effect": "Allow",
            "Resource": arn_of(dev, "api", "ApiKey"),
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": {"Fn::Join": ["", ["dynamodb.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
                }
            },
        },
    ]
    assert len(statements) == 4  # + its own logs and X-Ray


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_function_roles_have_only_their_managed_policy(variant, variants):
    """Grants land in the function's customer-managed policy: no inline policy anywhere in the stack."""
    synth = variants[variant]
    template = synth.raw("api")
    assert by_type(template, "AWS::IAM::Policy") == {}
    for function in ("Inference", "Authorizer"):
        role = synth.properties("api", f"{function}/Role")
        assert "Policies" not in role and "ManagedPolicyArns" not in role
        assert synth.properties("api", f"{function}/Policy")["Roles"] == [ref(synth, "api", f"{function}/Role")]


def _arn_text(resource: Any) -> str:
    """An ARN built with Fn::Join as text, pseudo parameters as <Name>."""
    parts = resource["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else f"<{p['Ref'].removeprefix('AWS::')}>" for p in parts)


def test_inference_profiles_get_the_profile_and_its_models_only_through_it(tmp_path_factory):
    """IAM allows exactly the stage's model list: the model, its Bedrock fallbacks (an openai-compatible one needs
    none) and the models it may be switched to, for both functions that call a chat model."""
    model = dataclasses.replace(
        DEV.model, model_id="us.anthropic.claude-3-5-haiku-20241022-v1:0",
        additional_model_ids=("amazon.nova-lite-v1:0",),
        fallbacks=(FallbackModel("amazon.nova-micro-v1:0"),
                   FallbackModel("gpt-4o-mini", "openai-compatible", "https://api.openai.com/v1")),
        prices=(*DEV.model.prices,
                ModelPrice("gpt-4o-mini", 0.15, 0.6, "https://openai.com/api/pricing/", "2026-12-07")),
    )  # fmt: skip
    synth = synth_deployment(tmp_path_factory, Deployment(stage=dataclasses.replace(DEV, model=model)))
    assert synth.report.passed, synth.report.findings
    for function in ("Inference", "Chat"):
        statements = _with_action(_statements(synth, f"{function}/Policy"),
                                  ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"])  # fmt: skip
        arns = sorted(_arn_text(r) for st in statements for r in (st["Resource"] if isinstance(st["Resource"], list)
                                                                    else [st["Resource"]]))  # fmt: skip
        assert arns == sorted([
            "arn:<Partition>:bedrock:<Region>:<AccountId>:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
            # the profile's model in whichever region it routes to, only through the profile
            "arn:<Partition>:bedrock:*::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
            "arn:<Partition>:bedrock:<Region>::foundation-model/amazon.nova-micro-v1:0",
            "arn:<Partition>:bedrock:<Region>::foundation-model/amazon.nova-lite-v1:0"])  # fmt: skip
    fallbacks = synth.properties("config", "Model/Fallbacks")["Value"]
    assert json.loads(fallbacks) == [
        {"model_id": "amazon.nova-micro-v1:0", "provider": "bedrock", "upstream_base_url": ""},
        {"model_id": "gpt-4o-mini", "provider": "openai-compatible", "upstream_base_url": "https://api.openai.com/v1"},
    ]
    bedrock = _with_action(
        _statements(synth, "Inference/Policy"), ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    )
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
    synth = variants[variant]
    table = synth.resource("api", "Keys/Table")
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "key_hash", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"KMSMasterKeyId": arn_of(synth, "api", "ApiKey"), "SSEEnabled": True,
                                         "SSEType": "KMS"}  # fmt: skip
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["DeletionProtectionEnabled"] is protected
    assert table["DeletionPolicy"] == ("Retain" if protected else "Delete")


@pytest.mark.parametrize(("variant", "protected"), [("dev", False), ("prod", True)])
def test_the_usage_table_holds_counters_by_principal_and_period_encrypted_recoverable_and_expiring(
        variant, protected, variants):  # fmt: skip
    synth = variants[variant]
    table = synth.resource("api", "Usage/Table")
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": s.PRINCIPAL, "KeyType": "HASH"},
                                  {"AttributeName": s.PERIOD, "KeyType": "RANGE"}]  # fmt: skip
    assert props["BillingMode"] == "PAY_PER_REQUEST"  # no idle cost
    assert props["SSESpecification"] == {"KMSMasterKeyId": arn_of(synth, "api", "ApiKey"), "SSEEnabled": True,
                                         "SSEType": "KMS"}  # fmt: skip
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": s.EXPIRES_AT, "Enabled": True}
    assert props["DeletionProtectionEnabled"] is protected
    assert table["DeletionPolicy"] == ("Retain" if protected else "Delete")


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_each_plans_budget_and_the_usage_table_reach_the_functions(variant, variants):
    synth = variants[variant]
    stage = DEV if variant == "dev" else PROD
    inference = synth.properties("api", "Inference/Function")["Environment"]["Variables"]
    assert json.loads(inference["PLAN_BUDGETS"]) == {p.name: p.budget._asdict() for p in stage.api.usage_plans}
    assert inference["USAGE_TABLE_NAME"] == ref(synth, "api", "Usage/Table")
    chat = synth.properties("api", "Chat/Function")["Environment"]["Variables"]
    assert json.loads(chat["USER_BUDGET"]) == stage.chat.user_budget._asdict()
    assert chat["USAGE_TABLE_NAME"] == ref(synth, "api", "Usage/Table")


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_keys_are_found_by_id_through_an_index_of_table_keys_only(variant, variants):
    """revoke queries this index (tools/keys.py); adding it to a deployed table is an in-place update."""
    props = variants[variant].resource("api", "Keys/Table")["Properties"]
    assert props["GlobalSecondaryIndexes"] == [
        {"IndexName": KEY_ID_INDEX, "KeySchema": [{"AttributeName": "key_id", "KeyType": "HASH"}],
         "Projection": {"ProjectionType": "KEYS_ONLY"}}
    ]  # fmt: skip
    assert {"AttributeName": "key_id", "AttributeType": "S"} in props["AttributeDefinitions"]


def test_admin_tooling_parameters_and_outputs(dev):
    template = dev.raw("api")
    names = {p["Properties"]["Name"] for p in by_type(template, "AWS::SSM::Parameter").values()}
    assert names == {"/llm-platform/dev/api/key-table", "/llm-platform/dev/api/usage-table",
                     "/llm-platform/dev/api/usage-plans/standard",
                     "/llm-platform/dev/api/usage-plans/premium"}  # fmt: skip
    outputs = template["Outputs"]
    invoke_url = json.dumps(outputs["InvokeUrl"]["Value"])
    assert invoke_url.startswith(f'{{"Fn::Join": ["", ["https://", {json.dumps(ref(dev, "api", "Api/Api"))}')
    assert f'{json.dumps(ref(dev, "api", "Api/Api/DeploymentStage.v1"))}, "/"]]}}' in invoke_url  # .../v1/


def test_no_key_material_in_the_api_template(dev, prod):
    for synth in (dev, prod):
        assert KEY_PREFIX not in json.dumps(synth.raw("api")).replace(AUTHORIZATION_HEADER_REGEX, "")


def test_a_new_route_table_entry_becomes_a_method_with_its_model(monkeypatch):
    """Adding a route is one entry in the route table: the API construct builds its method, authorizer and
    request model from it (the function's side: tests/test_contracts.py)."""
    extra = Route("POST", "/translations", function="inference", operation="translations", body=PROMPT_REQUEST)
    monkeypatch.setattr(rest_api, "ROUTES", (*ROUTES, extra))
    stack = cdk.Stack(cdk.App(context=CDK_JSON_CONTEXT, builtin_cloud_formation_validation=False), "routes")
    code = lambda_.Code.from_inline("def handler(event, context): pass")

    def function(name: str) -> lambda_.Function:
        return lambda_.Function(stack, name, runtime=lambda_.Runtime.PYTHON_3_14, handler="index.handler", code=code)

    rest_api.InferenceApi(stack, "Api", props=rest_api.InferenceApiProps(
        stage_name="dev", api=DEV.api,
        functions={"inference": function("Inference"), "retrieval": function("Retrieval"), "chat": function("Chat")},
        user_pool=cognito.UserPool(stack, "Users"),
        authorizer=function("Authorizer"), log_key=kms.Key(stack, "Key"), log_retention_days=14, retain_logs=False,
    ))  # fmt: skip
    template = dict(Template.from_stack(stack).to_json())
    methods = {
        (m["Properties"]["HttpMethod"], route_path(template["Resources"], m["Properties"]["ResourceId"])): m
        for m in by_type(template, "AWS::ApiGateway::Method").values()
    }
    added = methods[("POST", "/translations")]["Properties"]
    assert added["AuthorizationType"] == "CUSTOM" and added["ApiKeyRequired"] is True
    model = logical_id_at(template, "routes/Api/Api/PromptRequest")
    assert added["RequestModels"] == {"application/json": {"Ref": model}}


def test_the_web_apps_origin_is_passed_as_a_deploy_time_value_and_allowed_beside_the_stages(monkeypatch):
    """The web app's origin (its distribution's domain, a token) joins the stage's CORS origins: the preflight
    answers it, as it would a literal origin."""
    stack = cdk.Stack(cdk.App(context=CDK_JSON_CONTEXT, builtin_cloud_formation_validation=False), "cors")
    code = lambda_.Code.from_inline("def handler(event, context): pass")

    def function(name: str) -> lambda_.Function:
        return lambda_.Function(stack, name, runtime=lambda_.Runtime.PYTHON_3_14, handler="index.handler", code=code)

    web = "https://" + cdk.Fn.import_value("llm-platform-dev-web:DistributionDomainName")
    rest_api.InferenceApi(stack, "Api", props=rest_api.InferenceApiProps(
        stage_name="dev", api=DEV.api, web_origins=(web,),
        functions={"inference": function("Inference"), "retrieval": function("Retrieval"), "chat": function("Chat")},
        user_pool=cognito.UserPool(stack, "Users"),
        authorizer=function("Authorizer"), log_key=kms.Key(stack, "Key"), log_retention_days=14, retain_logs=False,
    ))  # fmt: skip
    template = dict(Template.from_stack(stack).to_json())
    preflights = [m["Properties"] for m in by_type(template, "AWS::ApiGateway::Method").values()
                  if m["Properties"]["HttpMethod"] == "OPTIONS"]  # fmt: skip
    assert preflights
    for preflight in preflights:
        answer = json.dumps(preflight["Integration"]["IntegrationResponses"])
        assert "llm-platform-dev-web:DistributionDomainName" in answer and DEV.api.cors_allowed_origins[0] in answer


def test_the_retrieval_function_may_embed_with_titan_query_the_index_read_its_settings_and_audit_nothing_else(dev):
    """IAM exactly: the embedding model, a read of the index (QueryVectors with metadata needs GetVectors), the
    embedding parameters and the upstream key, the audit stream; no chat model, no write to the index."""
    found = dev.properties("api", "Retrieval/Policy")["PolicyDocument"]["Statement"]
    actions = sorted(tuple(sorted([s["Action"]] if isinstance(s["Action"], str) else s["Action"])) for s in found)
    assert actions == sorted([
        ("logs:CreateLogStream", "logs:PutLogEvents"), ("xray:PutTelemetryRecords", "xray:PutTraceSegments"),
        ("s3vectors:GetVectors", "s3vectors:QueryVectors"), ("kms:Decrypt",), ("ssm:GetParameter", "ssm:GetParameters"),
        ("ssm:GetParametersByPath",), ("ssm:GetParameter",), ("kms:Decrypt",), ("bedrock:InvokeModel",),
        ("firehose:PutRecord", "firehose:PutRecordBatch")])  # fmt: skip
    by_action = {json.dumps(s["Action"]): s for s in found}
    index = by_action[json.dumps(["s3vectors:GetVectors", "s3vectors:QueryVectors"])]["Resource"]
    assert "VectorsIndex" in json.dumps(index) and "IndexArn" in json.dumps(index)
    model = json.dumps(by_action['"bedrock:InvokeModel"']["Resource"])
    assert model.endswith('"::foundation-model/amazon.titan-embed-text-v2:0"]]}')
    by_path = json.dumps(by_action['"ssm:GetParametersByPath"']["Resource"])
    assert by_path.endswith(':parameter/llm-platform/dev/knowledge/embedding"]]}')
    decrypts = [s for s in found if s["Action"] == "kms:Decrypt"]
    services = sorted(json.dumps(s["Condition"]["StringEquals"]["kms:ViaService"]) for s in decrypts)
    assert ["s3vectors." in services[0], "ssm." in services[1]] == [True, True]
    environment = dev.properties("api", "Retrieval/Function")["Environment"]["Variables"]
    assert environment["DIMENSION"] == str(DEV.knowledge.dimension)
    assert environment["EMBEDDING_PARAMETER_PATH"] == "/llm-platform/dev/knowledge/embedding"
