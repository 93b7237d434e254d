"""POST /retrieve and POST /embeddings: the retrieval function's logic against a stubbed S3 Vectors client
(botocore Stubber checks every QueryVectors call) and Titan through a stubbed bedrock-runtime; the openai SDK's
``embeddings.create`` through the local gateway, the real authorizer and the handler."""

from __future__ import annotations

import base64
import io
import json
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import openai
import pytest
from botocore.stub import Stubber

from lambda_src.authorizer import handler as authorizer_handler
from lambda_src.contracts import knowledge as k
from lambda_src.retrieval import handler as retrieval_handler
from lambda_src.retrieval.logic import RetrievalApi
from lambda_src.shared.audit_writer import AuditWriter
from lambda_src.shared.embeddings import Embedder, Embeddings, EmbeddingSettings, TitanEmbedder
from lambda_src.shared.errors import rate_limited
from lambda_src.shared.vectors import VectorIndex
from tests.aws_fakes import INDEX_ARN, REGION, issue_key, stub_client
from tools.local.gateway import LocalGateway

TITAN = k.TITAN_V2
LEAVES = {"provider": "bedrock", "model-id": TITAN, "base-url": "https://api.openai.com/v1"}
QUERY_VECTOR = [0.5, 0.5, 0.5, 0.5]


class Leaves:
    def __init__(self, **overrides: str) -> None:
        self.values = {**LEAVES, **overrides}

    def leaves(self) -> dict[str, str]:
        return dict(self.values)


class FakeEmbedder:
    """Vectors of the asked size; one token per word. Remembers what it was asked."""

    def __init__(self, dimension: int, calls: list[tuple[list[str], int]]) -> None:
        self.dimension, self.calls = dimension, calls

    def embed(self, texts: Sequence[str]) -> Embeddings:
        self.calls.append((list(texts), self.dimension))
        vectors = [[0.5] * self.dimension if i == 0 else [0.25 * (i + 1)] * self.dimension for i in range(len(texts))]
        return Embeddings(vectors, sum(len(t.split()) for t in texts), 1)


class Throttled:
    def embed(self, texts: Sequence[str]) -> Embeddings:
        raise rate_limited("The embedding model is throttling requests; try again shortly.")


class Firehose:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def put_record(self, DeliveryStreamName: str, Record: dict[str, bytes]) -> dict[str, Any]:  # noqa: N803
        self.records.append(json.loads(Record["Data"]))
        return {"RecordId": "1"}


class World:
    def __init__(
        self, content: str = "full", embedder: Embedder | None = None, leaves: dict[str, str] | None = None
    ) -> None:
        self.calls: list[tuple[list[str], int]] = []
        self.client = stub_client("s3vectors")
        self.stub = Stubber(self.client)
        self.stub.activate()
        self.firehose = Firehose()
        audit = AuditWriter(self.firehose, "audit", mode="best_effort", content=content, stage="dev")

        def embedder_for(settings: EmbeddingSettings, dimension: int) -> Embedder:
            self.settings = settings
            return embedder or FakeEmbedder(dimension, self.calls)

        index = VectorIndex(self.client, INDEX_ARN)
        self.api = RetrievalApi(Leaves(**(leaves or {})), embedder_for, index, dimension=4, max_body_bytes=262_144,
                                audit=audit)  # fmt: skip

    def expect_query(self, hits: list[dict[str, Any]], *, top_k: int = k.DEFAULT_TOP_K,
                     where: dict[str, Any] | None = None) -> None:  # fmt: skip
        expected: dict[str, Any] = {"indexArn": INDEX_ARN, "topK": top_k, "queryVector": {"float32": QUERY_VECTOR},
                                    "returnMetadata": True, "returnDistance": True}  # fmt: skip
        if where is not None:
            expected["filter"] = where
        self.stub.add_response("query_vectors", {"vectors": hits, "distanceMetric": "cosine"}, expected)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        event = {"resource": path, "path": path, "httpMethod": "POST", "headers": headers or {},
                 "body": body if isinstance(body, str) else json.dumps(body), "isBase64Encoded": False,
                 "requestContext": {"requestId": "req-1", "authorizer": {"keyId": "key_00000000000000aa",
                                                                         "owner": "alice"}}}  # fmt: skip
        response = self.api.handle(event).response
        return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def world() -> Iterator[World]:
    made = World()
    yield made
    made.stub.assert_no_pending_responses()
    made.stub.deactivate()


def hit(document: str, distance: float, text: str = "chunk text", source: str = k.SOURCE_S3) -> dict[str, Any]:
    return {"key": k.vector_key(document, 0), "distance": distance,
            "metadata": {k.META_SOURCE: source, k.META_DOCUMENT: document, k.META_TEXT: text,
                         k.META_URI: f"s3://bucket/{document}", k.META_TITLE: document.rsplit("/", 1)[-1]}}  # fmt: skip


