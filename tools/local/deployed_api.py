"""The REST API as deployed in the emulator, served by host-Python Lambda environments: its routes, the
authorizer, each function's configuration and the usage plans are read from the emulator, the code assets
from the bootstrap bucket, what API Gateway answers itself (CORS preflights, the stage's throttle, gateway
responses) from the deployed template: exactly what `cdk deploy` put there."""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from lambda_src.contracts.api import STAGE_NAME
from tools.local.assembly import gateway_responses, preflights, resolve_imports, stage_throttle
from tools.local.deploy import REGION
from tools.local.emf import EmfForwarder, through_api
from tools.local.gateway import Answer, Preflight, Throttle, UsagePlan
from tools.local.processes import LocalError
from tools.local.runtime import FunctionError, Worker, lambda_environment, unpack
from tools.local.streaming_worker import StreamingPool, StreamingWorker


@dataclass
class DeployedApi:
    """The dev stage's REST API as deployed in the emulator, served by host-Python Lambda environments."""

    api_id: str
    routes: dict[str, dict[str, str]]  # path -> verb -> function name
    authorizer: str  # function name
    preflights: dict[str, Preflight] = field(default_factory=dict)  # path -> OPTIONS answer (CORS)
    stage_throttle: Throttle | None = None
    responses: dict[str, Answer] = field(default_factory=dict)  # gateway responses by type
    workers: dict[str, Worker | StreamingPool] = field(default_factory=dict)
    # Resource paths whose integration is a STREAM one (the response-streaming invocation URI).
    streaming_routes: frozenset[str] = frozenset()
    # The TOKEN authorizer's result TTL (API Gateway caches its policy per token).
    authorizer_cache_seconds: int = 0
    # (resource path, method) of the routes behind the user pool's (COGNITO_USER_POOLS) authorizer, and its pool.
    user_routes: frozenset[tuple[str, str]] = frozenset()
    user_pool_id: str | None = None

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        worker = self.workers[function]
        if isinstance(worker, StreamingPool):
            raise LocalError(f"{function} streams (AWS_LAMBDA_EXEC_WRAPPER) but is behind a buffered integration.")
        try:
            return worker.invoke(event)
        except FunctionError as error:
            # API Gateway reads a TOKEN authorizer's "Unauthorized" error as a 401.
            raise RuntimeError("Unauthorized" if str(error).endswith(": Unauthorized") else str(error)) from None

    def invoke_stream(self, function: str, event: dict[str, Any]) -> Iterable[bytes]:
        """A response-streaming invocation: the function's raw output as it arrives. A function on the managed
        runtime answers with its JSON result, which is not a framed HTTP response (API Gateway: 500)."""
        worker = self.workers[function]
        try:
            if isinstance(worker, StreamingPool):
                return worker.invoke(event)
            return [json.dumps(worker.invoke(event)).encode()]
        except FunctionError as error:
            raise RuntimeError(str(error)) from None

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()


# Environments of a streaming function run at once when its configuration has no reserved concurrency.
LOCAL_CONCURRENCY = 4
_FUNCTION_ARN = re.compile(r"functions/(arn:[^/]+:function:[^/]+)/(?:response-streaming-)?invocations")


