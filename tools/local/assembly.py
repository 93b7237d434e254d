"""What a cloud assembly (cdk.out) says will be deployed: read from the synthesized templates, so the local
read-back and the end-to-end tests follow every stack, function, route and parameter a capability adds; and
what an API's template says API Gateway answers itself (preflights, stage throttle, gateway responses), for
the local gateway."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambda_src.contracts import guardrail, secure_string
from lambda_src.contracts.gateway import ECHO_ORIGIN
from tools.local.gateway import Answer, Preflight, Throttle


@dataclass(frozen=True)
class Function:
    stack: str
    logical_id: str
    handler: str
    runtime: str
    # Variables whose value the template states literally (others are references resolved at deploy).
    literal_environment: dict[str, str]


@dataclass(frozen=True)
class Route:
    stack: str
    method: str
    path: str
    authorization: str
    integration: str


@dataclass(frozen=True)
class Bucket:
    stack: str
    logical_id: str
    kms_encrypted: bool


@dataclass
class Assembly:
    stacks: list[str] = field(default_factory=list)
    # Parameter name -> type (String, StringList, SecureString).
    parameters: dict[str, str] = field(default_factory=dict)
    # SecureString name -> (stack, logical id of the KMS key that encrypts it).
    secure_strings: dict[str, tuple[str, str]] = field(default_factory=dict)
    functions: list[Function] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    usage_plans: list[str] = field(default_factory=list)
    authorizers: int = 0
    buckets: list[Bucket] = field(default_factory=list)
    # (stack, logical id) of each Firehose delivery stream.
    streams: list[tuple[str, str]] = field(default_factory=list)
    # (stack, logical id) of each guardrail version, and the parameter each one's number is written to.
    guardrail_versions: list[tuple[str, str]] = field(default_factory=list)
    version_parameters: list[str] = field(default_factory=list)
    # Alarm name -> the metric names it reads (the monitoring stack's alarms).
    alarms: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def read(cls, outdir: Path) -> Assembly:
        manifest = json.loads((outdir / "manifest.json").read_text())
        found = cls()
        for artifact in manifest["artifacts"].values():
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            stack = artifact["properties"].get("stackName") or artifact["displayName"]
            template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
            found.stacks.append(stack)
            found._add(stack, template["Resources"])
        return found

    def _add(self, stack: str, resources: dict[str, Any]) -> None:
        for logical_id, resource in resources.items():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::SSM::Parameter":
                self.parameters[props["Name"]] = props["Type"]
                if props["Name"].endswith("/" + guardrail.VERSION_LEAF):
                    self.version_parameters.append(props["Name"])
            elif kind == secure_string.RESOURCE_TYPE:
                name = props[secure_string.PARAMETER_NAME]
                self.parameters[name] = "SecureString"
                self.secure_strings[name] = (stack, props[secure_string.KEY_ID]["Fn::GetAtt"][0])
            elif kind == "AWS::Lambda::Function" and str(props.get("Runtime", "")).startswith("python"):
                variables = props.get("Environment", {}).get("Variables", {})
                literal = {k: v for k, v in variables.items() if isinstance(v, str)}
                self.functions.append(Function(stack, logical_id, props["Handler"], props["Runtime"], literal))
            elif kind == "AWS::ApiGateway::Method" and props["HttpMethod"] != "OPTIONS":
                path = route_path(resources, props["ResourceId"])
                self.routes.append(Route(stack, props["HttpMethod"], path, props.get("AuthorizationType", "NONE"),
                                         props.get("Integration", {}).get("Type", "")))  # fmt: skip
            elif kind == "AWS::ApiGateway::Authorizer":
                self.authorizers += 1
            elif kind == "AWS::ApiGateway::UsagePlan":
                self.usage_plans.append(props["UsagePlanName"])
            elif kind == "AWS::S3::Bucket":
                rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
                kms = any(r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") == "aws:kms" for r in rules)
                self.buckets.append(Bucket(stack, logical_id, kms))
            elif kind == "AWS::KinesisFirehose::DeliveryStream":
                self.streams.append((stack, logical_id))
            elif kind == "AWS::Bedrock::GuardrailVersion":
                self.guardrail_versions.append((stack, logical_id))
            elif kind == "AWS::CloudWatch::Alarm":
                self.alarms[props["AlarmName"]] = alarm_metric_names(props)


def alarm_metric_names(alarm: dict[str, Any]) -> tuple[str, ...]:
    """The metric names an alarm reads (a template's properties, or DescribeAlarms' answer): its one metric, or
    each metric of its math, sorted."""
    if alarm.get("MetricName"):
        return (str(alarm["MetricName"]),)
    queries = alarm.get("Metrics") or []
    return tuple(sorted(str(q["MetricStat"]["Metric"]["MetricName"]) for q in queries if "MetricStat" in q))


def route_path(resources: dict[str, Any], resource_id: Any) -> str:
    """The route path of an API Gateway resource, from its chain of PathParts (the root has none)."""
    parts: list[str] = []
    while isinstance(resource_id, dict) and "Ref" in resource_id:
        props = resources[resource_id["Ref"]]["Properties"]
        parts.insert(0, props["PathPart"])
        resource_id = props["ParentId"]
    return "/" + "/".join(parts)


def resolve_imports(node: Any, exports: dict[str, str]) -> Any:
    """``node`` with each ``Fn::ImportValue`` replaced by its export's value and each ``Fn::Join`` of values that
    are then text joined, as CloudFormation resolves them (other intrinsics are left as they are)."""
    if isinstance(node, list):
        return [resolve_imports(item, exports) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::ImportValue"} and isinstance(node["Fn::ImportValue"], str):
        name = node["Fn::ImportValue"]
        if name not in exports:
            raise ValueError(f"The template imports {name!r}, which no deployed stack exports.")
        return exports[name]
    resolved = {key: resolve_imports(value, exports) for key, value in node.items()}
    join = resolved.get("Fn::Join")
    if set(resolved) == {"Fn::Join"} and isinstance(join, list) and len(join) == 2 and isinstance(join[1], list):
        separator, parts = join
        if all(isinstance(part, str) for part in parts):
            return str(separator).join(parts)
    return resolved


# CDK's CORS response template for several origins: `#if($origin == "https://b" || $origin == "https://c")`.
_ECHOED_ORIGIN = re.compile(r'\$origin == "([^"]+)"')


def _literal(value: Any) -> str:
    """A response parameter's static value ('value'); mappings from the request are not emulated."""
    if not (isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'"):
        raise ValueError(f"The local gateway only answers static response parameters, not {value!r}.")
    return value[1:-1]


def _properties(resources: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    """The properties of every resource of type ``kind``."""
    for resource in resources.values():
        if resource["Type"] == kind:
            yield resource.get("Properties", {})


def preflights(resources: dict[str, Any]) -> dict[str, Preflight]:
    """Resource path -> the MOCK answer of its OPTIONS method (CDK's CORS preflight)."""
    found: dict[str, Preflight] = {}
    for props in _properties(resources, "AWS::ApiGateway::Method"):
        if props.get("HttpMethod") != "OPTIONS":
            continue
        integration = props.get("Integration", {})
        responses = integration.get("IntegrationResponses", [])
        if integration.get("Type") != "MOCK" or len(responses) != 1:
            raise ValueError("The local gateway only answers OPTIONS methods that are CDK's CORS preflight.")
        (response,) = responses
        template = response.get("ResponseTemplates", {}).get("application/json", "")
        echoed = _ECHOED_ORIGIN.findall(template)
        if template and not echoed:
            raise ValueError(f"The local gateway does not render this response template: {template!r}.")
        headers = {name.removeprefix("method.response.header."): _literal(value)
                   for name, value in response.get("ResponseParameters", {}).items()}  # fmt: skip
        found[route_path(resources, props["ResourceId"])] = Preflight(
            int(response["StatusCode"]), headers, frozenset(echoed)
        )
    return found


def stage_throttle(resources: dict[str, Any], stage_name: str) -> Throttle | None:
    """The default method throttle of the stage (its `*` `/*` method setting), if it sets one."""
    for props in _properties(resources, "AWS::ApiGateway::Stage"):
        if props.get("StageName") != stage_name:
            continue
        for setting in props.get("MethodSettings", []):
            if (setting.get("HttpMethod"), setting.get("ResourcePath")) == ("*", "/*") and (
                "ThrottlingRateLimit" in setting
            ):
                return Throttle(float(setting["ThrottlingRateLimit"]), int(setting["ThrottlingBurstLimit"]))
    return None


def gateway_responses(resources: dict[str, Any]) -> dict[str, Answer]:
    """Response type -> the gateway response's status, headers and JSON body."""
    found: dict[str, Answer] = {}
    for props in _properties(resources, "AWS::ApiGateway::GatewayResponse"):
        headers = {name.removeprefix("gatewayresponse.header."): value if value == ECHO_ORIGIN else _literal(value)
                   for name, value in props.get("ResponseParameters", {}).items()}  # fmt: skip
        body = props.get("ResponseTemplates", {}).get("application/json", "")
        found[props["ResponseType"]] = (int(props["StatusCode"]), headers, body.encode())
    return found
