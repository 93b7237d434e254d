"""The REST API: stage v1, one method per route of the route table (lambda_src/contracts/api.py) behind the
Bearer-key authorizer, usage plans, OpenAI-shaped gateway errors, request models from the routes' JSON
schemas, JSON access logs, X-Ray and optional CORS."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from constructs_lib.foundation.logs import encrypted_log_group
from constructs_lib.foundation.nag import acknowledge
from constructs_lib.inference.settings import ApiConfig
from lambda_src.contracts.api import AUTH_USER, CONTEXT_KEY_ID, ROUTES, SESSION_HEADER, STAGE_NAME, error_body
from lambda_src.contracts.gateway import ECHO_ORIGIN, GATEWAY_ERRORS, response_headers
from lambda_src.contracts.keys import AUTHORIZATION_HEADER_REGEX
from lambda_src.contracts.naming import resource_name
from lambda_src.contracts.schemas import REQUEST_SCHEMAS

# One line of JSON per request: who, what route, how it ended, how long; never a body or a header value.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "keyId": f"$context.authorizer.{CONTEXT_KEY_ID}",
    "sourceIp": "$context.identity.sourceIp",
    "method": "$context.httpMethod",
    "resource": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integrationLatency",
    "error": "$context.error.messageString",
    "authorizerError": "$context.authorizer.error",
    "wafResponse": "$context.wafResponseCode",
}

_SCHEMA_VERSIONS = {"http://json-schema.org/draft-04/schema#": apigw.JsonSchemaVersion.DRAFT4}
# JSON-schema keywords API Gateway models use, as the CDK's JsonSchema arguments.
_PASS_THROUGH = {"title", "required", "enum", "minimum", "maximum"}


def json_schema(schema: Mapping[str, Any]) -> apigw.JsonSchema:
    """A contract schema (plain dict) as the CDK's JsonSchema; a keyword it does not know fails the synth."""
    args: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$schema":
            args["schema"] = _SCHEMA_VERSIONS[value]
        elif key == "type":
            kinds = [getattr(apigw.JsonSchemaType, kind.upper()) for kind in (value if isinstance(value, list)
                                                                            else [value])]  # fmt: skip
            args["type"] = kinds if isinstance(value, list) else kinds[0]
        elif key == "properties":
            args["properties"] = {name: json_schema(child) for name, child in value.items()}
        elif key == "items":
            args["items"] = json_schema(value)
        elif key in ("minLength", "maxLength", "minItems", "maxItems", "exclusiveMinimum"):
            args[re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)] = value
        elif key in _PASS_THROUGH:
            args[key] = list(value) if isinstance(value, list) else value
        else:
            raise ValueError(f"JSON-schema keyword {key!r} has no API Gateway model mapping here.")
    return apigw.JsonSchema(**args)


@dataclass(frozen=True, kw_only=True)
class InferenceApiProps:
    stage_name: str
    api: ApiConfig
    # Function package name (Route.function) -> the function serving its routes.
    functions: Mapping[str, lambda_.IFunction]
    authorizer: lambda_.IFunction
    log_key: kms.IKey
    log_retention_days: int
    retain_logs: bool
    # Functions (keys of ``functions``) whose routes stream: a STREAM integration with the stage's stream
    # timeout. Such a function must frame every answer (lambda_src/shared/runtime): API Gateway turns an
    # unframed one into a 500.
    streaming_functions: frozenset[str] = frozenset()
    # The user pool whose ID tokens the user routes (Route.auth == "user") take: a Cognito authorizer on them.
    user_pool: cognito.IUserPool | None = None
    # Browser origins beside the stage's ``cors_allowed_origins``: deploy-time values such as a CloudFront
    # distribution's ``https://`` + domain name (a token), passed from the construct rather than copied.
    web_origins: tuple[str, ...] = ()

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return (*self.api.cors_allowed_origins, *self.web_origins)

    def __post_init__(self) -> None:
        missing = sorted({route.function for route in ROUTES} - set(self.functions))
        if missing:
            raise ValueError(f"InferenceApiProps.functions needs the function(s) {missing} the route table names.")
        unknown = sorted(self.streaming_functions - set(self.functions))
        if unknown:
            raise ValueError(f"InferenceApiProps.streaming_functions names {unknown}, which are not in functions.")
        if self.user_pool is None and any(route.auth == AUTH_USER for route in ROUTES):
            raise ValueError("InferenceApiProps.user_pool is needed: the route table has routes for signed-in users.")


