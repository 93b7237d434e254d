"""The knowledge base's S3 Vectors index: put and delete in batches of at most 500 (the service's limit), and
the nearest vectors to a query with their metadata."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from lambda_src.contracts.knowledge import MAX_VECTORS_PER_CALL
from lambda_src.shared.errors import rate_limited, upstream_error

_THROTTLED = ("TooManyRequestsException", "ThrottlingException", "SlowDownException")


class VectorIndex:
    """One index, addressed by ARN (the IAM grants name the same ARN)."""

    def __init__(self, client: Any, index_arn: str) -> None:
        self._client = client
        self._index_arn = index_arn

    def put(self, vectors: Sequence[dict[str, Any]]) -> int:
        """``vectors``: {key, data: {float32: [...]}, metadata}. Returns the calls made."""
        calls = 0
        for batch in _batches(vectors):
            self._call("put_vectors", indexArn=self._index_arn, vectors=list(batch))
            calls += 1
        return calls

    def delete(self, keys: Sequence[str]) -> int:
        calls = 0
        for batch in _batches(keys):
            self._call("delete_vectors", indexArn=self._index_arn, keys=list(batch))
            calls += 1
        return calls

    def query(self, vector: Sequence[float], top_k: int, where: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The ``top_k`` nearest vectors, nearest first: {key, distance, metadata}; ``where`` filters on
        filterable metadata (``{"source": {"$eq": "s3"}}``)."""
        arguments: dict[str, Any] = {"indexArn": self._index_arn, "topK": top_k,
                                     "queryVector": {"float32": list(vector)}, "returnMetadata": True,
                                     "returnDistance": True}  # fmt: skip
        if where:
            arguments["filter"] = where
        answer = self._call("query_vectors", **arguments)
        found = answer.get("vectors") if isinstance(answer, dict) else None
        return [hit for hit in found if isinstance(hit, dict)] if isinstance(found, list) else []

    def _call(self, operation: str, **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - loaded with the client

        try:
            return getattr(self._client, operation)(**arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in _THROTTLED or status == 429:
                raise rate_limited("The vector index is throttling requests; try again shortly.") from None
            raise upstream_error(f"The vector index answered {code or status} to {operation}.") from None
        except BotoCoreError:
            raise upstream_error("The vector index could not be reached.") from None


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), MAX_VECTORS_PER_CALL):
        yield items[start : start + MAX_VECTORS_PER_CALL]