def test_retrieve_embeds_the_query_at_the_index_dimension_and_answers_the_nearest_chunks_with_scores(world):
    world.expect_query([hit("s3/knowledge/a.md", 0.125, "Paris is the capital."), hit("s3/knowledge/b.md", 0.5)])
    status, body = world.post("/retrieve", {"query": "capital of France?"})
    assert status == 200
    assert world.calls == [(["capital of France?"], 4)]
    assert [(c["document_id"], c["score"], c["index"]) for c in body["data"]] == [
        ("s3/knowledge/a.md", 0.875, 0), ("s3/knowledge/b.md", 0.5, 1)]  # fmt: skip
    first = body["data"][0]
    assert first == {"object": "knowledge.chunk", "index": 0, "text": "Paris is the capital.",
                     "document_id": "s3/knowledge/a.md", "source": "s3", "uri": "s3://bucket/s3/knowledge/a.md",
                     "title": "a.md", "score": 0.875}  # fmt: skip
    assert body["model"] == TITAN and body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_retrieve_filters_on_the_source_and_asks_for_top_k(world):
    world.expect_query([], top_k=20, where={k.META_SOURCE: {"$eq": k.SOURCE_YOUTUBE}})
    status, body = world.post("/retrieve", {"query": "a talk about vectors", "top_k": 20, "source": "youtube"})
    assert (status, body["data"]) == (200, [])  # an empty knowledge base: an empty list, not an error


@pytest.mark.parametrize(
    ("body", "param"),
    [({"query": "q", "top_k": 21}, "top_k"), ({"query": "q", "top_k": 0}, "top_k"), ({"query": ""}, "query"),
     ({"query": "q", "source": "dropbox"}, "source"), ({"top_k": 3}, "query"), ({"query": "x" * 4001}, "query"),
     ({"query": "   "}, None)],
)  # fmt: skip
def test_bad_retrieve_requests_are_400s_in_the_error_shape_and_query_nothing(world, body, param):
    status, answer = world.post("/retrieve", body)
    assert status == 400 and answer["error"]["type"] == "invalid_request_error"
    if param:
        assert param in answer["error"]["message"]
    assert world.calls == []


def test_a_throttled_index_is_a_429_and_a_failing_one_a_502_without_details(world):
    world.stub.add_client_error("query_vectors", service_error_code="TooManyRequestsException", http_status_code=429)
    world.stub.add_client_error("query_vectors", service_error_code="AccessDeniedException", http_status_code=403,
                                service_message="User arn:aws:iam::123456789012:role/x is not authorized")  # fmt: skip
    status, body = world.post("/retrieve", {"query": "q"})
    assert (status, body["error"]["code"]) == (429, "rate_limit_exceeded")
    status, body = world.post("/retrieve", {"query": "q"})
    assert (status, body["error"]["type"]) == (502, "upstream_error")
    assert "arn:aws:iam" not in json.dumps(body)


def test_a_throttled_embedding_model_is_a_429():
    world = World(embedder=Throttled())
    status, body = world.post("/retrieve", {"query": "q"})
    assert (status, body["error"]["code"]) == (429, "rate_limit_exceeded")


def test_retrieve_is_audited_with_the_query_as_input_and_the_sources_found_as_output(world):
    world.expect_query([hit("s3/knowledge/a.md", 0.25, "secret chunk text")])
    world.post("/retrieve", {"query": "capital of France?"}, headers={"X-Session-Id": "s-1"})
    (record,) = world.firehose.records
    assert record["input_text"] == "capital of France?"
    assert json.loads(record["output_text"]) == [{"document_id": "s3/knowledge/a.md", "uri": "s3://bucket/s3/knowledge"
                                                  "/a.md", "score": 0.75}]  # fmt: skip
    assert "secret chunk text" not in record["output_text"]
    assert (record["model_id"], record["provider"], record["prompt_tokens"]) == (TITAN, "bedrock", 3)
    assert (record["user_id"], record["session_id"], record["status_code"]) == ("alice", "key_00000000000000aa:s-1",
                                                                                200)  # fmt: skip


def test_a_refused_request_is_audited_too_and_metadata_only_keeps_no_text():
    world = World(content="metadata_only")
    world.post("/embeddings", {"input": "hello there", "model": "another-model"})
    world.post("/retrieve", {"query": "q", "top_k": 99})
    first, second = world.firehose.records
    assert (first["status_code"], first["error_type"], first["input_text"]) == (404, "model_not_found", "")
    assert (second["status_code"], second["input_text"], second["output_text"]) == (400, "", "")


