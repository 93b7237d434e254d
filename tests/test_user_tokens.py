"""The local gateway's Cognito authorizer: ID tokens of moto's user pool (RS256, the pool's JWKS served on
127.0.0.1) are accepted as API Gateway accepts them, everything else refused: another audience, an access token,
an expired one, a forged signature, another pool's issuer. The gateway's user routes then reach the function with
the claims, the path parameters and the query string; key routes and user routes take only their own credentials."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import boto3
import jwt
import pytest

from tests.aws_fakes import REGION
from tools.local.gateway import LocalGateway
from tools.local.user_tokens import IdTokenVerifier

PASSWORD = "Correct-Horse-Battery-9"


@pytest.fixture
def jwks() -> Iterator[str]:
    """moto's public signing key set, served as Cognito serves a pool's JWKS."""
    data = gzip.decompress((resources.files("moto.cognitoidp") / "resources" / "jwks-public.json.gz").read_bytes())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


@pytest.fixture
def pool(aws: None) -> dict[str, Any]:
    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool_id = cognito.create_user_pool(PoolName="chat", UsernameAttributes=["email"])["UserPool"]["Id"]
    clients = [cognito.create_user_pool_client(UserPoolId=pool_id, ClientName=name,
                                               ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"][
                   "ClientId"] for name in ("web", "other")]  # fmt: skip
    cognito.admin_create_user(UserPoolId=pool_id, Username="alice@example.com", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username="alice@example.com", Password=PASSWORD,
                                    Permanent=True)  # fmt: skip

    def tokens(client_id: str) -> dict[str, str]:
        credentials = {"USERNAME": "alice@example.com", "PASSWORD": PASSWORD}
        answer = cognito.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=credentials)
        return dict(answer["AuthenticationResult"])

    return {"pool_id": pool_id, "web": clients[0], "other": clients[1], "tokens": tokens}


def verifier(jwks: str, pool: dict[str, Any], clock: Any = time.time) -> IdTokenVerifier:
    return IdTokenVerifier(jwks_url=jwks, pool_id=pool["pool_id"], client_ids=frozenset({pool["web"]}), clock=clock)


def test_an_id_token_of_the_pools_app_client_is_accepted_with_its_claims_as_strings(jwks, pool):
    token = pool["tokens"](pool["web"])["IdToken"]
    claims = verifier(jwks, pool).claims(token)
    assert claims is not None and claims["token_use"] == "id" and claims["aud"] == pool["web"]
    assert claims["sub"] == jwt.decode(token, options={"verify_signature": False})["sub"]
    assert all(isinstance(value, str) for value in claims.values())


def test_other_tokens_are_refused(jwks, pool):
    check = verifier(jwks, pool)
    web, other = pool["tokens"](pool["web"]), pool["tokens"](pool["other"])
    assert check.claims(other["IdToken"]) is None  # another app client's (audience)
    assert check.claims(web["AccessToken"]) is None  # not an ID token
    header, payload, signature = web["IdToken"].split(".")
    assert check.claims(".".join([header, payload, signature[::-1]])) is None  # forged signature
    assert check.claims("garbage") is None and check.claims("") is None
    later = verifier(jwks, pool, clock=lambda: time.time() + 3601)
    assert later.claims(web["IdToken"]) is None  # expired (moto's tokens last an hour)
    foreign = IdTokenVerifier(jwks_url=jwks, pool_id="us-east-1_other", client_ids=frozenset({pool["web"]}))
    assert foreign.claims(web["IdToken"]) is None  # another pool's issuer


def test_user_routes_reach_the_function_with_the_claims_and_key_routes_take_only_keys():
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}

    def key_authorizer(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        if event["authorizationToken"] != "Bearer key":
            raise RuntimeError("Unauthorized")
        return {"principalId": "key_1", "policyDocument": {"Statement": [{"Effect": "Allow"}]},
                "context": {"keyId": "key_1", "owner": "service"}}  # fmt: skip

    claims = {"sub": "user-1", "token_use": "id"}
    gateway = LocalGateway(handler, key_authorizer, user_authorizer=lambda token: claims if token == "id" else None)
    status, _, _ = gateway.respond("GET", "/v1/conversations/c_1/messages", {"Authorization": "id"}, b"")
    assert status == 404  # GET is not a route of that path: the unknown-route answer
    status, _, _ = gateway.respond("GET", "/v1/conversations/c_0123?limit=5&cursor=a&limit=7", {"Authorization": "id"},
                                   b"")  # fmt: skip
    assert status == 200
    event = seen[-1]
    assert event["resource"] == "/conversations/{conversation_id}" and event["path"] == "/conversations/c_0123"
    assert event["pathParameters"] == {"conversation_id": "c_0123"}
    assert event["queryStringParameters"] == {"limit": "7", "cursor": "a"}  # the last of a repeated name
    assert event["requestContext"]["authorizer"] == {"claims": claims}
    assert gateway.respond("GET", "/v1/conversations", {"Authorization": "Bearer key"}, b"")[0] == 401
    assert gateway.respond("GET", "/v1/conversations", {}, b"")[0] == 401
    assert gateway.respond("GET", "/v1/models", {"Authorization": "id"}, b"")[0] == 401
    assert gateway.respond("GET", "/v1/models", {"Authorization": "Bearer key"}, b"")[0] == 200
    assert seen[-1]["requestContext"]["authorizer"]["keyId"] == "key_1"
