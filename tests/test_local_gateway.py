"""The local API Gateway stand-in's own behaviour (the openai SDK tests drive it with the real handlers)."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from lambda_src.contracts.gateway import GATEWAY_ERRORS, RETRY_AFTER_SECONDS
from tools.local.assembly import preflights
from tools.local.gateway import DAY_SECONDS, LocalGateway, Preflight, Throttle, UsagePlan

STANDARD = UsagePlan("plan-standard", "key-1", Throttle(rate_limit=2, burst_limit=5), daily_quota=2_000)


def allow(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    assert event["authorizationToken"] == "Bearer good"
    return {
        "principalId": "key_1",
        # The usage identifier API Gateway looks the API key up by: not the bearer key.
        "usageIdentifierKey": "usage-id-1",
        "policyDocument": {"Statement": [{"Effect": "Allow"}]},
        "context": {"keyId": "key_1", "owner": "alice"},
    }


def refuse(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    raise AssertionError("the preflight must not call the authorizer")


def echo(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    body = {"route": event["resource"], "owner": event["requestContext"]["authorizer"]["owner"]}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def fail(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    raise RuntimeError("the function crashed")


class Clock:
    """Time for the gateway's buckets and quotas: moved by the test, never slept."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def call(gateway: LocalGateway, method: str, path: str) -> tuple[int, dict[str, Any]]:
    status, _headers, body = gateway.respond(method, path, {"Authorization": "Bearer good"}, b"{}")
    assert isinstance(body, bytes)
    return status, json.loads(body)


def error_code(kind: str) -> tuple[int, str]:
    return int(GATEWAY_ERRORS[kind][0]), GATEWAY_ERRORS[kind][2]


@pytest.fixture
def served() -> Iterator[LocalGateway]:
    gateway = LocalGateway(echo, allow).start()
    yield gateway
    gateway.stop()


def http_call(gateway: LocalGateway, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    host, port = gateway.server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=5)
    connection.request(method, path, headers=headers or {})
    reply = connection.getresponse()
    reply.data = reply.read()  # type: ignore[attr-defined]
    connection.close()
    return reply


def test_routes_come_from_the_deployed_api_when_given():
    gateway = LocalGateway(echo, allow, routes={"/only": {"POST"}})
    assert call(gateway, "POST", "/v1/only") == (200, {"route": "/only", "owner": "alice"})
    assert call(gateway, "GET", "/v1/models")[0] == 404


def test_a_key_without_a_usage_plan_on_this_stage_is_refused():
    refused = LocalGateway(echo, allow, usage_plan=lambda identifier: None)
    status, body = call(refused, "GET", "/v1/models")
    assert (status, body["error"]["code"]) == error_code("INVALID_API_KEY")
    looked_up: list[str] = []

    def plan_of(identifier: str) -> UsagePlan:
        looked_up.append(identifier)
        return STANDARD

    assert call(LocalGateway(echo, allow, usage_plan=plan_of), "GET", "/v1/models")[0] == 200
    assert looked_up == ["usage-id-1"]  # what the authorizer returned, not the bearer key


def test_a_failing_function_is_a_502_in_the_error_shape_without_its_message():
    status, body = call(LocalGateway(fail, allow), "GET", "/v1/models")
    assert status == 502 and body["error"]["type"] == "upstream_error"
    assert "crashed" not in json.dumps(body)


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE", "TRACE", "CONNECT", "PROPFIND", "OPTIONS"])
def test_every_undefined_method_is_the_unknown_route_answer_in_json(served, method):
    """It was http.server's HTML 501 for PATCH, OPTIONS, HEAD and any other method without a do_<METHOD>."""
    reply = http_call(served, method, "/v1/models", {"Authorization": "Bearer good"})
    assert (reply.status, json.loads(reply.data)["error"]["code"]) == error_code("MISSING_AUTHENTICATION_TOKEN")
    assert reply.getheader("Content-Type") == "application/json"


def test_head_is_the_unknown_route_answer_without_a_body(served):
    reply = http_call(served, "HEAD", "/v1/models", {"Authorization": "Bearer good"})
    assert reply.status == error_code("MISSING_AUTHENTICATION_TOKEN")[0] and reply.data == b""
    assert reply.getheader("Content-Type") == "application/json"
    assert served.respond("HEAD", "/v1/models", {}, b"")[2] == b""