class InferenceApi(Construct):
    """Attributes: ``rest_api``, ``api_name`` (its name: the ApiName of its CloudWatch metrics, unique per stage),
    ``stage``, ``usage_plans`` (name -> UsagePlan), ``access_logs``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: InferenceApiProps) -> None:
        super().__init__(scope, construct_id)
        config = props.api
        self.api_name = resource_name(props.stage_name, "api")
        self.access_logs = encrypted_log_group(
            self, "AccessLogs", key=props.log_key, retention_days=props.log_retention_days, retain=props.retain_logs
        )
        cors = None
        if props.cors_origins:
            cors = apigw.CorsOptions(
                allow_origins=list(props.cors_origins),
                allow_methods=[*sorted({route.method for route in ROUTES}), "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", SESSION_HEADER],
                max_age=cdk.Duration.hours(1),
            )
        self.rest_api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=self.api_name,
            description=f"LLM platform inference API ({props.stage_name})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # The authorizer hands API Gateway the caller's key: usage plans throttle and cap each key.
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            # Execution logging uses the account's API Gateway CloudWatch role, which is one per account and
            # region: the account stack owns it (stacks/account_stack.py), never a stage's API.
            cloud_watch_role=False,
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
        self._gateway_responses(cors=bool(props.cors_origins))

        authorizer = apigw.TokenAuthorizer(
            self,
            "Authorizer",
            handler=props.authorizer,
            identity_source=apigw.IdentitySource.header("Authorization"),
            validation_regex=AUTHORIZATION_HEADER_REGEX,
            results_cache_ttl=cdk.Duration.seconds(config.authorizer_cache_seconds),
        )
        users = None
        if props.user_pool is not None:
            # The user pool's ID tokens (signature, issuer, audience = an app client of the pool, expiry), cached
            # per token like the key authorizer's answers.
            users = apigw.CognitoUserPoolsAuthorizer(
                self,
                "UserAuthorizer",
                cognito_user_pools=[props.user_pool],
                identity_source=apigw.IdentitySource.header("Authorization"),
                results_cache_ttl=cdk.Duration.seconds(config.authorizer_cache_seconds),
            )
        validator = self.rest_api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        models = {
            name: self.rest_api.add_model(name, content_type="application/json", schema=json_schema(schema))
            for name, schema in REQUEST_SCHEMAS.items()
            if any(route.body == name for route in ROUTES)
        }
        integrations = {name: self._integration(fn, streaming=name in props.streaming_functions, config=config)
                        for name, fn in props.functions.items()}  # fmt: skip
        for route in ROUTES:
            resource = self.rest_api.root.resource_for_path(route.path)
            model = models[route.body] if route.body else None
            user_route = route.auth == AUTH_USER
            method = resource.add_method(
                route.method,
                integrations[route.function],
                authorizer=users if user_route else authorizer,
                authorization_type=apigw.AuthorizationType.COGNITO if user_route else apigw.AuthorizationType.CUSTOM,
                # Required on key routes so the usage plan of the authorizer's key applies; a user has no API key.
                api_key_required=not user_route,
                request_validator=validator if model else None,
                request_models={"application/json": model} if model else None,
            )
            if not user_route:
                acknowledge(
                    method,
                    "API clients (the OpenAI SDKs, services) authenticate with API keys checked by the Lambda TOKEN "
                    "authorizer, throttled and capped by usage plans; the user pool's authorizer is on the routes for "
                    "signed-in users.",
                    ["AwsSolutions-COG4"],
                )
        self._acknowledge_stage_and_role(config, streaming=bool(props.streaming_functions))

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

    @staticmethod
    def _integration(function: lambda_.IFunction, *, streaming: bool, config: ApiConfig) -> apigw.LambdaIntegration:
        if not streaming:
            return apigw.LambdaIntegration(function, proxy=True)
        # The response-streaming invocation: chunks reach the caller as the function sends them, for up to the
        # stage's stream timeout (the function's own timeout is the same).
        return apigw.LambdaIntegration(function, proxy=True, response_transfer_mode=apigw.ResponseTransferMode.STREAM,
                                       timeout=cdk.Duration.seconds(config.stream_timeout_seconds))  # fmt: skip

    def _gateway_responses(self, *, cors: bool) -> None:
        for response_type, (status, error_type, code, message) in GATEWAY_ERRORS.items():
            self.rest_api.add_gateway_response(
                f"{response_type.title().replace('_', '')}Response",
                # CloudFormation's DEFAULT_4XX is the CDK enum's DEFAULT_4_XX.
                type=getattr(apigw.ResponseType, response_type.replace("4XX", "4_XX").replace("5XX", "5_XX")),
                status_code=status,
                # Static values are quoted; the echoed Origin is a mapping from the request.
                response_headers={
                    name: value if value == ECHO_ORIGIN else f"'{value}'"
                    for name, value in response_headers(status, cors=cors).items()
                },
                templates={"application/json": json.dumps(error_body(message, error_type, code))},
            )

    def _acknowledge_stage_and_role(self, config: ApiConfig, *, streaming: bool) -> None:
        stage = self.stage
        no_cache = ("Responses are one caller's model output and must never be cached or served to another caller, "
                    "so the stage has no response cache to encrypt.")  # fmt: skip
        if streaming:
            no_cache += " The streaming (STREAM) integrations rule a cache out anyway: API Gateway cannot cache them."
        acknowledge(
            stage,
            no_cache,
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
