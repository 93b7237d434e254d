"""The REST API's contract with its clients: stage, routes, the error shape and API Gateway's own answers.

The route table is the one list of what the API serves. The API construct builds one method per route
(with the request model of its schema, behind the authorizer) and wires it to the route's function; the
function dispatches on it and validates bodies against the same schema; the local gateway and the tests
derive their expectations from it. Adding a route is one entry here plus its operation in the function.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from lambda_src.contracts.chat import CONVERSATION_ID_PARAMETER
from lambda_src.contracts.schemas import (
    CHAT_COMPLETION_REQUEST,
    CREATE_CONVERSATION_REQUEST,
    EMBEDDINGS_REQUEST,
    MESSAGE_REQUEST,
    PROMPT_REQUEST,
    RENAME_CONVERSATION_REQUEST,
    REQUEST_SCHEMAS,
    RETRIEVE_REQUEST,
)

STAGE_NAME = "v1"
_CONVERSATION = "/conversations/{" + CONVERSATION_ID_PARAMETER + "}"
# Groups requests of one conversation in the audit log (or the OpenAI `user` field).
SESSION_HEADER = "X-Session-Id"
# What the authorizer tells the functions (and the access log) about the caller: never the key itself.
CONTEXT_KEY_ID = "keyId"
CONTEXT_OWNER = "owner"
CONTEXT_PLAN = "plan"
# A key's own budget limits (JSON text, lambda_src/contracts/spend.py; empty: its plan's).
CONTEXT_LIMITS = "limits"
# How a route's callers authenticate: an API key (the Bearer-key TOKEN authorizer, usage plans), or a signed-in
# user (the Cognito user pool authorizer: the ID token of the user pool's app client). A user route's function
# finds the verified token's claims under requestContext.authorizer.claims; the user is its `sub`.
AUTH_API_KEY = "api_key"
AUTH_USER = "user"
CLAIMS = "claims"
CLAIM_SUBJECT = "sub"


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
    auth: str = AUTH_API_KEY


ROUTES: tuple[Route, ...] = (
    Route("GET", "/models", function="inference", operation="list_models"),
    Route("POST", "/chat/completions", function="inference", operation="chat_completions",
          body=CHAT_COMPLETION_REQUEST, audited=True),
    Route("POST", "/model", function="inference", operation="prompt", body=PROMPT_REQUEST, audited=True),
    # The calling key's own token and cost limits and what it has used of them.
    Route("GET", "/usage", function="inference", operation="usage"),
    # The knowledge base for API clients: its own function, which may read the index but call no chat model.
    Route("POST", "/embeddings", function="retrieval", operation="embeddings", body=EMBEDDINGS_REQUEST,
          audited=True),
    Route("POST", "/retrieve", function="retrieval", operation="retrieve", body=RETRIEVE_REQUEST, audited=True),
    # Signed-in users' conversations (the chat function): each user reaches only their own.
    Route("GET", "/conversations", function="chat", operation="list_conversations", auth=AUTH_USER),
    Route("POST", "/conversations", function="chat", operation="create_conversation",
          body=CREATE_CONVERSATION_REQUEST, auth=AUTH_USER),
    Route("GET", _CONVERSATION, function="chat", operation="get_conversation", auth=AUTH_USER),
    Route("PATCH", _CONVERSATION, function="chat", operation="rename_conversation",
          body=RENAME_CONVERSATION_REQUEST, auth=AUTH_USER),
    Route("DELETE", _CONVERSATION, function="chat", operation="delete_conversation", auth=AUTH_USER),
    Route("POST", _CONVERSATION + "/messages", function="chat", operation="post_message", body=MESSAGE_REQUEST,
          audited=True, auth=AUTH_USER),
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
