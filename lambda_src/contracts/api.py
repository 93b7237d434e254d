"""The REST API's contract with its clients: stage, routes, the error shape and API Gateway's own answers.

The route table is the one list of what the API serves. The API construct builds one method per route
(with the request model of its schema, behind the authorizer) and wires it to the route's function; the
function dispatches on it and validates bodies against the same schema; the local gateway and the tests
derive their expectations from it. Adding a route is one entry here plus its operation in the function.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from lambda_src.contracts.schemas import CHAT_COMPLETION_REQUEST, PROMPT_REQUEST, REQUEST_SCHEMAS

STAGE_NAME = "v1"
# Groups requests of one conversation in the audit log (or the OpenAI `user` field).
SESSION_HEADER = "X-Session-Id"


class Route(NamedTuple):
    method: str
    path: str
    # The function package under lambda_src/ that serves it, and the operation in that function.
    function: str
    operation: str
    # Name of the request body's schema in REQUEST_SCHEMAS; None for routes without a body.
    body: str | None = None
    # One audit record per request (model calls).
    audited: bool = False


ROUTES: tuple[Route, ...] = (
    Route("GET", "/models", function="inference", operation="list_models"),
    Route("POST", "/chat/completions", function="inference", operation="chat_completions",
          body=CHAT_COMPLETION_REQUEST, audited=True),
    Route("POST", "/model", function="inference", operation="prompt", body=PROMPT_REQUEST, audited=True),
)  # fmt: skip


def routes_of(function: str) -> tuple[Route, ...]:
    return tuple(route for route in ROUTES if route.function == function)


def request_schema(route: Route) -> dict[str, Any] | None:
    return REQUEST_SCHEMAS[route.body] if route.body else None


def describe_routes() -> str:
    """ "GET /models, POST /chat/completions and POST /model"."""
    names = [f"{route.method} {route.path}" for route in ROUTES]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def error_body(message: str, error_type: str, code: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape, the one every error of the API has, whoever answers it."""
    return {"error": {"message": message, "type": error_type, "code": code, "param": param}}


# API Gateway's own errors (by CloudFormation response type), in OpenAI's error shape: (status, type, code, message).
GATEWAY_ERRORS: dict[str, tuple[str, str, str, str]] = {
    "UNAUTHORIZED": ("401", "invalid_request_error", "invalid_api_key",
                     "Missing or invalid API key: send Authorization: Bearer <key>."),
    "ACCESS_DENIED": ("403", "invalid_request_error", "forbidden", "This key may not use this API."),
    "INVALID_API_KEY": ("403", "invalid_request_error", "forbidden", "This key has no usage plan on this API."),
    "MISSING_AUTHENTICATION_TOKEN": ("404", "invalid_request_error", "unknown_route",
                                     f"Unknown route: the API serves {describe_routes()}."),
    "THROTTLED": ("429", "rate_limit_error", "rate_limit_exceeded",
                  "Too many requests for this key; retry after a short wait."),
    "QUOTA_EXCEEDED": ("429", "rate_limit_error", "insufficient_quota",
                       "This key has used its daily request quota."),
    "BAD_REQUEST_BODY": ("400", "invalid_request_error", "invalid_request",
                         "The request body does not match the API's JSON schema."),
    "BAD_REQUEST_PARAMETERS": ("400", "invalid_request_error", "invalid_request",
                               "The request is missing a required parameter."),
    "REQUEST_TOO_LARGE": ("413", "invalid_request_error", "request_too_large",
                          "The request body is too large."),
    "UNSUPPORTED_MEDIA_TYPE": ("415", "invalid_request_error", "unsupported_media_type",
                               "Send the body as application/json."),
    "INTEGRATION_FAILURE": ("502", "upstream_error", "upstream_error", "The inference function failed; try again."),
    "INTEGRATION_TIMEOUT": ("504", "upstream_error", "upstream_timeout",
                            "The model did not answer in time; try again or ask for fewer tokens."),
    "AUTHORIZER_FAILURE": ("500", "server_error", "internal_error", "The API could not check the key."),
    "AUTHORIZER_CONFIGURATION_ERROR": ("500", "server_error", "internal_error", "The API could not check the key."),
    "WAF_FILTERED": ("403", "invalid_request_error", "forbidden", "The request was blocked by the firewall."),
    "DEFAULT_4XX": ("400", "invalid_request_error", "invalid_request", "The request could not be processed."),
    "DEFAULT_5XX": ("500", "server_error", "internal_error", "The server could not handle the request."),
}  # fmt: skip
RETRY_AFTER_SECONDS = "1"
