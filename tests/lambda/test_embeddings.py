"""The embedding adapters: Titan Text Embeddings V2 through a stubbed bedrock-runtime, an openai-compatible
/embeddings endpoint on 127.0.0.1 (batches, order, sizes, errors as the chat adapter maps them)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from botocore.stub import Stubber

from lambda_src.shared.embeddings import EmbeddingSettings, OpenAICompatibleEmbedder, TitanEmbedder, embedder
from lambda_src.shared.errors import ApiError
from tests.aws_fakes import stub_client
from tests.http_fakes import Upstream

TITAN = "amazon.titan-embed-text-v2:0"


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.server.shutdown()
    server.server.server_close()


def titan_answer(vector: list[float], tokens: int) -> dict[str, object]:
    return {"body": io.BytesIO(json.dumps({"embedding": vector, "inputTextTokenCount": tokens}).encode()),
            "contentType": "application/json"}  # fmt: skip


def test_titan_embeds_one_text_per_call_at_the_index_dimension_normalized():
    client = stub_client("bedrock-runtime")
    stub = Stubber(client)
    for text, tokens in (("first", 3), ("second", 4)):
        body = json.dumps({"inputText": text, "dimensions": 4, "normalize": True})
        stub.add_response("invoke_model", titan_answer([0.5, 0.5, 0.5, 0.5], tokens),
                          {"modelId": TITAN, "body": body, "contentType": "application/json",
                           "accept": "application/json"})  # fmt: skip
    with stub:
        result = TitanEmbedder(client, TITAN, 4, concurrency=1).embed(["first", "second"])
    assert result.vectors == [[0.5] * 4, [0.5] * 4]
    assert (result.tokens, result.calls) == (7, 2)


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 429), ("ModelTimeoutException", 504), ("ValidationException", 400),
     ("InternalServerException", 502)],
)  # fmt: skip
def test_titan_errors_are_the_api_errors_the_pipeline_retries_or_records(code, status):
    client = stub_client("bedrock-runtime")
    stub = Stubber(client)
    stub.add_client_error("invoke_model", service_error_code=code, http_status_code=400)
    with stub, pytest.raises(ApiError) as error:
        TitanEmbedder(client, TITAN, 4).embed(["text"])
    assert error.value.status == status


def test_a_vector_of_another_size_is_refused():
    client = stub_client("bedrock-runtime")
    stub = Stubber(client)
    stub.add_response("invoke_model", titan_answer([0.1, 0.2], 1))
    with stub, pytest.raises(ApiError) as error:
        TitanEmbedder(client, TITAN, 4).embed(["text"])
    assert "answered with 2 values; the index holds 4" in error.value.message


def test_openai_compatible_batches_asks_for_the_dimension_and_orders_by_index(upstream):
    answers = iter([
        {"data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}],
         "usage": {"prompt_tokens": 5}},
        {"data": [{"index": 0, "embedding": [0.5, 0.5]}], "usage": {"prompt_tokens": 2}},
    ])  # fmt: skip

    upstream.body = json.dumps(next(answers)).encode()
    adapter = OpenAICompatibleEmbedder(upstream.url, lambda: "sk-up", "e5", dimension=2, batch_size=2)
    first = adapter.embed(["a", "b"])
    upstream.body = json.dumps(next(answers)).encode()
    second = adapter.embed(["c"])
    assert first.vectors == [[1.0, 0.0], [0.0, 1.0]] and first.tokens == 5
    assert second.vectors == [[0.5, 0.5]] and (second.tokens, second.calls) == (2, 1)
    sent = upstream.requests[0]
    assert sent["path"] == "/v1/embeddings" and sent["auth"] == "Bearer sk-up"
    assert sent["json"] == {"model": "e5", "input": ["a", "b"], "dimensions": 2, "encoding_format": "float"}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [(429, b"{}", 429), (400, b"{}", 400), (401, b"{}", 502), (500, b"{}", 502), (504, b"{}", 504),
     (200, b"not json", 502), (200, b'{"data": []}', 502),
     (200, b'{"data": [{"index": 0, "embedding": [1, 2, 3]}]}', 502)],
)  # fmt: skip
def test_openai_compatible_errors_map_as_for_chat(upstream, status, body, expected):
    upstream.status, upstream.body = status, body
    with pytest.raises(ApiError) as error:
        OpenAICompatibleEmbedder(upstream.url, lambda: "sk-up", "e5", dimension=2).embed(["a"])
    assert error.value.status == expected


def test_a_redirect_is_not_followed_with_the_key(upstream):
    upstream.status, upstream.headers = 307, {"Location": upstream.url + "/elsewhere"}
    with pytest.raises(ApiError):
        OpenAICompatibleEmbedder(upstream.url, lambda: "sk-up", "e5", dimension=2).embed(["a"])
    assert len(upstream.requests) == 1


def test_the_settings_pick_the_adapter_and_a_bad_base_url_is_refused():
    bedrock = EmbeddingSettings.parse({"provider": "bedrock", "model-id": TITAN, "base-url": "https://x.example/v1"})
    made = embedder(bedrock, dimension=4, bedrock=object, api_key=lambda: "k", batch_size=2)
    assert isinstance(made, TitanEmbedder)
    with pytest.raises(ApiError):
        EmbeddingSettings.parse({"provider": "other", "model-id": "m", "base-url": "https://x.example/v1"})
    local = EmbeddingSettings.parse(
        {"provider": "openai-compatible", "model-id": "e5", "base-url": "http://evil.example"}
    )
    with pytest.raises(ApiError) as refused:
        embedder(local, dimension=4, bedrock=object, api_key=lambda: "k", batch_size=2)
    assert "not allowed" in refused.value.message
