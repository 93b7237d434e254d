"""API Gateway: `Authorizer`, `Stage` and `UsagePlan`, which moto's CloudFormation does not model, and a
`Method` that keeps its authorizer and accepts MOCK integrations (CORS preflight)."""

from __future__ import annotations

from typing import Any

from moto.apigateway.models import Method, apigateway_backends

from tools.local.emulator.cloudformation import register_model


def _backend(account: str, region: str) -> Any:
    return apigateway_backends[account][region]


def _authorizer(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    authorizer = _backend(account, region).create_authorizer(
        properties["RestApiId"],
        properties.get("Name", name),
        properties["Type"],
        provider_arns=properties.get("ProviderARNs"),  # a COGNITO_USER_POOLS authorizer's pools
        authorizer_uri=properties.get("AuthorizerUri"),
        identity_source=properties.get("IdentitySource"),
        identiy_validation_expression=properties.get("IdentityValidationExpression"),
        authorizer_result_ttl=properties.get("AuthorizerResultTtlInSeconds"),
    )
    return authorizer.id, {"AuthorizerId": authorizer.id}


def _stage(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    _backend(account, region).create_stage(
        properties["RestApiId"],
        properties["StageName"],
        getattr(properties["DeploymentId"], "id", properties["DeploymentId"]),  # moto's Ref gives the object
        variables=properties.get("Variables"),
        description=properties.get("Description", ""),
        tracing_enabled=properties.get("TracingEnabled"),
    )
    return properties["StageName"], {}


def _usage_plan(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    throttle = properties.get("Throttle") or {}
    quota = properties.get("Quota") or {}
    plan = _backend(account, region).create_usage_plan(
        {
            "name": properties.get("UsagePlanName", name),
            "description": properties.get("Description"),
            "apiStages": [{"apiId": s["ApiId"], "stage": s["Stage"]} for s in properties.get("ApiStages", [])],
            "throttle": {"burstLimit": throttle.get("BurstLimit"), "rateLimit": throttle.get("RateLimit")},
            "quota": {"limit": quota.get("Limit"), "period": quota.get("Period"), "offset": quota.get("Offset", 0)},
        }
    )
    return plan.id, {"Id": plan.id}


def _method(properties: dict[str, Any], account: str, region: str) -> Any:
    """moto's own Method model drops the authorizer and fails on integrations without an HTTP method."""
    backend = _backend(account, region)
    api_id, resource_id, verb = properties["RestApiId"], properties["ResourceId"], properties["HttpMethod"]
    method = backend.put_method(
        function_id=api_id,
        resource_id=resource_id,
        method_type=verb,
        authorization_type=properties.get("AuthorizationType", "NONE"),
        api_key_required=properties.get("ApiKeyRequired"),
        request_parameters=properties.get("RequestParameters"),
        request_models=properties.get("RequestModels"),
        authorizer_id=properties.get("AuthorizerId"),
        request_validator_id=properties.get("RequestValidatorId"),
    )
    integration = properties.get("Integration") or {}
    backend.put_integration(
        function_id=api_id,
        resource_id=resource_id,
        method_type=verb,
        integration_type=integration.get("Type", "MOCK"),
        uri=integration.get("Uri"),
        integration_method=integration.get("IntegrationHttpMethod"),
        request_templates=integration.get("RequestTemplates"),
    )
    return method


def install() -> None:
    register_model("AWS::ApiGateway::Authorizer", "apigateway", _authorizer)
    register_model("AWS::ApiGateway::Stage", "apigateway", _stage)
    register_model("AWS::ApiGateway::UsagePlan", "apigateway", _usage_plan)
    Method.create_from_cloudformation_json = classmethod(
        lambda cls, name, cfn, account, region, **kw: _method(cfn["Properties"], account, region)
    )
