"""A small local stand-in for API Gateway: HTTP requests become REST API proxy events for the project's
handlers, after the same TOKEN-authorizer call API Gateway makes. Loopback only.

Emulated: the stage prefix (/v1), the known routes; every other method or path (PATCH, HEAD, TRACE, any
token) as API Gateway's MISSING_AUTHENTICATION_TOKEN answer, HEAD without a body; the CORS preflight (the
OPTIONS methods' MOCK answers as deployed: status, headers, the request's Origin echoed when listed); the
stage's default method throttle (a token bucket per method); the authorizer's header check and its context;
the usage plan of the API key whose value the authorizer returns as usageIdentifierKey (the key must exist,
be enabled and belong to a plan of this stage; the plan's rate and burst as a token bucket per key and its
daily quota per UTC day); a failing integration as 502; a STREAM integration (``streaming_routes``): the
function's framed output read as API Gateway reads it (a JSON prelude and 8 NUL bytes within the first 16 KB,
else 500) and its body relayed to the client chunk by chunk as it arrives (HTTP/1.1 chunked), the function
told when the client goes away; every one of these answers as the gateway responses
define it (the API's error shape, Retry-After on a 429). The authorizer's result cache: its policy per token
for ``authorizer_cache_seconds``. Not emulated: the account-level throttle, quota periods other than DAY, WAF,
request validation models (the handler validates bodies itself). Resource paths with parameters
(``/conversations/{conversation_id}``) match one path segment each and reach the handler as ``pathParameters``;
the query string as ``queryStringParameters`` (the last value of a repeated name, as API Gateway). The routes of
signed-in users (``user_routes``, as the deployed methods' COGNITO_USER_POOLS authorizer says) take the user
pool's ID token instead of a key: ``user_authorizer`` verifies it as API Gateway's Cognito authorizer does and
gives its claims, which reach the handler as ``requestContext.authorizer.claims``; no usage plan applies.

Routes default to the route table (lambda_src/contracts/api.py) and gateway responses to the contracts;
`make local` passes those of the API deployed in the emulator instead (tools/local/deployed_api.py), with
its preflights, stage throttle and usage plans. Time comes from ``clock`` (seconds since the epoch).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from lambda_src.contracts.api import AUTH_USER, ROUTES, STAGE_NAME, error_body
from lambda_src.contracts.gateway import ECHO_ORIGIN, GATEWAY_ERRORS, response_headers
from lambda_src.shared.runtime.response import DELIMITER, MAX_PRELUDE_BYTES, StreamingResponse
from tools.local.runtime import LambdaContext

# A proxy response dict; an in-process handler may also return a StreamingResponse (relayed as a stream).
Handler = Callable[[dict[str, Any], Any], Any]
# An ID token -> its claims when the user pool's authorizer accepts it, None when it refuses it.
UserAuthorizer = Callable[[str], "dict[str, str] | None"]
# A STREAM integration: the function's raw output (framed) as it arrives; ``close()`` when the client is gone.
StreamHandler = Callable[[dict[str, Any], Any], Iterable[bytes]]
# Status, headers, body (bytes, or the chunks of a streamed body).
Answer = tuple[int, dict[str, str], "bytes | Iterator[bytes]"]
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:local/" + STAGE_NAME
DAY_SECONDS = 86_400


class Throttle(NamedTuple):
    """Requests per second and bucket size of a token bucket (a stage's default method throttle, a plan's)."""

    rate_limit: float
    burst_limit: int


class UsagePlan(NamedTuple):
    """The usage plan API Gateway applies to a request: that of the API key whose value the authorizer
    returned as usageIdentifierKey."""

    plan_id: str
    key_id: str
    throttle: Throttle | None
    daily_quota: int | None


class Preflight(NamedTuple):
    """An OPTIONS method's MOCK answer (CDK's CORS preflight). With several allowed origins, CDK's response
    template replaces the static Access-Control-Allow-Origin with the request's Origin when it is one of
    ``echo_origins``."""

    status: int
    headers: dict[str, str]
    echo_origins: frozenset[str] = frozenset()

    def answer(self, origin: str | None) -> Answer:
        headers = dict(self.headers)
        if origin in self.echo_origins:
            headers["Access-Control-Allow-Origin"] = str(origin)
        return self.status, headers, b""


def contract_responses(*, cors: bool = False) -> dict[str, Answer]:
    """The gateway responses the API construct renders from the contracts, by response type (``cors``: for an
    API with browser origins)."""
    return {
        kind: (
            int(status),
            response_headers(status, cors=cors),
            json.dumps(error_body(message, error_type, code)).encode(),
        )
        for kind, (status, error_type, code, message) in GATEWAY_ERRORS.items()
    }


def _route_table() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for route in ROUTES:
        table.setdefault(route.path, set()).add(route.method)
    return table


def _user_route_table() -> frozenset[tuple[str, str]]:
    return frozenset((route.path, route.method) for route in ROUTES if route.auth == AUTH_USER)


def _template(path: str) -> re.Pattern[str]:
    """A resource path as API Gateway matches it: each {name} one non-empty path segment."""
    parts = re.split(r"(\{[A-Za-z0-9_]+\})", path)
    return re.compile("^" + "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts) + "$")  # fmt: skip


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


class _TokenBucket:
    """API Gateway's throttle: ``burst_limit`` tokens, refilled at ``rate_limit`` per second; one per request."""

    def __init__(self, limits: Throttle, now: float) -> None:
        self.limits, self.tokens, self.updated = limits, float(limits.burst_limit), now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.limits.burst_limit), self.tokens + elapsed * self.limits.rate_limit)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class LocalGateway:
    def __init__(
        self,
        handler: Handler,
        authorizer: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        usage_plan: Callable[[str], UsagePlan | None] | None = None,
        routes: dict[str, set[str]] | None = None,
        preflights: dict[str, Preflight] | None = None,
        stage_throttle: Throttle | None = None,
        responses: dict[str, Answer] | None = None,
        clock: Callable[[], float] = time.time,
        stream_handler: StreamHandler | None = None,
        streaming_routes: frozenset[str] = frozenset(),
        authorizer_cache_seconds: int = 0,
        user_routes: frozenset[tuple[str, str]] | None = None,
        user_authorizer: UserAuthorizer | None = None,
    ) -> None:
        """``usage_plan`` finds the plan of a usage identifier (None: no key of this stage has that value);
        without it, no key check and no plan limits. ``preflights``: resource path -> its OPTIONS answer."""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("The local gateway only listens on loopback.")
        self._handler = handler
        self._stream_handler = stream_handler
        self._streaming_routes = streaming_routes if stream_handler is not None else frozenset()
        self._authorizer = authorizer
        self._usage_plan = usage_plan
        self._routes = routes if routes is not None else _route_table()
        self._preflights = preflights or {}
        # (resource path, method) of the routes for signed-in users; without a user authorizer they answer 401.
        self._user_routes = user_routes if user_routes is not None else _user_route_table()
        self._user_authorizer = user_authorizer
        # Literal paths first, as API Gateway prefers them over a path parameter.
        self._templates = [(path, _template(path)) for path in sorted({*self._routes, *self._preflights},
                                                                      key=lambda p: (p.count("{"), p))]  # fmt: skip
        self._stage_throttle = stage_throttle
        self._responses = responses if responses is not None else contract_responses()
        missing = sorted(set(GATEWAY_ERRORS) - set(self._responses))
        if missing:
            raise ValueError(f"The API defines no gateway response for {missing}.")
        self._clock = clock
        # API Gateway caches a TOKEN authorizer's policy per token for the authorizer's TTL.
        self._authorizer_cache_seconds = authorizer_cache_seconds
        self._policies: dict[str, tuple[float, dict[str, Any]]] = {}
        self._plans: dict[str, tuple[float, UsagePlan]] = {}
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, ...], _TokenBucket] = {}
        self._quota_used: dict[tuple[str, str], tuple[int, int]] = {}  # (plan, key) -> (UTC day, requests)
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked bodies for streamed answers; every other answer has a length

            def __getattr__(self, name: str) -> Any:
                # http.server answers a method without a do_<METHOD> with its own HTML 501: serve them all.
                if name.startswith("do_"):
                    return lambda: gateway._serve(self)
                raise AttributeError(name)

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                # A request http.server cannot parse: the gateway's default answer, not its HTML page.
                self.close_connection = True
                if self.request_version == "HTTP/0.9":  # a request line it could not read: answer with a status
                    self.request_version = "HTTP/1.0"
                gateway._write(self, gateway._responses["DEFAULT_5XX" if code >= 500 else "DEFAULT_4XX"])

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

    def respond(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Answer:
        """What API Gateway would answer for one request (a HEAD answer has no body)."""
        status, answer_headers, data = self._answer(method, raw_path, headers, body)
        if answer_headers.get("Access-Control-Allow-Origin") == ECHO_ORIGIN:  # a gateway response's mapping
            origin = next((v for k, v in headers.items() if k.lower() == "origin"), None)
            if origin:
                answer_headers["Access-Control-Allow-Origin"] = origin
            else:
                del answer_headers["Access-Control-Allow-Origin"]
        return status, answer_headers, b"" if method == "HEAD" else data

    def _error(self, kind: str) -> Answer:
        status, headers, data = self._responses[kind]
        return status, dict(headers), bytes(data) if isinstance(data, bytes) else b""

    def _resource(self, raw_path: str) -> tuple[str, str, dict[str, str]] | None:
        """(resource path, the request's path, its path parameters) of a known route."""
        path = raw_path.split("?", 1)[0]
        prefix = f"/{STAGE_NAME}"
        if path != prefix and not path.startswith(prefix + "/"):
            return None
        resource = path[len(prefix) :].rstrip("/") or "/"
        for template, pattern in self._templates:
            found = pattern.match(resource)
            if found:
                return template, resource, {name: urllib.parse.unquote(v) for name, v in found.groupdict().items()}
        return None

    def _allowed(self, bucket: tuple[str, ...], limits: Throttle | None) -> bool:
        if limits is None:
            return True
        now = self._clock()
        with self._lock:
            return self._buckets.setdefault(bucket, _TokenBucket(limits, now)).take(now)

    def _within_quota(self, plan: UsagePlan) -> bool:
        if plan.daily_quota is None:
            return True
        day = int(self._clock() // DAY_SECONDS)
        with self._lock:
            used_day, used = self._quota_used.get((plan.plan_id, plan.key_id), (day, 0))
            used = used if used_day == day else 0
            if used >= plan.daily_quota:
                return False
            self._quota_used[(plan.plan_id, plan.key_id)] = (day, used + 1)
            return True

    def _answer(  # noqa: PLR0911 - one return per answer API Gateway gives
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> Answer:
        matched = self._resource(raw_path)
        route = matched[0] if matched else None
        preflight = self._preflights.get(route or "") if method == "OPTIONS" else None
        if matched is None or route is None or (preflight is None and method not in self._routes.get(route, set())):
            return self._error("MISSING_AUTHENTICATION_TOKEN")
        # The stage's default method throttle: one bucket per method, whoever calls.
        if not self._allowed(("stage", method, route), self._stage_throttle):
            return self._error("THROTTLED")
        if preflight is not None:  # no authorizer on the preflight's OPTIONS method
            return preflight.answer(_header(headers, "Origin"))
        token = _header(headers, "Authorization")
        if token is None:
            return self._error("UNAUTHORIZED")
        request = _Request(method, route, matched[1], matched[2], _query(raw_path), headers, body)
        if (route, method) in self._user_routes:
            claims = self._user_authorizer(token) if self._user_authorizer is not None else None
            if claims is None:
                return self._error("UNAUTHORIZED")
            return self._invoke(request, {"claims": claims})
        try:
            policy = self._authorize(token, f"{METHOD_ARN}/{method}{route}")
        except Exception as error:
            return self._error("UNAUTHORIZED" if str(error) == "Unauthorized" else "AUTHORIZER_FAILURE")
        if policy["policyDocument"]["Statement"][0]["Effect"] != "Allow":
            return self._error("ACCESS_DENIED")
        if self._usage_plan is not None:
            plan = self._plan_of(str(policy.get("usageIdentifierKey")))
            if plan is None:
                return self._error("INVALID_API_KEY")
            if not self._allowed(("plan", plan.plan_id, plan.key_id), plan.throttle):
                return self._error("THROTTLED")
            if not self._within_quota(plan):
                return self._error("QUOTA_EXCEEDED")
        return self._invoke(request, {**policy.get("context", {}), "principalId": policy["principalId"]})

    def _authorize(self, token: str, method_arn: str) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            cached = self._policies.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        policy: dict[str, Any] = self._authorizer(
            {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}, LambdaContext.for_api_gateway()
        )
        if self._authorizer_cache_seconds:
            with self._lock:
                self._policies[token] = (now + self._authorizer_cache_seconds, policy)
        return policy

    def _plan_of(self, identifier: str) -> UsagePlan | None:
        """The usage plan of the API key with that value, kept as long as the authorizer's policy (API Gateway
        does not look the key up again for every request either)."""
        assert self._usage_plan is not None  # noqa: S101 - checked by the caller
        now = self._clock()
        with self._lock:
            cached = self._plans.get(identifier)
        if cached is not None and cached[0] > now:
            return cached[1]
        plan = self._usage_plan(identifier)
        if self._authorizer_cache_seconds and plan is not None:
            with self._lock:
                self._plans[identifier] = (now + self._authorizer_cache_seconds, plan)
        return plan

    def _invoke(self, request: _Request, authorizer: dict[str, Any]) -> Answer:
        text: str | None
        body = request.body
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        route = request.route
        event = {
            "resource": route,
            "path": request.path,
            "httpMethod": request.method,
            "headers": dict(request.headers),
            "pathParameters": request.path_parameters or None,
            "queryStringParameters": request.query or None,
            "body": text if body else None,
            "isBase64Encoded": encoded,
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "stage": STAGE_NAME,
                "resourcePath": route,
                "httpMethod": request.method,
                "authorizer": authorizer,
            },
        }
        if route in self._streaming_routes and self._stream_handler is not None:
            return self._stream(event)
        try:
            result = self._handler(event, LambdaContext.for_api_gateway())
        except Exception:  # API Gateway answers a failed Lambda integration with a 502
            return self._error("INTEGRATION_FAILURE")
        if isinstance(result, StreamingResponse):  # an in-process handler that streams: framed as the loop does
            return self._read_stream(_framed(result))
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        return int(result["statusCode"]), dict(result.get("headers") or {}), data

    def _stream(self, event: dict[str, Any]) -> Answer:
        """A STREAM integration: the prelude decides status and headers, the rest is relayed as it comes."""
        assert self._stream_handler is not None  # noqa: S101 - checked by the caller
        try:
            raw = self._stream_handler(event, LambdaContext.for_api_gateway())
        except Exception:  # failed before its first byte (the function's error endpoint): 502 as buffered
            return self._error("INTEGRATION_FAILURE")
        return self._read_stream(raw)

    def _read_stream(self, raw: Iterable[bytes]) -> Answer:
        chunks = iter(raw)
        buffered = b""
        try:
            while DELIMITER not in buffered[:MAX_PRELUDE_BYTES]:  # the delimiter ends within the first 16 KB
                if len(buffered) >= MAX_PRELUDE_BYTES:
                    raise ValueError("no prelude delimiter within the first 16 KB")
                buffered += next(chunks)
            head, _, rest = buffered.partition(DELIMITER)
            prelude = json.loads(head)
            status = int(prelude["statusCode"])
            headers = {str(k): str(v) for k, v in (prelude.get("headers") or {}).items()}
        except (StopIteration, ValueError, KeyError, TypeError, AttributeError):
            # Not an HTTP integration response: API Gateway answers a STREAM integration's malformed output 500.
            _close(raw)
            return self._error("DEFAULT_5XX")

        def body() -> Iterator[bytes]:
            try:
                if rest:
                    yield rest
                yield from chunks
            finally:
                _close(raw)

        return status, headers, body()

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        length = request.headers.get("Content-Length") or "0"
        if not length.isdigit():
            request.send_error(400)
            return
        body = request.rfile.read(int(length)) if int(length) else b""
        self._write(request, self.respond(request.command, request.path, dict(request.headers.items()), body))

    @staticmethod
    def _write(request: BaseHTTPRequestHandler, answer: Answer) -> None:
        status, headers, data = answer
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding"):
                request.send_header(name, value)
        if isinstance(data, bytes):
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
            return
        request.send_header("Transfer-Encoding", "chunked")
        request.end_headers()
        try:
            for chunk in data:
                if chunk:
                    request.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    request.wfile.flush()
            request.wfile.write(b"0\r\n\r\n")
            request.wfile.flush()
        except OSError:  # the client went away: stop reading the function (its stream is closed)
            request.close_connection = True
        finally:
            _close(data)


class _Request(NamedTuple):
    method: str
    route: str  # the resource path, with its {parameters}
    path: str  # the request's own path (below the stage)
    path_parameters: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


def _query(raw_path: str) -> dict[str, str]:
    """queryStringParameters as API Gateway gives them: one value per name, the last of a repeated one."""
    _, _, query = raw_path.partition("?")
    return dict(urllib.parse.parse_qsl(query, keep_blank_values=True))


class _framed:  # noqa: N801 - reads as what it makes
    """A StreamingResponse's bytes as the Runtime API loop sends them (``StreamingResponse.chunks``)."""

    def __init__(self, response: StreamingResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.chunks()

    def close(self) -> None:
        self._response.close()


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