def read_deployed_api(client: Any, port: int, stack: str, log: TextIO) -> DeployedApi:
    """The REST API of ``stack`` (the stack holding the API's routes in the cloud assembly)."""
    cfn, apigw, lam, s3 = (client(name) for name in ("cloudformation", "apigateway", "lambda", "s3"))
    toolkit = cfn.describe_stack_resources(StackName="CDKToolkit")["StackResources"]
    assets = next(r["PhysicalResourceId"] for r in toolkit if r.get("LogicalResourceId") == "StagingBucket")
    # moto lists resources it did not model without ids: skip those.
    resources = [r for r in cfn.describe_stack_resources(StackName=stack)["StackResources"] if "ResourceType" in r]
    api_id = next(r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::ApiGateway::RestApi")
    template = deployed_template(cfn, stack)
    logical_ids = {r.get("PhysicalResourceId"): r["LogicalResourceId"] for r in resources}

    def layer_keys(function: str) -> list[str]:
        # The deployed template's Layers (a Ref to each LayerVersion, whose code is in the bootstrap bucket).
        properties = template["Resources"][logical_ids[function]]["Properties"]
        return [
            template["Resources"][ref["Ref"]]["Properties"]["Content"]["S3Key"] for ref in properties.get("Layers", [])
        ]

    routes: dict[str, dict[str, str]] = {}
    streaming: set[str] = set()
    users: set[tuple[str, str]] = set()
    authorizer_ids = set()
    for resource in apigw.get_resources(restApiId=api_id)["items"]:
        for verb in resource.get("resourceMethods", {}):
            method = apigw.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=verb)
            integration = method.get("methodIntegration", {})
            if integration.get("type") != "AWS_PROXY":
                continue  # CORS preflight (MOCK) answers
            arn = _FUNCTION_ARN.search(integration["uri"])
            if arn is None or not method.get("authorizerId"):
                raise LocalError(f"{verb} {resource['path']} is not a Lambda proxy route behind an authorizer.")
            routes.setdefault(resource["path"], {})[verb] = arn.group(1).rsplit(":", 1)[1]
            if "/response-streaming-invocations" in integration["uri"]:
                streaming.add(resource["path"])
            if method.get("authorizationType") == "COGNITO_USER_POOLS":
                users.add((resource["path"], verb))
            else:
                authorizer_ids.add(method["authorizerId"])
    (authorizer_id,) = authorizer_ids  # the TOKEN authorizer of every key route
    found = _FUNCTION_ARN.search(apigw.get_authorizer(restApiId=api_id, authorizerId=authorizer_id)["authorizerUri"])
    if found is None:
        raise LocalError("The API's key authorizer is not a Lambda function.")
    cognito = [a for a in apigw.get_authorizers(restApiId=api_id)["items"] if a.get("type") == "COGNITO_USER_POOLS"]
    pools = {arn.rsplit("/", 1)[1] for authorizer in cognito for arn in authorizer.get("providerARNs") or []}
    if len(pools) > 1:
        raise LocalError(f"The local gateway serves one user pool; the API names {sorted(pools)}.")
    declared = resolved_resources(cfn, template)
    api = DeployedApi(
        api_id=api_id,
        routes=routes,
        authorizer=found.group(1).rsplit(":", 1)[1],
        preflights=preflights(declared),
        stage_throttle=stage_throttle(declared, STAGE_NAME),
        responses=gateway_responses(declared),
        streaming_routes=frozenset(streaming),
        authorizer_cache_seconds=int(
            apigw.get_authorizer(restApiId=api_id, authorizerId=authorizer_id).get("authorizerResultTtlInSeconds") or 0
        ),
        user_routes=frozenset(users),
        user_pool_id=next(iter(pools), None),
    )

    def code(key: str) -> bytes:
        return bytes(s3.get_object(Bucket=assets, Key=key)["Body"].read())

    # CloudWatch Logs' part: the EMF lines the functions write become metrics in the emulator they talk to.
    metrics = EmfForwarder(through_api(client("cloudwatch")))
    for name in {api.authorizer, *(f for verbs in routes.values() for f in verbs.values())}:
        function = lam.get_function(FunctionName=name)
        configuration = function["Configuration"]
        key = urllib.parse.urlparse(function["Code"]["Location"]).path.lstrip("/")
        layers = [unpack(code(layer)) for layer in layer_keys(name)]
        environment = lambda_environment(configuration, f"http://localhost:{port}", REGION)
        if "AWS_LAMBDA_EXEC_WRAPPER" in environment:  # its own Runtime API loop: run the wrapper as Lambda does
            size = int(function.get("Concurrency", {}).get("ReservedConcurrentExecutions") or 0) or LOCAL_CONCURRENCY
            api.workers[name] = StreamingPool(size, functools.partial(
                StreamingWorker, code_dir=unpack(code(key)), layers=layers, environment=environment,
                timeout_seconds=int(configuration.get("Timeout", 3)), log=log,
                on_log_line=metrics))  # fmt: skip
            continue
        api.workers[name] = Worker(handler=configuration["Handler"], code_dir=unpack(code(key)), layers=layers,
                                   environment=environment, timeout_seconds=int(configuration.get("Timeout", 3)),
                                   log=log, on_log_line=metrics)  # fmt: skip
    return api


def usage_plan_of(client: Any, api_id: str, stage: str) -> Callable[[str], UsagePlan | None]:
    """API Gateway's look-up of the usage identifier an authorizer returns: the enabled API key with that value
    and its usage plan on this API stage (None: no such key, or no plan of this stage)."""
    apigw = client("apigateway")

    def lookup(value: str) -> UsagePlan | None:
        keys = apigw.get_api_keys(includeValues=True)["items"]
        key = next((k for k in keys if k.get("value") == value and k.get("enabled")), None)
        if key is None:
            return None
        for plan in apigw.get_usage_plans(keyId=key["id"])["items"]:
            if any(s.get("apiId") == api_id and s.get("stage") == stage for s in plan.get("apiStages", [])):
                throttle, quota = plan.get("throttle") or {}, plan.get("quota") or {}
                if quota.get("limit") is not None and quota.get("period") != "DAY":
                    raise LocalError(f"Usage plan {plan['id']}: only DAY quotas are emulated.")
                limits = None
                if throttle.get("rateLimit") is not None:
                    limits = Throttle(float(throttle["rateLimit"]), int(throttle["burstLimit"]))
                return UsagePlan(plan["id"], key["id"], limits, quota.get("limit"))
        return None

    return lookup


def deployed_template(cfn: Any, stack: str) -> dict[str, Any]:
    body = cfn.get_template(StackName=stack)["TemplateBody"]
    return dict(json.loads(body) if isinstance(body, str) else body)


def resolved_resources(cfn: Any, template: dict[str, Any]) -> dict[str, Any]:
    """The template's resources with the values other stacks export (the web app's origin in the CORS preflight)
    as CloudFormation resolved them."""
    exports = {e["Name"]: e["Value"] for page in cfn.get_paginator("list_exports").paginate() for e in page["Exports"]}
    return dict(resolve_imports(template["Resources"], exports))
