"""Hypothesis fuzzing of the inference API: whatever arrives, the answer is well-formed JSON in the
documented shape, client faults are 4xx, nothing crashes, nothing leaks.

`make test` runs a few hundred examples per property; `make fuzz` runs FUZZ_EXAMPLES=10000.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from lambda_src.chat.history import History
from lambda_src.chat.logic import ChatApi
from lambda_src.contracts.api import routes_of
from lambda_src.inference.logic import Api
from lambda_src.retrieval.logic import RetrievalApi
from lambda_src.shared.config_source import ModelSettings
from lambda_src.shared.embeddings import Embeddings
from lambda_src.shared.errors import upstream_error
from lambda_src.shared.models import Completion, CompletionRequest, ModelStream, TextDelta
from lambda_src.shared.vectors import VectorIndex

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
# Planted where a leak could come from: the system prompt, the upstream key, a model exception's text, and
# another caller's request. None of them may ever reach an answer.
SYSTEM_CANARY = "SYSTEM-PROMPT-LEAK_CANARY"
UPSTREAM_KEY_CANARY = "sk-upstream-LEAK_CANARY-never-shown"
EXCEPTION_CANARY = "EXCEPTION-TEXT-LEAK_CANARY"
OTHER_CALLER_TEXT = "other-caller-private-prompt"
CANARIES = (SYSTEM_CANARY, UPSTREAM_KEY_CANARY, EXCEPTION_CANARY, OTHER_CALLER_TEXT)
SETTINGS = ModelSettings(provider="bedrock", model_id="anthropic.claude-3-haiku-20240307-v1:0", temperature=0.2,
                         top_p=0.9, max_output_tokens=1024, request_timeout_seconds=25,
                         system_prompt=f"Be brief. {SYSTEM_CANARY}",
                         upstream_base_url="https://api.openai.com/v1")  # fmt: skip
# 401: an event without the authorizer's key id (never served anonymously).
ALLOWED_STATUSES = {200, 400, 401, 404, 405, 409, 413}


class Config:
    def settings(self) -> ModelSettings:
        return SETTINGS

    def leaves(self) -> dict[str, str]:
        return {"provider": "bedrock", "model-id": "amazon.titan-embed-text-v2:0", "base-url": "https://x.example/v1"}

    def upstream_api_key(self) -> str:
        return UPSTREAM_KEY_CANARY


class Model:
    """Answers with the caller's own last message, or fails with secrets in the exception's text."""

    failed = False

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def complete(self, request: CompletionRequest) -> Completion:
        text = request.messages[-1].content
        if len(text) % 3 == 1:
            Model.failed = True
            raise RuntimeError(f"upstream refused key {self._api_key} ({EXCEPTION_CANARY}): {request.system}")
        if len(text) % 3 == 2:
            Model.failed = True
            raise upstream_error()
        return Completion(text=text, finish_reason="stop", prompt_tokens=1, completion_tokens=1)

    def stream(self, request: CompletionRequest) -> ModelStream:
        raise AssertionError("the fuzzed bodies do not stream")


API = Api(Config(), lambda _settings: Model(Config().upstream_api_key()), max_body_bytes=16_384)
# A request from someone else first: its text must never show up in a later caller's answer.
API.handle({"resource": "/model", "httpMethod": "POST", "body": json.dumps({"prompt": OTHER_CALLER_TEXT})})


def handle(event: Any) -> dict[str, Any]:
    Model.failed = False
    response: dict[str, Any] = API.handle(event).response
    return response


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "developer", "tool", "", 7]),
         "content": st.one_of(st.text(max_size=200), st.lists(json_values, max_size=3), json_values)}
    ),
    max_size=6,
)  # fmt: skip
chat_bodies = st.fixed_dictionaries(
    {"messages": messages},
    optional={"model": st.one_of(st.just(SETTINGS.model_id), json_values), "temperature": json_values,
              "top_p": json_values, "max_tokens": json_values, "stop": json_values, "stream": json_values,
              "user": json_values, "n": json_values, "tools": json_values},
)  # fmt: skip
raw_bodies = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    json_values.map(json.dumps),
    chat_bodies.map(json.dumps),
    st.integers(min_value=1, max_value=50_000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=16_000, max_value=40_000).map(lambda n: json.dumps({"prompt": "x" * n})),
    st.just('{"prompt": "\\ud800"}'),
    st.just("\ufeff{}"),
)
ROUTES = st.sampled_from([*(route.path for route in routes_of("inference")), "/", "", "/v1/models"])
AUTHORIZED = {"requestId": "fuzz", "authorizer": {"keyId": "key_1", "owner": "o"}}
_FIELDS = {
        "resource": st.one_of(ROUTES, st.text(max_size=40), json_values),
        "path": st.one_of(st.text(max_size=40), json_values),
        "httpMethod": st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "post"]), json_values),
        "headers": st.one_of(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5), json_values),
        "body": raw_bodies,
        "isBase64Encoded": st.one_of(st.booleans(), json_values),
        "requestContext": st.one_of(json_values, st.fixed_dictionaries(
            {"requestId": st.text(max_size=20), "authorizer": st.one_of(json_values, st.fixed_dictionaries(
                {"keyId": json_values, "owner": json_values}))})),
}  # fmt: skip
# Half the events carry what API Gateway passes after the authorizer (else nearly all would stop at the 401).
events = st.one_of(
    st.fixed_dictionaries({}, optional=_FIELDS),
    st.fixed_dictionaries({"requestContext": st.just(AUTHORIZED)},
                          optional={k: v for k, v in _FIELDS.items() if k != "requestContext"}),
)  # fmt: skip


def _check(response: dict[str, Any]) -> None:
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert response["headers"]["Content-Type"] == "application/json"
    status = response["statusCode"]
    # 5xx only when the model itself failed (as planted); a client fault is always a 4xx.
    allowed = ALLOWED_STATUSES | ({500, 502} if Model.failed else set())
    assert status in allowed, (status, response["body"][:300])
    body = json.loads(response["body"])
    assert isinstance(body, dict)
    if status >= 400:
        assert set(body) == {"error"}
        assert set(body["error"]) == {"message", "type", "code", "param"}
        assert all(isinstance(body["error"][k], str) for k in ("message", "type", "code"))
    text = response["body"]
    assert "Traceback" not in text and 'File "' not in text
    assert not [canary for canary in CANARIES if canary in text]


@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(events)
def test_any_event_gets_a_well_formed_answer(event):
    _check(handle(event))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat_bodies, st.booleans())
def test_any_chat_body_gets_a_well_formed_answer(body, encode):
    text = json.dumps(body)
    event = {"resource": "/chat/completions", "httpMethod": "POST", "headers": {}, "isBase64Encoded": encode,
             "body": base64.b64encode(text.encode()).decode() if encode else text,
             "requestContext": AUTHORIZED}  # fmt: skip
    _check(handle(event))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_as_base64_body(data):
    event = {"resource": "/model", "httpMethod": "POST", "isBase64Encoded": True,
             "body": base64.b64encode(data).decode(), "requestContext": AUTHORIZED}  # fmt: skip
    _check(handle(event))


def test_the_planted_leaks_are_reachable_and_the_check_catches_them():
    """The model really fails with the secrets in its exception, and the check fails on any canary."""
    body = {"messages": [{"role": "user", "content": "x"}]}  # len 1: the planted exception
    event = {
        "resource": "/chat/completions",
        "httpMethod": "POST",
        "body": json.dumps(body),
        "requestContext": AUTHORIZED,
    }
    response = handle(event)
    assert Model.failed and response["statusCode"] == 500
    _check(response)
    for canary in CANARIES:
        leaked = {
            **response,
            "body": json.dumps({"error": {"message": canary, "type": "t", "code": "c", "param": None}}),
        }
        with pytest.raises(AssertionError):
            _check(leaked)


class Embedder:
    """Embeds, or fails with secrets in the exception's text (as the chat model above)."""

    def embed(self, texts: Sequence[str]) -> Embeddings:
        size = sum(len(text) for text in texts)
        if size % 3 == 1:
            Model.failed = True
            raise RuntimeError(f"embedding upstream refused key {UPSTREAM_KEY_CANARY} ({EXCEPTION_CANARY})")
        if size % 3 == 2:
            Model.failed = True
            raise upstream_error()
        return Embeddings([[0.5, 0.5, 0.5, 0.5] for _ in texts], len(texts), 1)


