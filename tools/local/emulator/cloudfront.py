"""CloudFront: `AWS::CloudFront::Distribution`, `Function`, `ResponseHeadersPolicy` and `OriginAccessControl`,
which moto's CloudFormation does not model (a stack with one fails on its outputs). They are created with the
ids and attributes CloudFormation gives (a distribution's `dXXXX.cloudfront.net` domain name), so the stacks
that reference them deploy; nothing serves them here: the local edge (tools/local/edge.py) serves the site
bucket as the distribution would, with the headers and routing of the web contract."""

from __future__ import annotations

import secrets
import string
from typing import Any

from tools.local.emulator.cloudformation import register_model


def _id(length: int = 13) -> str:
    return "E" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def _distribution(properties: dict[str, Any], account: str, _region: str, _name: str) -> tuple[str, dict[str, str]]:
    distribution_id = _id()
    domain = f"d{secrets.token_hex(7)}.cloudfront.net"
    return distribution_id, {"DomainName": domain, "Id": distribution_id}


def _function(properties: dict[str, Any], account: str, _region: str, name: str) -> tuple[str, dict[str, str]]:
    function_name = properties.get("Name") or name
    arn = f"arn:aws:cloudfront::{account}:function/{function_name}"
    return arn, {"FunctionARN": arn, "Stage": "LIVE" if properties.get("AutoPublish") else "DEVELOPMENT"}


def _by_id(_properties: dict[str, Any], _account: str, _region: str, _name: str) -> tuple[str, dict[str, str]]:
    resource_id = secrets.token_hex(18)
    return resource_id, {"Id": resource_id}


def install() -> None:
    register_model("AWS::CloudFront::Distribution", "cloudfront", _distribution)
    register_model("AWS::CloudFront::Function", "cloudfront", _function)
    for kind in ("AWS::CloudFront::ResponseHeadersPolicy", "AWS::CloudFront::OriginAccessControl"):
        register_model(kind, "cloudfront", _by_id)
