"""API Gateway's own answers, in the API's error shape: the API construct renders them as gateway responses and
the local gateway gives them. (The functions answer with lambda_src/shared/errors.py; only its 401 for a request
without the authorizer's context reads UNAUTHORIZED here, so the two can never differ.)"""

from __future__ import annotations

from lambda_src.contracts.api import describe_routes

# API Gateway's own errors (by CloudFormation response type), in OpenAI's error shape: (status, type, code, message).
GATEWAY_ERRORS: dict[str, tuple[str, str, str, str]] = {
    # One answer for both authorizers: an API key, or a signed-in user's ID token (missing, wrong or expired).
    "UNAUTHORIZED": ("401", "invalid_request_error", "invalid_api_key",
                     "Missing or invalid credentials: send Authorization: Bearer <API key>, or on the conversation "
                     "routes a signed-in user's current ID token."),
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
    "INTEGRATION_FAILURE": ("502", "upstream_error", "upstream_error",
                            "The function serving this route failed; try again."),
    "INTEGRATION_TIMEOUT": ("504", "upstream_error", "upstream_timeout",
                            "The model did not answer in time; try again or ask for fewer tokens."),
    "AUTHORIZER_FAILURE": ("500", "server_error", "internal_error", "The API could not check the key."),
    "AUTHORIZER_CONFIGURATION_ERROR": ("500", "server_error", "internal_error", "The API could not check the key."),
    "WAF_FILTERED": ("403", "invalid_request_error", "forbidden", "The request was blocked by the firewall."),
    "DEFAULT_4XX": ("400", "invalid_request_error", "invalid_request", "The request could not be processed."),
    "DEFAULT_5XX": ("500", "server_error", "internal_error", "The server could not handle the request."),
}  # fmt: skip
RETRY_AFTER_SECONDS = "1"
# A gateway response's header mapped from the request (not a static value): the caller's Origin, echoed so a
# browser app can read the error (an expired sign-in's 401, a 429) instead of seeing a network failure. The
# bodies are the fixed sentences above, never a caller's data, and no credentials mode is allowed.
ECHO_ORIGIN = "method.request.header.Origin"
# What a browser app may read of an answer besides the simple headers.
EXPOSED_HEADERS = "Retry-After, X-Request-Id"


def response_headers(status: str, *, cors: bool = False) -> dict[str, str]:
    """The headers of a gateway response: JSON, on a 429 when to retry, and with ``cors`` (the API has browser
    origins) the request's Origin echoed (``ECHO_ORIGIN``) and the readable headers."""
    headers = {"Content-Type": "application/json"}
    if status == "429":
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    if cors:
        headers.update({"Access-Control-Allow-Origin": ECHO_ORIGIN, "Access-Control-Expose-Headers": EXPOSED_HEADERS,
                        "Vary": "Origin"})  # fmt: skip
    return headers