class VectorsClient:
    """S3 Vectors answering with another caller's query text in a chunk's metadata would be a leak through the
    index, not the API: the chunks are the knowledge base's. What must not leak is an exception's text."""

    def query_vectors(self, **request: Any) -> dict[str, Any]:
        if request["topK"] == 7:
            Model.failed = True
            raise RuntimeError(f"index failure {EXCEPTION_CANARY}")
        return {"vectors": [{"key": "k", "distance": 0.25, "metadata": {"text": "chunk", "source": "s3"}}],
                "distanceMetric": "cosine"}  # fmt: skip


class Leaves:
    def leaves(self) -> dict[str, str]:
        return {"provider": "bedrock", "model-id": "amazon.titan-embed-text-v2:0", "base-url": "https://x.example/v1"}


RETRIEVAL = RetrievalApi(Leaves(), lambda _settings, _dimension: Embedder(),
                         VectorIndex(VectorsClient(), "arn:aws:s3vectors:us-east-1:1:bucket/b/index/i"), dimension=4,
                         max_body_bytes=16_384)  # fmt: skip
retrieval_bodies = st.one_of(
    st.fixed_dictionaries({"query": st.one_of(st.text(max_size=100), json_values)},
                          optional={"top_k": json_values | st.integers(-3, 30), "source": json_values}),
    st.fixed_dictionaries({"input": st.one_of(st.text(max_size=100), st.lists(st.text(max_size=30), max_size=5),
                                              json_values)},
                          optional={"model": json_values, "encoding_format": json_values, "dimensions": json_values,
                                    "user": json_values}),
)  # fmt: skip


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([route.path for route in routes_of("retrieval")]), st.one_of(retrieval_bodies.map(json.dumps),
                                                                                      raw_bodies))  # fmt: skip