def test_a_request_http_server_cannot_parse_is_answered_in_the_error_shape(served):
    with socket.create_connection(served.server.server_address[:2], timeout=5) as connection:
        connection.sendall(b"NOT A REQUEST LINE AT ALL\r\n\r\n")
        head, _, body = connection.makefile("rb").read().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400") or head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["error"]["code"] == GATEWAY_ERRORS["DEFAULT_4XX"][2]


# The OPTIONS method CDK's default_cors_preflight_options synthesizes for two allowed origins (cdk synth of
# ApiConfig(cors_allowed_origins=("http://localhost:3000", "https://app.example.com"))): the first origin is
# the static header, the response template echoes the others. tests/infra/test_local_assembly.py reads the
# dev stage's preflights from the real synth.
TWO_ORIGINS = {
    "Options": {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "HttpMethod": "OPTIONS",
            "AuthorizationType": "NONE",
            "ResourceId": {"Ref": "Models"},
            "Integration": {
                "Type": "MOCK",
                "RequestTemplates": {"application/json": "{ statusCode: 200 }"},
                "IntegrationResponses": [{
                    "StatusCode": "204",
                    "ResponseParameters": {
                        "method.response.header.Access-Control-Allow-Headers":
                            "'Authorization,Content-Type,X-Session-Id'",
                        "method.response.header.Access-Control-Allow-Origin": "'http://localhost:3000'",
                        "method.response.header.Vary": "'Origin'",
                        "method.response.header.Access-Control-Allow-Methods": "'GET,POST,OPTIONS'",
                        "method.response.header.Access-Control-Max-Age": "'3600'",
                    },
                    "ResponseTemplates": {"application/json": (
                        '#set($origin = $input.params().header.get("Origin"))\n#if($origin == "")\n  #set($origin = '
                        '$input.params().header.get("origin"))\n#end\n#if($origin == "https://app.example.com")\n  '
                        "#set($context.responseOverride.header.Access-Control-Allow-Origin = $origin)\n#end"
                    )},
                }],
            },
        },
    },
    "Models": {"Type": "AWS::ApiGateway::Resource", "Properties": {"PathPart": "models", "ParentId": "root"}},
}  # fmt: skip


def test_the_cors_preflight_is_answered_as_deployed_without_the_authorizer():
    """It was a 501 HTML page: a browser's preflight failed before any call of the web app."""
    found = preflights(TWO_ORIGINS)
    assert set(found) == {"/models"} and found["/models"].echo_origins == {"https://app.example.com"}
    served = LocalGateway(echo, refuse, preflights=found).start()
    try:
        reply = http_call(served, "OPTIONS", "/v1/models", {"Origin": "https://app.example.com",
                                                           "Access-Control-Request-Method": "POST"})  # fmt: skip
    finally:
        served.stop()
    assert reply.status == 204 and reply.data == b""
    assert reply.getheader("Access-Control-Allow-Origin") == "https://app.example.com"
    assert reply.getheader("Access-Control-Allow-Methods") == "GET,POST,OPTIONS"
    assert reply.getheader("Access-Control-Allow-Headers") == "Authorization,Content-Type,X-Session-Id"
    assert reply.getheader("Access-Control-Max-Age") == "3600" and reply.getheader("Vary") == "Origin"
    gateway = LocalGateway(echo, refuse, preflights=found)
    for origin in ("http://localhost:3000", "https://elsewhere.example.com", None):  # the static header
        headers = {"Origin": origin} if origin else {}
        assert gateway.respond("OPTIONS", "/v1/models/", headers, b"")[1]["Access-Control-Allow-Origin"] == (
            "http://localhost:3000"
        )
    # Only resources of the API have a preflight; without CORS, OPTIONS is an undefined method.
    assert gateway.respond("OPTIONS", "/v1/nothing", {}, b"")[0] == 404
    assert LocalGateway(echo, allow).respond("OPTIONS", "/v1/models", {}, b"")[0] == 404


def test_a_burst_beyond_the_plan_is_throttled_with_retry_after_and_refills_at_its_rate():
    """24 requests on a standard key (2/s, burst 5) all got 200 before."""
    clock = Clock()
    gateway = LocalGateway(echo, allow, usage_plan=lambda identifier: STANDARD, clock=clock)
    answers = [gateway.respond("GET", "/v1/models", {"Authorization": "Bearer good"}, b"") for _ in range(24)]
    assert [status for status, _, _ in answers] == [200] * 5 + [429] * 19
    _, headers, body = answers[-1]
    assert isinstance(body, bytes) and json.loads(body)["error"]["code"] == GATEWAY_ERRORS["THROTTLED"][2]
    assert headers["Retry-After"] == RETRY_AFTER_SECONDS and headers["Content-Type"] == "application/json"
    clock.now += 0.5  # one token at 2/s
    assert [call(gateway, "GET", "/v1/models")[0] for _ in range(2)] == [200, 429]
    clock.now += 3_600  # refilled up to the burst, not beyond
    assert [call(gateway, "POST", "/v1/model")[0] for _ in range(6)] == [200] * 5 + [429]


