"""The local API Gateway stand-in's own behaviour (the openai SDK tests drive it with the real handlers)."""

from __future__ import annotations

import json
from typing import Any

from tools.local.gateway import LocalGateway


def allow(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    assert event["authorizationToken"] == "Bearer good"
    return {
        "principalId": "key_1",
        "usageIdentifierKey": "good",
        "policyDocument": {"Statement": [{"Effect": "Allow"}]},
        "context": {"keyId": "key_1", "owner": "alice"},
    }


def echo(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    body = {"route": event["resource"], "owner": event["requestContext"]["authorizer"]["owner"]}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def fail(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    raise RuntimeError("the function crashed")


def call(gateway: LocalGateway, method: str, path: str) -> tuple[int, dict[str, Any]]:
    status, _headers, body = gateway.respond(method, path, {"Authorization": "Bearer good"}, b"{}")
    return status, json.loads(body)


def test_routes_come_from_the_deployed_api_when_given():
    gateway = LocalGateway(echo, allow, routes={"/only": {"POST"}})
    assert call(gateway, "POST", "/v1/only") == (200, {"route": "/only", "owner": "alice"})
    assert call(gateway, "GET", "/v1/models")[0] == 404


def test_a_key_without_a_usage_plan_on_this_stage_is_refused():
    refused = LocalGateway(echo, allow, usage_key_check=lambda key: False)
    status, body = call(refused, "GET", "/v1/models")
    assert status == 403 and body["error"]["code"] == "forbidden"
    accepted = LocalGateway(echo, allow, usage_key_check=lambda key: key == "good")
    assert call(accepted, "GET", "/v1/models")[0] == 200


def test_a_failing_function_is_a_502_in_the_error_shape_without_its_message():
    status, body = call(LocalGateway(fail, allow), "GET", "/v1/models")
    assert status == 502 and body["error"]["type"] == "upstream_error"
    assert "crashed" not in json.dumps(body)