def test_any_retrieval_request_gets_a_well_formed_answer(path, body):
    Model.failed = False
    event = {"resource": path, "httpMethod": "POST", "headers": {}, "body": body, "requestContext": AUTHORIZED}
    _check(RETRIEVAL.handle(event).response)


ALICE_TITLE = "alice-private-conversation-LEAK_CANARY"


class ChatModel:
    def complete(self, request: CompletionRequest) -> Completion:
        raise AssertionError("the chat streams")

    def stream(self, request: CompletionRequest) -> ModelStream:
        question = request.messages[-1].content
        if len(question) % 5 == 1:
            Model.failed = True
            raise RuntimeError(f"model refused key {UPSTREAM_KEY_CANARY} ({EXCEPTION_CANARY})")

        class Stream:
            def __iter__(self) -> Any:
                yield TextDelta("An answer.")
                if len(question) % 5 == 2:
                    raise RuntimeError(f"mid-stream {EXCEPTION_CANARY}")

            def close(self) -> None:
                return None

        return Stream()


@pytest.fixture(scope="module")
def chat_world() -> Any:
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName="history", BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                         {"AttributeName": "sk", "KeyType": "RANGE"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                    {"AttributeName": "sk", "AttributeType": "S"}])  # fmt: skip
        history = History(dynamodb.Table("history"), retention_days=30)
        secret = history.create("alice", ALICE_TITLE)
        bobs = history.create("bob", "Bob's")
        api = ChatApi(history, model=Config(), model_for=lambda _s: ChatModel(), embedding=Leaves(),
                      embedder_for=lambda _s, _d: Embedder(),
                      index=VectorIndex(VectorsClient(), "arn:aws:s3vectors:us-east-1:1:bucket/b/index/i"),
                      dimension=4, max_body_bytes=16_384, stream_seconds=30)  # fmt: skip
        yield api, secret.id, bobs.id


chat_paths = st.one_of(
    st.sampled_from(
        ["/conversations", "/conversations/{id}", "/conversations/{id}/messages", "/conversations/{bob}/messages"]
    ),
    st.text(max_size=30).map(lambda t: "/conversations/" + t),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"]), chat_paths,
       st.sampled_from(["bob", "", None]), st.one_of(st.none(), st.dictionaries(st.text(max_size=8),
                                                                                  st.text(max_size=30), max_size=3)),
       st.one_of(st.none(), st.text(max_size=40), json_values.map(json.dumps),
                 st.fixed_dictionaries({"content": st.text(max_size=60)}).map(json.dumps),
                 st.fixed_dictionaries({"title": json_values}).map(json.dumps)))  # fmt: skip
def test_any_chat_request_answers_in_the_error_shape_and_never_with_another_users_conversation(
    chat_world, method, path, user, query, body
):
    api, alice_conversation, bob_conversation = chat_world
    Model.failed = False
    resource = path
    parameters = None
    if path.startswith("/conversations/"):
        rest = path[len("/conversations/") :]
        own = {"{id}": alice_conversation, "{bob}": bob_conversation}
        conversation = next((v for k, v in own.items() if rest.startswith(k)), rest.split("/")[0])
        parameters = {"conversation_id": conversation}
        resource = "/conversations/{conversation_id}" + ("/messages" if rest.endswith("/messages") else "")
    claims = {"claims": {"sub": user}} if user is not None else {}
    event = {"resource": resource, "httpMethod": method, "headers": {}, "pathParameters": parameters,
             "queryStringParameters": query, "body": body, "requestContext": {"requestId": "fuzz",
                                                                               "authorizer": claims}}  # fmt: skip
    outcome = api.handle(event)
    if outcome.stream is None:
        _check(outcome.response)
        text = outcome.response["body"]
    else:
        text = b"".join(outcome.stream.body).decode()
        assert outcome.stream.headers["Content-Type"].startswith("text/event-stream")
        for block in filter(None, text.split("\n\n")):
            name, data = (line.split(": ", 1)[1] for line in block.splitlines())
            if name == "error":
                assert set(json.loads(data)["error"]) == {"message", "type", "code", "param"}
        assert "Traceback" not in text and not [canary for canary in CANARIES if canary in text]
    assert ALICE_TITLE not in text  # only alice may read her conversation, and she is never the caller here
