"""What a cloud assembly (cdk.out) says will be deployed: read from the synthesized templates, so the local
read-back and the end-to-end tests follow every stack, function, route and parameter a capability adds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambda_src.contracts import secure_string


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


def route_path(resources: dict[str, Any], resource_id: Any) -> str:
    """The route path of an API Gateway resource, from its chain of PathParts (the root has none)."""
    parts: list[str] = []
    while isinstance(resource_id, dict) and "Ref" in resource_id:
        props = resources[resource_id["Ref"]]["Properties"]
        parts.insert(0, props["PathPart"])
        resource_id = props["ParentId"]
    return "/" + "/".join(parts)