def test_each_key_has_its_own_bucket():
    plans = {"usage-id-1": STANDARD, "usage-id-2": STANDARD._replace(key_id="key-2")}
    identifier = ["usage-id-1"]

    def authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {**allow(event, context), "usageIdentifierKey": identifier[0]}

    gateway = LocalGateway(echo, authorizer, usage_plan=plans.get, clock=Clock())
    assert [call(gateway, "GET", "/v1/models")[0] for _ in range(6)][-1] == 429
    identifier[0] = "usage-id-2"
    assert call(gateway, "GET", "/v1/models")[0] == 200


def test_the_daily_quota_is_a_429_until_the_next_utc_day():
    clock = Clock(now=DAY_SECONDS * 19_700 + 10)
    plan = UsagePlan("plan", "key", Throttle(rate_limit=100, burst_limit=100), daily_quota=3)
    gateway = LocalGateway(echo, allow, usage_plan=lambda identifier: plan, clock=clock)
    assert [call(gateway, "GET", "/v1/models")[0] for _ in range(3)] == [200] * 3
    status, headers, body = gateway.respond("GET", "/v1/models", {"Authorization": "Bearer good"}, b"")
    assert isinstance(body, bytes)
    assert (status, json.loads(body)["error"]["code"]) == error_code("QUOTA_EXCEEDED")
    assert headers["Retry-After"] == RETRY_AFTER_SECONDS
    clock.now = DAY_SECONDS * 19_701  # midnight UTC
    assert call(gateway, "GET", "/v1/models")[0] == 200


def test_a_throttled_request_does_not_use_the_quota():
    clock = Clock()
    plan = UsagePlan("plan", "key", Throttle(rate_limit=1, burst_limit=1), daily_quota=2)
    gateway = LocalGateway(echo, allow, usage_plan=lambda identifier: plan, clock=clock)
    assert [call(gateway, "GET", "/v1/models")[0] for _ in range(3)] == [200, 429, 429]
    clock.now += 1
    assert call(gateway, "GET", "/v1/models")[0] == 200
    clock.now += 1
    assert call(gateway, "GET", "/v1/models")[1]["error"]["code"] == GATEWAY_ERRORS["QUOTA_EXCEEDED"][2]


def test_the_stage_throttle_applies_to_every_caller_per_method():
    gateway = LocalGateway(echo, allow, stage_throttle=Throttle(rate_limit=1, burst_limit=2), clock=Clock())
    assert [call(gateway, "GET", "/v1/models")[0] for _ in range(2)] == [200, 200]
    # Before the authorizer: even a request without a key is throttled.
    status, headers, _ = gateway.respond("GET", "/v1/models", {}, b"")
    assert status == 429 and headers["Retry-After"] == RETRY_AFTER_SECONDS
    assert call(gateway, "POST", "/v1/model")[0] == 200  # another method, another bucket
    preflight = Preflight(204, {"Access-Control-Allow-Origin": "http://localhost:3000"})
    with_cors = LocalGateway(echo, refuse, preflights={"/models": preflight}, stage_throttle=Throttle(1, 1),
                             clock=Clock())  # fmt: skip
    assert [with_cors.respond("OPTIONS", "/v1/models", {}, b"")[0] for _ in range(2)] == [204, 429]


def test_gateway_responses_must_cover_every_answer_it_gives():
    with pytest.raises(ValueError, match="THROTTLED"):
        LocalGateway(echo, allow, responses={})


def test_the_authorizers_policy_is_cached_per_token_for_its_ttl():
    calls = []

    def counting(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event["authorizationToken"])
        return allow(event, context)

    clock = Clock()
    gateway = LocalGateway(echo, counting, clock=clock, authorizer_cache_seconds=60)
    assert [call(gateway, "GET", "/v1/models")[0] for _ in range(3)] == [200] * 3
    assert calls == ["Bearer good"]  # one authorizer call, then the cached policy
    clock.now += 61
    call(gateway, "GET", "/v1/models")
    assert calls == ["Bearer good"] * 2