def test_embeddings_answer_openais_shape_in_floats_and_in_base64(world):
    status, body = world.post("/embeddings", {"input": ["first text", "second"], "model": TITAN})
    assert status == 200
    assert body["object"] == "list" and body["model"] == TITAN
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0), ("embedding", 1)]
    assert body["data"][0]["embedding"] == [0.5] * 4 and body["data"][1]["embedding"] == [0.5] * 4
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    status, encoded = world.post("/embeddings", {"input": "one", "encoding_format": "base64"})
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert struct.unpack("<4f", raw) == (0.5, 0.5, 0.5, 0.5)
    assert world.calls == [(["first text", "second"], 4), (["one"], 4)]


def test_embeddings_take_a_titan_size_for_titan_and_any_size_from_an_openai_compatible_model():
    titan = World()
    status, body = titan.post("/embeddings", {"input": "x", "dimensions": 256})
    assert status == 200 and len(body["data"][0]["embedding"]) == 256
    status, body = titan.post("/embeddings", {"input": "x", "dimensions": 300})
    assert (status, body["error"]["code"]) == (400, "value_out_of_range") and "256, 512, 1024" in body["error"][
        "message"
    ]
    upstream = World(leaves={"provider": "openai-compatible", "model-id": "all-minilm-l6-v2"})
    status, body = upstream.post("/embeddings", {"input": "x", "dimensions": 300, "model": "all-minilm-l6-v2"})
    assert status == 200 and len(body["data"][0]["embedding"]) == 300


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [({"input": [1, 2, 3]}, 400, "invalid_request"), ({"input": []}, 400, None), ({"input": ["a", "  "]}, 400, None),
     ({"input": ["a"] * (k.MAX_EMBEDDING_INPUTS + 1)}, 400, None), ({"input": "a", "model": "gpt"}, 404,
     "model_not_found"), ({"input": "a", "encoding_format": "int8"}, 400, None), ({}, 400, None)],
)  # fmt: skip
def test_bad_embeddings_requests_are_refused_clearly_and_embed_nothing(world, body, status, code):
    answer_status, answer = world.post("/embeddings", body)
    assert answer_status == status and set(answer) == {"error"}
    if code:
        assert answer["error"]["code"] == code
    assert world.calls == []


def test_titan_is_called_at_the_asked_size_for_each_text():
    client = stub_client("bedrock-runtime")
    stub = Stubber(client)
    for text in ("a", "b"):
        answer = json.dumps({"embedding": [0.1] * 256, "inputTextTokenCount": 1}).encode()
        request = json.dumps({"inputText": text, "dimensions": 256, "normalize": True})
        stub.add_response("invoke_model", {"body": io.BytesIO(answer), "contentType": "application/json"},
                          {"modelId": TITAN, "body": request, "contentType": "application/json",
                           "accept": "application/json"})  # fmt: skip
    world = World(embedder=None)
    world.api._embedder_for = lambda settings, dimension: TitanEmbedder(client, settings.model_id, dimension, 1)
    with stub:
        status, body = world.post("/embeddings", {"input": ["a", "b"], "dimensions": 256})
    assert status == 200 and body["usage"]["prompt_tokens"] == 2
    stub.assert_no_pending_responses()


@pytest.fixture
def gateway(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalGateway, str]]:
    ssm = boto3.client("ssm", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    _, key = issue_key(ssm, dynamodb, boto3.client("apigateway", region_name=REGION))
    monkeypatch.setattr(authorizer_handler, "DYNAMODB", dynamodb)
    monkeypatch.setattr(authorizer_handler, "TABLE", "keys")
    calls: list[tuple[list[str], int]] = []
    index = VectorIndex(stub_client("s3vectors"), INDEX_ARN)
    api = RetrievalApi(Leaves(), lambda _settings, dimension: FakeEmbedder(dimension, calls), index, dimension=4,
                       max_body_bytes=262_144)  # fmt: skip
    monkeypatch.setattr(retrieval_handler, "API", api)
    started = LocalGateway(retrieval_handler.lambda_handler, authorizer_handler.lambda_handler).start()
    yield started, key
    started.stop()


def test_the_openai_sdk_embeddings_create_works_unchanged(gateway):
    server, key = gateway
    client = openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
    # The SDK asks for base64 unless told otherwise, and decodes it itself.
    answer = client.embeddings.create(model=TITAN, input=["first text", "second"])
    assert [item.embedding for item in answer.data] == [[0.5] * 4, [0.5] * 4]
    assert answer.model == TITAN and answer.usage.prompt_tokens == 3
    floats = client.embeddings.create(model=TITAN, input="one", encoding_format="float", dimensions=512)
    assert len(floats.data[0].embedding) == 512
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    stranger = openai.OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.embeddings.create(model=TITAN, input="x")
