"""The REST API in front of the inference function: stage v1, Bearer-key authorizer, usage plans,
OpenAI-shaped gateway errors, request validation, JSON access logs, X-Ray and optional CORS."""

from __future__ import annotations

import json
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from constructs_lib.api_contract import (
    ACCESS_LOG_FORMAT,
    AUTHORIZATION_HEADER_REGEX,
    GATEWAY_ERRORS,
    RETRY_AFTER_SECONDS,
    STAGE_NAME,
)
from constructs_lib.defaults import encrypted_log_group
from constructs_lib.nag import acknowledge
from stacks.stages import ApiConfig

CHAT_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="ChatCompletionRequest",
    type=apigw.JsonSchemaType.OBJECT,
    required=["messages"],
    properties={
        "model": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, max_length=256),
        "messages": apigw.JsonSchema(
            type=apigw.JsonSchemaType.ARRAY,
            min_items=1,
            max_items=256,
            items=apigw.JsonSchema(
                type=apigw.JsonSchemaType.OBJECT,
                required=["role", "content"],
                properties={
                    "role": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING,
                                             enum=["system", "developer", "user", "assistant"]),
                    "content": apigw.JsonSchema(type=[apigw.JsonSchemaType.STRING, apigw.JsonSchemaType.ARRAY]),
                },
            ),
        ),
        "temperature": apigw.JsonSchema(type=apigw.JsonSchemaType.NUMBER, minimum=0, maximum=1),
        "top_p": apigw.JsonSchema(type=apigw.JsonSchemaType.NUMBER, minimum=0, maximum=1),
        "max_tokens": apigw.JsonSchema(type=apigw.JsonSchemaType.INTEGER, minimum=1),
        "stream": apigw.JsonSchema(type=apigw.JsonSchemaType.BOOLEAN),
        "user": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, max_length=256),
    },
)  # fmt: skip
PROMPT_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="PromptRequest",
    type=apigw.JsonSchemaType.OBJECT,
    required=["prompt"],
    properties={"prompt": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1)},
)


@dataclass(frozen=True, kw_only=True)
class InferenceApiProps:
    stage_name: str
    api: ApiConfig
    handler: lambda_.IFunction
    authorizer: lambda_.IFunction
    log_key: kms.IKey
    log_retention_days: int
    retain_logs: bool


