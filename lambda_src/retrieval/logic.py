"""The retrieval function's operations, dispatched on the route table (lambda_src/shared/dispatch.py does the
rest: caller, body checks, error shape, audit record).

POST /embeddings answers OpenAI's shape, so the openai SDK's ``embeddings.create`` works unchanged (it asks
for base64 unless told otherwise: little-endian float32, as OpenAI sends). POST /retrieve embeds the query
with the knowledge base's own model and answers the nearest chunks with their text, source and score.
Both are audited like inference: the query or the texts as input, the chunks found (their sources and
scores, not their text) as output, under the stage's content setting.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from lambda_src.contracts.knowledge import DEFAULT_TOP_K, TITAN_DIMENSIONS
from lambda_src.shared.audit_writer import AuditWriter
from lambda_src.shared.config_source import LeavesSource
from lambda_src.shared.dispatch import Dispatcher, Outcome, session_id
from lambda_src.shared.embeddings import Embedder, EmbeddingSettings
from lambda_src.shared.errors import invalid_request, not_found
from lambda_src.shared.retrieval import search
from lambda_src.shared.vectors import VectorIndex

FUNCTION = "retrieval"


class Tokens(NamedTuple):
    """An embedding call's usage, as the audit record and the metrics count it."""

    prompt_tokens: int
    completion_tokens: int = 0


class RetrievalApi(Dispatcher):
    def __init__(self, config: LeavesSource, embedder_for: Callable[[EmbeddingSettings, int], Embedder],
                 index: VectorIndex, *, dimension: int, max_body_bytes: int, cors_origins: tuple[str, ...] = (),
                 audit: AuditWriter | None = None) -> None:  # fmt: skip
        """``embedder_for(settings, dimension)``: the adapter of the configured provider at that vector size."""
        super().__init__(FUNCTION, {"embeddings": self._embeddings, "retrieve": self._retrieve},
                         max_body_bytes=max_body_bytes, cors_origins=cors_origins, audit=audit)  # fmt: skip
        self._config = config
        self._embedder_for = embedder_for
        self._index = index
        self._dimension = dimension

    def _settings(self, outcome: Outcome) -> EmbeddingSettings:
        settings = EmbeddingSettings.parse(self._config.leaves())
        outcome.model_id, outcome.provider = settings.model_id, settings.provider
        return settings

    def _embeddings(self, event: dict[str, Any], body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        texts = [body["input"]] if isinstance(body["input"], str) else list(body["input"])
        if not all(text.strip() for text in texts):
            raise invalid_request("Each 'input' must contain text, not only whitespace.")
        outcome.input_text = "\n".join(texts)
        outcome.session_id = session_id(event, outcome.caller, body.get("user"))
        settings = self._settings(outcome)
        _check_model(body.get("model"), settings)
        # The index's size by default (synth checked it against the model); a size asked for must suit Titan.
        dimension = body.get("dimensions") or self._dimension
        if body.get("dimensions") and settings.provider == "bedrock" and dimension not in TITAN_DIMENSIONS:
            raise invalid_request(f"'dimensions' must be one of {', '.join(map(str, TITAN_DIMENSIONS))} for "
                                  f"{settings.model_id}.", "value_out_of_range")  # fmt: skip
        embedded = self._embedder_for(settings, dimension).embed(texts)
        outcome.usage = Tokens(embedded.tokens)
        as_base64 = body.get("encoding_format") == "base64"
        return {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": _base64(vector) if as_base64 else vector}
                     for i, vector in enumerate(embedded.vectors)],
            "model": settings.model_id,
            "usage": {"prompt_tokens": embedded.tokens, "total_tokens": embedded.tokens},
        }  # fmt: skip

    def _retrieve(self, event: dict[str, Any], body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        query = body["query"]
        if not query.strip():
            raise invalid_request("'query' must not be blank.")
        outcome.input_text = query
        outcome.session_id = session_id(event, outcome.caller, None)
        settings = self._settings(outcome)
        top_k = body.get("top_k") or DEFAULT_TOP_K
        found = search(self._embedder_for(settings, self._dimension), self._index, query, top_k, body.get("source"))
        outcome.usage = Tokens(found.tokens)
        outcome.output_text = json.dumps([{"document_id": c.document_id, "uri": c.uri, "score": c.score}
                                          for c in found.chunks])  # fmt: skip
        return {
            "object": "list",
            "data": [{"object": "knowledge.chunk", "index": i, **chunk._asdict()}
                     for i, chunk in enumerate(found.chunks)],
            "model": settings.model_id,
            "usage": {"prompt_tokens": found.tokens, "total_tokens": found.tokens},
        }  # fmt: skip


def _check_model(requested: str | None, settings: EmbeddingSettings) -> None:
    if requested is not None and requested != settings.model_id:
        raise not_found(f"The model {requested[:200]!r} is not served here; the embedding model is "
                        f"{settings.model_id!r}.", "model_not_found")  # fmt: skip


def _base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: the float32 values, little-endian, one after the other."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
