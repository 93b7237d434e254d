"""A small local stand-in for API Gateway: HTTP requests become REST API proxy events for the project's
handlers, after the same TOKEN-authorizer call API Gateway makes. Loopback only.

Emulated: the stage prefix (/v1), the known routes, the authorizer's header check and its context, the
usage-plan key check (when given one: the key the authorizer names must exist, be enabled and belong to a
usage plan of this API stage), a failing integration as 502, and API Gateway's 401/403/404 answers in the
API's error shape. Not emulated: usage-plan throttling and quotas, WAF, request validation models (the
handler validates bodies itself).

Routes default to the route table (lambda_src/contracts/api.py); `make local` passes the routes of the API
deployed in the emulator instead (tools/local/deployed_api.py).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lambda_src.contracts.api import ROUTES, STAGE_NAME, error_body
from lambda_src.contracts.gateway import GATEWAY_ERRORS
from tools.local.runtime import LambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:local/" + STAGE_NAME


def _gateway_error(kind: str) -> tuple[int, dict[str, str], bytes]:
    status, error_type, code, message = GATEWAY_ERRORS[kind]
    return int(status), {"Content-Type": "application/json"}, json.dumps(error_body(message, error_type, code)).encode()


def _route_table() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for route in ROUTES:
        table.setdefault(route.path, set()).add(route.method)
    return table


class LocalGateway:
    def __init__(
        self,
        handler: Handler,
        authorizer: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        usage_key_check: Callable[[str], bool] | None = None,
        routes: dict[str, set[str]] | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("The local gateway only listens on loopback.")
        self._handler = handler
        self._authorizer = authorizer
        self._usage_key_check = usage_key_check
        self._routes = routes if routes is not None else _route_table()
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gateway._serve(self)

            def do_POST(self) -> None:
                gateway._serve(self)

            def do_PUT(self) -> None:
                gateway._serve(self)

            def do_DELETE(self) -> None:
                gateway._serve(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), RequestHandler)
        self.base_url = f"http://{host}:{self.server.server_address[1]}/{STAGE_NAME}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> LocalGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def respond(  # noqa: PLR0911 - one return per answer API Gateway gives
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """What API Gateway would answer for one request."""
        path = raw_path.split("?", 1)[0]
        prefix = f"/{STAGE_NAME}"
        route = path[len(prefix) :] if path.startswith(prefix + "/") else None
        if route is None or method not in self._routes.get(route.rstrip("/"), set()):
            return _gateway_error("MISSING_AUTHENTICATION_TOKEN")
        route = route.rstrip("/")
        token = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        if token is None:
            return _gateway_error("UNAUTHORIZED")
        try:
            policy = self._authorizer(
                {"type": "TOKEN", "authorizationToken": token, "methodArn": f"{METHOD_ARN}/{method}{route}"},
                LambdaContext.for_api_gateway(),
            )
        except Exception as error:
            return _gateway_error("UNAUTHORIZED" if str(error) == "Unauthorized" else "AUTHORIZER_FAILURE")
        if policy["policyDocument"]["Statement"][0]["Effect"] != "Allow":
            return _gateway_error("ACCESS_DENIED")
        if self._usage_key_check is not None and not self._usage_key_check(str(policy.get("usageIdentifierKey"))):
            return _gateway_error("INVALID_API_KEY")
        text: str | None
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        event = {
            "resource": route,
            "path": route,
            "httpMethod": method,
            "headers": dict(headers),
            "queryStringParameters": None,
            "body": text if body else None,
            "isBase64Encoded": encoded,
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "stage": STAGE_NAME,
                "resourcePath": route,
                "httpMethod": method,
                "authorizer": {**policy.get("context", {}), "principalId": policy["principalId"]},
            },
        }
        try:
            result = self._handler(event, LambdaContext.for_api_gateway())
        except Exception:  # API Gateway answers a failed Lambda integration with a 502
            return _gateway_error("INTEGRATION_FAILURE")
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        return int(result["statusCode"]), dict(result.get("headers") or {}), data

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        status, headers, data = self.respond(request.command, request.path, dict(request.headers.items()), body)
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
