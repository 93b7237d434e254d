"""The manifest of ingested documents and the record of each run, in one DynamoDB table
(layout: lambda_src/contracts/knowledge.py). Counters are ADDed, so parallel documents never race."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from boto3.dynamodb.conditions import Key

from lambda_src.contracts import knowledge as k
from lambda_src.shared.dynamo import plain

MAX_ERROR_CHARS = 500


class Document(NamedTuple):
    document_id: str
    source: str
    uri: str
    title: str
    version: str
    chunks: int
    status: str
    error: str
    last_run: str

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Document:
        return cls(str(item[k.SORT_KEY]), str(item.get(k.DOC_SOURCE, "")), str(item.get(k.DOC_URI, "")),
                   str(item.get(k.DOC_TITLE, "")), str(item.get(k.DOC_VERSION, "")), int(item.get(k.DOC_CHUNKS, 0)),
                   str(item.get(k.DOC_STATUS, "")), str(item.get(k.DOC_ERROR, "")),
                   str(item.get(k.DOC_RUN, "")))  # fmt: skip


class Manifest:
    def __init__(self, table: Any) -> None:
        self._table = table

    def documents(self) -> Iterator[Document]:
        """Every document item, read page by page (one partition, no scan)."""
        arguments: dict[str, Any] = {"KeyConditionExpression": Key(k.PARTITION_KEY).eq(k.DOCUMENT_PARTITION)}
        while True:
            page = self._table.query(**arguments)
            for item in page.get("Items", []):
                yield Document.from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def document(self, document_id: str) -> Document | None:
        item = self._table.get_item(Key={k.PARTITION_KEY: k.DOCUMENT_PARTITION, k.SORT_KEY: document_id},
                                    ConsistentRead=True).get("Item")  # fmt: skip
        return Document.from_item(item) if item else None

    def save(self, document: Document, *, tokens: int, now: str) -> None:
        item = document._asdict()
        item.pop("document_id")
        self._table.put_item(
            Item={k.PARTITION_KEY: k.DOCUMENT_PARTITION, k.SORT_KEY: document.document_id, **item,
                  k.DOC_ERROR: document.error[:MAX_ERROR_CHARS], k.DOC_TOKENS: tokens, k.DOC_UPDATED: now}
        )  # fmt: skip

    def forget(self, document_id: str) -> None:
        self._table.delete_item(Key={k.PARTITION_KEY: k.DOCUMENT_PARTITION, k.SORT_KEY: document_id})

    def start_run(self, run_id: str, *, started_at: str, total: int, skipped: int,
                  source_errors: dict[str, str]) -> None:  # fmt: skip
        self._table.put_item(
            Item={k.PARTITION_KEY: k.RUN_PARTITION, k.SORT_KEY: run_id, k.RUN_STATUS: k.RUNNING,
                  k.RUN_STARTED: started_at, k.RUN_TOTAL: total, k.RUN_DONE: 0, k.RUN_FAILED: 0,
                  k.RUN_UNAVAILABLE: 0, k.RUN_SKIPPED: skipped, k.RUN_DELETED: 0, k.RUN_CHUNKS: 0, k.RUN_TOKENS: 0,
                  k.RUN_EMBED_CALLS: 0, k.RUN_SOURCE_ERRORS: source_errors}
        )  # fmt: skip

    def count(self, run_id: str, **counters: int) -> None:
        """ADD each counter (done=1, chunks=12, ...) to the run's record."""
        names = {f"#c{i}": name for i, name in enumerate(counters)}
        values = {f":c{i}": value for i, value in enumerate(counters.values())}
        self._table.update_item(
            Key={k.PARTITION_KEY: k.RUN_PARTITION, k.SORT_KEY: run_id},
            UpdateExpression="ADD " + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True)),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def finish_run(self, run_id: str, *, status: str, finished_at: str, duration_seconds: float) -> None:
        self._table.update_item(
            Key={k.PARTITION_KEY: k.RUN_PARTITION, k.SORT_KEY: run_id},
            UpdateExpression="SET #s = :s, #f = :f, #d = :d",
            ExpressionAttributeNames={"#s": k.RUN_STATUS, "#f": k.RUN_FINISHED, "#d": k.RUN_DURATION},
            ExpressionAttributeValues={":s": status, ":f": finished_at, ":d": Decimal(str(round(duration_seconds, 3)))},
        )

    def run(self, run_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={k.PARTITION_KEY: k.RUN_PARTITION, k.SORT_KEY: run_id},
                                    ConsistentRead=True).get("Item")  # fmt: skip
        return plain(item) if item else None

    def created_at(self) -> datetime:
        """When the table was created (DescribeTable): the stage's first deployment."""
        created: datetime = self._table.creation_date_time
        return created

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The newest runs first."""
        page = self._table.query(KeyConditionExpression=Key(k.PARTITION_KEY).eq(k.RUN_PARTITION),
                                 ScanIndexForward=False, Limit=limit)  # fmt: skip
        return [plain(item) for item in page.get("Items", [])]
