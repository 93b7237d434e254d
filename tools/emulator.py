"""The AWS emulator behind `make local-deploy`: moto's server on 127.0.0.1 with the gaps it has closed.

    .venv-local/bin/python -m tools.emulator --port 5000

moto 5.2.5 deploys CloudFormation templates, but not these ones as they are. The templates are deployed
unchanged; the emulator is adjusted instead, and nothing here runs outside the local targets:
(a) tagged `AWS::KMS::Key` and `AWS::SSM::Parameter` fail (CloudFormation's tag shapes reach backends that
    expect another): the tags are converted;
(b) Lambda functions only run in Docker: Python functions run on the host with tools/local_runtime.py (the
    deployed code and layers, the function's own environment, AWS_ENDPOINT_URL pointing back here); CDK's
    own Node.js providers (S3 auto-delete in dev) are answered SUCCESS unrun, as they only act on deletion;
(c) custom resources are told to answer at http://host.docker.internal: 127.0.0.1 instead;
(d) `AWS::KinesisFirehose::DeliveryStream`, `AWS::ApiGateway::Authorizer`, `Stage` and `UsagePlan` are not
    modelled, and `AWS::ApiGateway::Method` drops its authorizer and fails on MOCK integrations: each is
    created through moto's own service backend.
Still skipped (template assertions cover them): bucket policies, Glue, Athena, WAF, gateway responses,
request validators and models, log streams, the API Gateway account.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from typing import Any

from moto import settings
from moto.apigateway.models import Method, apigateway_backends
from moto.awslambda import models as lambda_models
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel
from moto.firehose.models import firehose_backends
from moto.kms import models as kms_models
from moto.server import main as moto_main
from moto.ssm import models as ssm_models

from tools.local_runtime import FunctionError, Worker, lambda_environment, unpack

_REGISTERED_MODELS: list[type] = []


def _answer_custom_resource(event: dict[str, Any], status: str, reason: str) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": {},
        }
    ).encode()
    # As CloudFormation's pre-signed URL expects: no content type (moto reads a form-encoded body as a query).
    request = urllib.request.Request(  # noqa: S310 - the emulator's own 127.0.0.1 URL
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - 127.0.0.1 only
        pass


def _convert_tags(model: Any, convert: Any) -> None:
    create = model.create_from_cloudformation_json.__func__

    def create_with_tags(cls: Any, /, name: str, cfn: dict[str, Any], account: str, region: str, **kw: Any) -> Any:
        properties = cfn.get("Properties", {})
        if properties.get("Tags"):
            properties["Tags"] = convert(properties["Tags"])
        return create(cls, name, cfn, account, region, **kw)

    model.create_from_cloudformation_json = classmethod(create_with_tags)


def install_patches(port: int) -> None:
    endpoint = f"http://localhost:{port}"
    settings.moto_server_host = lambda: "http://127.0.0.1"  # (c)
    os.environ["MOTO_PORT"] = str(port)

    # (a) CloudFormation's tag shapes -> the ones moto's service backends take.
    _convert_tags(kms_models.Key, lambda tags: [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tags])
    _convert_tags(ssm_models.Parameter, lambda tags: [{"Key": k, "Value": v} for k, v in tags.items()])

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> bytes:  # (b)
        event = json.loads(body) if body else {}
        print(f"emulator: invoking {self.function_name} ({self.run_time})", file=sys.stderr, flush=True)
        if not str(self.run_time).startswith("python"):
            if isinstance(event, dict) and "ResponseURL" in event:
                _answer_custom_resource(event, "SUCCESS", f"{self.run_time} provider not run by the local emulator")
                return b"null"
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {"errorMessage": f"The local emulator runs Python functions only ({self.run_time})"}
            ).encode()
        backend = lambda_models.lambda_backends[self.account_id][self.region]
        layers = [unpack(backend.layers_versions_by_arn(layer["Arn"]).code_bytes) for layer in self.layers]
        worker = Worker(
            handler=self.handler,
            code_dir=unpack(self.code_bytes),
            layers=layers,
            environment=lambda_environment(self.get_configuration(), endpoint, self.region),
            timeout_seconds=int(self.timeout),
            log=sys.stderr,
        )
        try:
            return json.dumps(worker.invoke(event)).encode()
        except FunctionError as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorMessage": str(error)}).encode()
        finally:
            worker.close()

    lambda_models.LambdaFunction.invoke = invoke
    _register_models()


def _model(cfn_type: str, service: str, create: Any) -> None:
    """Teach moto's CloudFormation one resource type: `create(properties, account, region, name)` makes it
    through moto's own service backend and returns (physical id, {attribute: value})."""

    class Model(CloudFormationModel):  # type: ignore[misc]
        __module__ = f"moto.{service}.models"  # moto's metaclass files a model under the service of its module

        def __init__(self, physical_id: str, attributes: dict[str, str]) -> None:
            self._physical_id = physical_id
            self._attributes = attributes

        @staticmethod
        def cloudformation_type() -> str:
            return cfn_type

        @property
        def physical_resource_id(self) -> str:
            return self._physical_id

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return True

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name in self._attributes:
                return self._attributes[attribute_name]
            raise UnformattedGetAttTemplateException()

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:
            return cls(*create(cloudformation_json.get("Properties", {}), account_id, region_name, resource_name))

    # moto finds models through __subclasses__(), which holds them weakly: keep each one alive.
    _REGISTERED_MODELS.append(Model)
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def _delivery_stream(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    backend = firehose_backends[account][region]
    name = properties.get("DeliveryStreamName") or name
    unused = ("s3", "redshift", "elasticsearch", "splunk", "http_endpoint", "snowflake", "iceberg")
    backend.create_delivery_stream(
        region,
        delivery_stream_name=name,
        delivery_stream_type=properties.get("DeliveryStreamType", "DirectPut"),
        kinesis_stream_source_configuration=None,
        delivery_stream_encryption_configuration_input=properties.get("DeliveryStreamEncryptionConfigurationInput"),
        extended_s3_destination_configuration=properties.get("ExtendedS3DestinationConfiguration"),
        tags=properties.get("Tags", []),
        **{f"{key}_destination_configuration": None for key in unused},
    )
    return name, {"Arn": backend.delivery_streams[name].delivery_stream_arn}


def _apigateway(account: str, region: str) -> Any:
    return apigateway_backends[account][region]


def _authorizer(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    authorizer = _apigateway(account, region).create_authorizer(
        properties["RestApiId"],
        properties.get("Name", name),
        properties["Type"],
        authorizer_uri=properties.get("AuthorizerUri"),
        identity_source=properties.get("IdentitySource"),
        identiy_validation_expression=properties.get("IdentityValidationExpression"),
        authorizer_result_ttl=properties.get("AuthorizerResultTtlInSeconds"),
    )
    return authorizer.id, {"AuthorizerId": authorizer.id}


def _stage(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    _apigateway(account, region).create_stage(
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
    plan = _apigateway(account, region).create_usage_plan(
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
    backend = _apigateway(account, region)
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


def _register_models() -> None:
    """(d) The resource types the platform needs that moto's CloudFormation lacks or drops details of."""
    _model("AWS::KinesisFirehose::DeliveryStream", "firehose", _delivery_stream)
    _model("AWS::ApiGateway::Authorizer", "apigateway", _authorizer)
    _model("AWS::ApiGateway::Stage", "apigateway", _stage)
    _model("AWS::ApiGateway::UsagePlan", "apigateway", _usage_plan)
    Method.create_from_cloudformation_json = classmethod(
        lambda cls, name, cfn, account, region, **kw: _method(cfn["Properties"], account, region)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    install_patches(args.port)
    moto_main(["--host", "127.0.0.1", "--port", str(args.port)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
