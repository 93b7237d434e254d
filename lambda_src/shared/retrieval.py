"""Search the knowledge base: embed the question with the index's embedding model, then the nearest chunks
of the S3 Vectors index with their text and source (POST /retrieve, and the chat's grounding)."""

from __future__ import annotations

from typing import Any, NamedTuple

from lambda_src.contracts import knowledge as k
from lambda_src.shared.embeddings import Embedder
from lambda_src.shared.vectors import VectorIndex


class Chunk(NamedTuple):
    text: str
    document_id: str
    source: str
    uri: str
    title: str
    # Cosine similarity of chunk and question (1 - the index's cosine distance): higher is nearer.
    score: float


class Found(NamedTuple):
    chunks: list[Chunk]
    # Input tokens the embedding model counted for the question.
    tokens: int


def search(embedder: Embedder, index: VectorIndex, query: str, top_k: int, source: str | None = None) -> Found:
    embedded = embedder.embed([query])
    where = {k.META_SOURCE: {"$eq": source}} if source else None
    hits = index.query(embedded.vectors[0], top_k, where)
    return Found([_chunk(hit) for hit in hits], embedded.tokens)


def _chunk(hit: dict[str, Any]) -> Chunk:
    found = hit.get("metadata")
    metadata: dict[str, Any] = found if isinstance(found, dict) else {}
    distance = hit.get("distance")
    score = 1.0 - float(distance) if isinstance(distance, int | float) else 0.0

    def field(name: str) -> str:
        value = metadata.get(name)
        return value if isinstance(value, str) else ""

    return Chunk(field(k.META_TEXT), field(k.META_DOCUMENT), field(k.META_SOURCE), field(k.META_URI),
                 field(k.META_TITLE), round(score, 6))  # fmt: skip