class InferenceApi(Construct):
    """Attributes: ``rest_api``, ``stage``, ``usage_plans`` (name -> UsagePlan), ``access_logs``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: InferenceApiProps) -> None:
        super().__init__(scope, construct_id)
        config = props.api
        self.access_logs = encrypted_log_group(
            self, "AccessLogs", key=props.log_key, retention_days=props.log_retention_days, retain=props.retain_logs
        )
        cors = None
        if config.cors_allowed_origins:
            cors = apigw.CorsOptions(
                allow_origins=list(config.cors_allowed_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "X-Session-Id"],
                max_age=cdk.Duration.hours(1),
            )
        self.rest_api = apigw.RestApi(
            self,
            "Api",
            description=f"LLM platform inference API ({props.stage_name})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # The authorizer hands API Gateway the caller's key: usage plans throttle and cap each key.
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            # Execution logging needs the account-level CloudWatch role; kept when the stack goes.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            default_cors_preflight_options=cors,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                tracing_enabled=True,
                metrics_enabled=True,
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
            ),
        )
        self.stage = self.rest_api.deployment_stage
        for response_type, (status, error_type, code, message) in GATEWAY_ERRORS.items():
            headers = {"Content-Type": "'application/json'"}
            if status == "429":
                headers["Retry-After"] = f"'{RETRY_AFTER_SECONDS}'"
            self.rest_api.add_gateway_response(
                f"{response_type.title().replace('_', '')}Response",
                # CloudFormation's DEFAULT_4XX is the CDK enum's DEFAULT_4_XX.
                type=getattr(apigw.ResponseType, response_type.replace("4XX", "4_XX").replace("5XX", "5_XX")),
                status_code=status,
                response_headers=headers,
                templates={
                    "application/json": json.dumps(
                        {"error": {"message": message, "type": error_type, "code": code, "param": None}}
                    )
                },
            )

        authorizer = apigw.TokenAuthorizer(
            self,
            "Authorizer",
            handler=props.authorizer,
            identity_source=apigw.IdentitySource.header("Authorization"),
            validation_regex=AUTHORIZATION_HEADER_REGEX,
            results_cache_ttl=cdk.Duration.seconds(config.authorizer_cache_seconds),
        )
        validator = self.rest_api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        chat_model = self.rest_api.add_model("ChatRequest", content_type="application/json", schema=CHAT_SCHEMA)
        prompt_model = self.rest_api.add_model("PromptRequest", content_type="application/json", schema=PROMPT_SCHEMA)
        integration = apigw.LambdaIntegration(props.handler, proxy=True)

        def secured(resource: apigw.IResource, http_method: str, model: apigw.IModel | None = None) -> None:
            resource.add_method(
                http_method,
                integration,
                authorizer=authorizer,
                authorization_type=apigw.AuthorizationType.CUSTOM,
                # Required so the usage plan of the authorizer's key applies.
                api_key_required=True,
                request_validator=validator if model else None,
                request_models={"application/json": model} if model else None,
            )

        root = self.rest_api.root
        secured(root.add_resource("models"), "GET")
        secured(root.add_resource("chat").add_resource("completions"), "POST", chat_model)
        secured(root.add_resource("model"), "POST", prompt_model)
        for method in self.rest_api.methods:
            if method.http_method != "OPTIONS":
                acknowledge(
                    method,
                    "Callers authenticate with API keys checked by the Lambda TOKEN authorizer (what OpenAI "
                    "clients send); the platform has no Cognito user pool to attach.",
                    ["AwsSolutions-COG4"],
                )
        self._acknowledge_stage_and_role(config)

        self.usage_plans: dict[str, apigw.UsagePlan] = {}
        for plan in config.usage_plans:
            self.usage_plans[plan.name] = self.rest_api.add_usage_plan(
                f"{plan.name.title().replace('-', '')}Plan",
                name=f"{cdk.Stack.of(self).stack_name}-{plan.name}",
                description=f"{plan.name}: {plan.rate_limit}/s, burst {plan.burst_limit}, {plan.daily_quota}/day",
                throttle=apigw.ThrottleSettings(rate_limit=plan.rate_limit, burst_limit=plan.burst_limit),
                quota=apigw.QuotaSettings(limit=plan.daily_quota, period=apigw.Period.DAY),
                api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.stage)],
            )

    def _acknowledge_stage_and_role(self, config: ApiConfig) -> None:
        stage = self.stage
        acknowledge(
            stage,
            "Responses are one caller's model output and must never be cached or served to another "
            "caller, so the stage has no response cache to encrypt.",
            ["NIST.800.53.R5-APIGWCacheEnabledAndEncrypted", "HIPAA.Security-APIGWCacheEnabledAndEncrypted",
             "PCI.DSS.321-APIGWCacheEnabledAndEncrypted"],
        )  # fmt: skip
        acknowledge(
            stage,
            "Backend client certificates authenticate API Gateway to HTTP backends; the only backend here "
            "is a Lambda proxy integration, invoked through IAM.",
            ["NIST.800.53.R5-APIGWSSLEnabled", "HIPAA.Security-APIGWSSLEnabled", "PCI.DSS.321-APIGWSSLEnabled"],
        )
        if not config.waf_enabled:
            acknowledge(
                stage,
                "The stage config turns the WAF off for this stage (it is on in prod) to avoid the web ACL's "
                "fixed monthly cost; the authorizer, usage plans and stage throttling still apply.",
                ["AwsSolutions-APIG3", "NIST.800.53.R5-APIGWAssociatedWithWAF", "PCI.DSS.321-APIGWAssociatedWithWAF"],
            )
        role = self.rest_api.node.try_find_child("CloudWatchRole")
        if role is not None:
            acknowledge(
                role,
                "API Gateway's account-level logging role uses the AWS managed policy the service maintains "
                "for exactly that purpose (writing its own execution logs to CloudWatch Logs).",
                ["AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                 "AmazonAPIGatewayPushToCloudWatchLogs]"],
            )  # fmt: skip
