"""Text embeddings for the knowledge base: Bedrock Titan Text Embeddings V2 or an openai-compatible
``/embeddings`` endpoint. The pipeline embeds chunks with it, the API embeds queries (`/retrieve`) and
answers `/embeddings`.

Both adapters give vectors of exactly the index's dimension or raise: a model answering in another size
would fill the index with vectors it cannot compare. Errors are the API's (429 throttled, 502 upstream,
504 timeout), which the pipeline turns into retries.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, Protocol

from lambda_src.contracts.knowledge import EMBEDDING_PROVIDERS
from lambda_src.contracts.parameters import upstream_url_allowed
from lambda_src.shared.errors import ApiError, rate_limited, server_error, upstream_error, upstream_timeout

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_THROTTLED = ("ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException")
_TIMEOUTS = ("ModelTimeoutException",)


class EmbeddingSettings(NamedTuple):
    provider: str
    model_id: str
    base_url: str

    @classmethod
    def parse(cls, raw: dict[str, str]) -> EmbeddingSettings:
        """From the leaves under the embedding path (provider, model-id, base-url)."""
        try:
            settings = cls(raw["provider"], raw["model-id"], raw["base-url"].rstrip("/"))
        except KeyError as error:
            raise server_error("The embedding configuration is incomplete.") from error
        if settings.provider not in EMBEDDING_PROVIDERS or not settings.model_id:
            raise server_error("The embedding configuration is invalid.")
        return settings


class Embeddings(NamedTuple):
    vectors: list[list[float]]
    # Input tokens as the model counted them, and the model calls it took.
    tokens: int
    calls: int


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> Embeddings: ...


class TitanEmbedder:
    """Titan Text Embeddings V2 through InvokeModel: one text per call, ``concurrency`` calls at once."""

    def __init__(self, client: Any, model_id: str, dimension: int, concurrency: int = 8) -> None:
        self._client = client
        self._model_id = model_id
        self._dimension = dimension
        self._concurrency = max(1, concurrency)

    def embed(self, texts: Sequence[str]) -> Embeddings:
        if not texts:
            return Embeddings([], 0, 0)
        if len(texts) == 1 or self._concurrency == 1:
            results = [self._one(text) for text in texts]
        else:
            with ThreadPoolExecutor(max_workers=min(self._concurrency, len(texts))) as pool:
                results = list(pool.map(self._one, texts))
        return Embeddings([vector for vector, _ in results], sum(tokens for _, tokens in results), len(texts))

    def _one(self, text: str) -> tuple[list[float], int]:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - botocore is loaded by then

        body = json.dumps({"inputText": text, "dimensions": self._dimension, "normalize": True})
        try:
            response = self._client.invoke_model(
                modelId=self._model_id, body=body, contentType="application/json", accept="application/json"
            )
            answer = json.loads(response["body"].read())
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _THROTTLED:
                raise rate_limited("The embedding model is throttling requests; try again shortly.") from None
            if code in _TIMEOUTS:
                raise upstream_timeout("The embedding model did not answer in time.") from None
            if code == "ValidationException":
                raise ApiError(400, "The embedding model rejected the input.", "invalid_request_error",
                               "invalid_input") from None  # fmt: skip
            raise upstream_error("The embedding model returned an error; try again later.") from None
        except (BotoCoreError, ValueError) as error:
            raise upstream_error("The embedding model could not be reached.") from error
        vector = answer.get("embedding") if isinstance(answer, dict) else None
        return _checked(vector, self._dimension), int(answer.get("inputTextTokenCount") or 0)


class OpenAICompatibleEmbedder:
    """POST {base_url}/embeddings with ``dimensions``, up to ``batch_size`` texts per request."""

    def __init__(self, base_url: str, api_key: Callable[[], str], model_id: str, *, dimension: int,
                 batch_size: int = 16, timeout: float = 30) -> None:  # fmt: skip
        if not upstream_url_allowed(base_url):
            raise upstream_error("The embedding upstream's base URL is not allowed.")
        self._url = base_url.rstrip("/") + "/embeddings"
        self._api_key = api_key
        self._model_id = model_id
        self._dimension = dimension
        self._batch_size = max(1, batch_size)
        self._timeout = timeout

    def embed(self, texts: Sequence[str]) -> Embeddings:
        vectors: list[list[float]] = []
        tokens = calls = 0
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            answer = self._post({"model": self._model_id, "input": batch, "dimensions": self._dimension,
                                 "encoding_format": "float"})  # fmt: skip
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, list) or len(data) != len(batch):
                raise upstream_error("The embedding upstream answered with the wrong number of embeddings.")
            ordered = sorted(data, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
            vectors += [_checked(item.get("embedding") if isinstance(item, dict) else None, self._dimension)
                        for item in ordered]  # fmt: skip
            usage = answer.get("usage") or {}
            tokens += int(usage.get("prompt_tokens") or 0) if isinstance(usage, dict) else 0
            calls += 1
        return Embeddings(vectors, tokens, calls)

    def _post(self, payload: dict[str, Any]) -> Any:
        request = urllib.request.Request(  # noqa: S310 - scheme and host checked in __init__
            self._url,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._api_key()}"},
        )
        # The chat adapter's: no redirects (the key would follow them), and the same status mapping.
        from lambda_src.shared.models.openai_upstream import OPENER, map_status  # noqa: PLC0415 - on first use

        try:
            with OPENER.open(request, timeout=self._timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            raise map_status(error) from None
        except TimeoutError:
            raise upstream_timeout("The embedding upstream did not answer in time.") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            raise upstream_error("The embedding upstream could not be reached or answered garbage.") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise upstream_error("The embedding upstream's answer is too large.")
        try:
            return json.loads(raw)
        except ValueError:
            raise upstream_error("The embedding upstream's answer is not JSON.") from None


def _checked(vector: Any, dimension: int) -> list[float]:
    if not isinstance(vector, list) or len(vector) != dimension:
        size = len(vector) if isinstance(vector, list) else "no"
        raise upstream_error(f"The embedding model answered with {size} values; the index holds {dimension}.")
    if not all(isinstance(value, int | float) and not isinstance(value, bool) for value in vector):
        raise upstream_error("The embedding model answered with values that are not numbers.")
    return [float(value) for value in vector]


def embedder(settings: EmbeddingSettings, *, dimension: int, bedrock: Callable[[], Any],
             api_key: Callable[[], str], batch_size: int) -> Embedder:  # fmt: skip
    """The adapter the settings name; ``bedrock`` makes the bedrock-runtime client only when it is used."""
    if settings.provider == "bedrock":
        return TitanEmbedder(bedrock(), settings.model_id, dimension, concurrency=batch_size)
    return OpenAICompatibleEmbedder(
        settings.base_url, api_key, settings.model_id, dimension=dimension, batch_size=batch_size
    )
