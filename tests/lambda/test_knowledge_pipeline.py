"""The knowledge pipeline's steps against moto's S3, DynamoDB and S3 Vectors (in-process), with a counting
embedder and recorded YouTube answers: diff, idempotency, changes, deletions, bad files, sources that fail; and
the vector index's batching."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from pypdf import PdfWriter

from lambda_src.contracts import knowledge as k
from lambda_src.contracts.environment import KnowledgeEnvironment
from lambda_src.knowledge.errors import RunFailedError, TransientError
from lambda_src.knowledge.manifest import Manifest
from lambda_src.knowledge.pipeline import Pipeline, Sources
from lambda_src.knowledge.youtube import SourceError, Unavailable, Video
from lambda_src.shared.embeddings import Embeddings
from lambda_src.shared.errors import rate_limited
from lambda_src.shared.vectors import VectorIndex
from tests.aws_fakes import INDEX_ARN, REGION, create_manifest_table

BUCKET = "dataset"
WORK = "work"
DIMENSION = 8
# The pipeline reads no secret itself: Sources hands it the YouTube key and the proxy.
UNUSED_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:unused"


class CountingEmbedder:
    """Deterministic vectors from the text's hash; counts texts and calls (what idempotency is judged by)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.calls = 0
        self.fail_with: Exception | None = None

    def embed(self, texts: Sequence[str]) -> Embeddings:
        if self.fail_with is not None:
            raise self.fail_with
        self.texts += texts
        self.calls += 1
        vectors = [[b / 255 + 0.01 for b in hashlib.sha256(t.encode()).digest()[:DIMENSION]] for t in texts]
        return Embeddings(vectors, sum(len(t.split()) for t in texts), 1)


class World:
    def __init__(self, pipeline: Pipeline, embedder: CountingEmbedder, s3: Any, vectors: Any, index_arn: str,
                 videos: dict[str, list[Video]]) -> None:  # fmt: skip
        self.pipeline, self.embedder, self.s3, self.vectors, self.index_arn = pipeline, embedder, s3, vectors, index_arn
        self.videos = videos
        self.runs = 0

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=f"knowledge/{key}", Body=body)

    def run(self) -> dict[str, Any]:
        """One whole run as the state machine does it: discover, each item, report."""
        self.runs += 1
        found = self.pipeline.discover(f"run{self.runs}", f"2026-11-2{self.runs}T03:00:00Z")
        items = json.loads(self.s3.get_object(Bucket=WORK, Key=found["items_key"])["Body"].read())
        for item in items:
            try:
                self.pipeline.ingest(item)
            except Exception as error:  # the state machine's catch, after its retries
                cause = json.dumps({"errorMessage": str(error), "errorType": type(error).__name__})
                self.pipeline.record_failure(item, {"Error": type(error).__name__, "Cause": cause})
        return {**found, "report": self.pipeline.report(found["run_id"]), "items": items}

    def stored(self) -> dict[str, dict[str, Any]]:
        listed = self.vectors.list_vectors(indexArn=self.index_arn, returnMetadata=True)["vectors"]
        return {v["key"]: v["metadata"] for v in listed}

    def documents(self) -> dict[str, Any]:
        return {d.document_id: d for d in self.pipeline.manifest.documents()}


@pytest.fixture
def world(aws: None) -> Iterator[World]:
    s3 = boto3.client("s3", region_name=REGION)
    for name in (BUCKET, WORK):
        s3.create_bucket(Bucket=name)
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    table = create_manifest_table(dynamodb)
    vectors = boto3.client("s3vectors", region_name=REGION)
    vectors.create_vector_bucket(vectorBucketName="vectors")
    vectors.create_index(vectorBucketName="vectors", indexName="chunks", dataType="float32", dimension=DIMENSION,
                         distanceMetric="cosine")  # fmt: skip
    index_arn = vectors.get_index(vectorBucketName="vectors", indexName="chunks")["index"]["indexArn"]
    embedder = CountingEmbedder()
    videos: dict[str, list[Video]] = {}
    key = {"value": "AIza-test-key"}

    def youtube_key() -> str:
        if not key["value"]:
            raise SourceError("The YouTube Data API key is not set.")
        return key["value"]

    def transcript(video_id: str, **_: Any) -> str:
        if video_id == "blocked":
            raise Unavailable("YouTube blocked the request.")
        return f"Transcript of {video_id}. It explains how the weekly pipeline embeds videos."

    settings = KnowledgeEnvironment(
        manifest_table_name="manifest", dataset_bucket=BUCKET, knowledge_prefix="knowledge/", work_bucket=WORK,
        vector_index_arn=index_arn, dimension=DIMENSION, embedding_parameter_path="/app/dev/knowledge/embedding",
        upstream_api_key_parameter="/app/dev/secrets/upstream-api-key", youtube_secret_arn=UNUSED_ARN,
        proxy_secret_arn=UNUSED_ARN, playlist_ids=("PLtestplaylist01",), chunk_tokens=60, chunk_overlap_tokens=10,
        embedding_batch_size=4, max_document_bytes=4096, failure_threshold_percent=40, config_cache_seconds=0,
        stage="dev",
    )  # fmt: skip
    sources = Sources(s3=s3, vectors=VectorIndex(vectors, index_arn), embedder=lambda: embedder,
                      youtube_key=youtube_key, youtube_proxy=lambda: None,
                      videos=lambda playlist, _key: iter(videos.get(playlist, [])), transcript=transcript)  # fmt: skip
    pipeline = Pipeline(settings, Manifest(table), sources, clock=lambda: datetime(2026, 11, 30, 3, 5, tzinfo=UTC))
    w = World(pipeline, embedder, s3, vectors, index_arn, videos)
    w.youtube_key = key  # type: ignore[attr-defined]
    yield w


GUIDE = b"# Operator guide\n\n" + b"The weekly pipeline reads the knowledge prefix. " * 30


def test_a_new_document_is_chunked_embedded_and_stored_with_its_metadata(world):
    world.put("guide.md", GUIDE)
    result = world.run()
    assert result["total"] == 1
    (doc,) = world.documents().values()
    assert (doc.status, doc.title, doc.source) == (k.INDEXED, "Operator guide", k.SOURCE_S3)
    stored = world.stored()
    assert len(stored) == doc.chunks > 1
    first = stored[k.vector_key("s3/knowledge/guide.md", 0)]
    assert first[k.META_DOCUMENT] == "s3/knowledge/guide.md"
    assert first[k.META_URI] == f"s3://{BUCKET}/knowledge/guide.md"
    assert first[k.META_TEXT].startswith("# Operator guide")
    report = result["report"]
    assert (report["status"], report["done"], report["failed"], report["chunks"]) == (k.SUCCEEDED, 1, 0, doc.chunks)


def test_a_second_run_with_nothing_changed_embeds_nothing(world):
    world.put("guide.md", GUIDE)
    world.run()
    texts, calls = len(world.embedder.texts), world.embedder.calls
    again = world.run()
    assert again["total"] == 0
    assert (len(world.embedder.texts), world.embedder.calls) == (texts, calls)
    assert again["report"]["embedding_calls"] == 0


def test_a_changed_document_replaces_its_chunks_and_drops_the_surplus(world):
    world.put("guide.md", GUIDE)
    world.run()
    world.put("guide.md", b"# Operator guide\n\nShort now.")
    world.run()
    (doc,) = world.documents().values()
    assert doc.chunks == 1
    assert list(world.stored()) == [k.vector_key("s3/knowledge/guide.md", 0)]
    assert "Short now." in next(iter(world.stored().values()))[k.META_TEXT]


def test_a_deleted_document_loses_its_vectors_and_its_manifest_item(world):
    world.put("guide.md", GUIDE)
    world.run()
    world.s3.delete_object(Bucket=BUCKET, Key="knowledge/guide.md")
    result = world.run()
    assert [i["action"] for i in result["items"]] == [k.ACTION_DELETE]
    assert world.stored() == {}
    assert world.documents() == {}
    assert result["report"]["deleted"] == 1


def test_a_corrupt_pdf_fails_alone_and_is_recorded_with_its_reason(world):
    world.put("broken.pdf", b"%PDF-1.7\nnot really a pdf")
    world.put("guide.md", GUIDE)
    with pytest.raises(RunFailedError, match="1 of 2 documents failed"):  # 50% is past the stage's 40%
        world.run()
    docs = world.documents()
    assert docs["s3/knowledge/broken.pdf"].status == k.FAILED
    assert docs["s3/knowledge/broken.pdf"].error == "The PDF is corrupt or cannot be read."
    assert docs["s3/knowledge/guide.md"].status == k.INDEXED
    (run,) = world.pipeline.manifest.runs()
    assert (run["status"], run["failed"], run["done"]) == (k.RUN_FAILED_STATUS, 1, 2)


def test_the_run_fails_only_past_the_failure_threshold(world):
    world.put("broken.pdf", b"%PDF-1.7\nnot really a pdf")
    for name in ("a.md", "b.md"):
        world.put(name, GUIDE + name.encode())
    world.run()  # 1 of 3 failed: 33% <= 40%
    world.put("c.pdf", b"garbage")
    world.put("d.pdf", b"garbage")
    with pytest.raises(RunFailedError, match=r"3 of 3 documents failed"):
        world.run()


def test_each_closed_run_reports_its_documents_and_failures_also_when_it_fails(world):
    recorded: list[tuple[int, int]] = []
    world.pipeline.record_run = lambda total, failed: recorded.append((total, failed))
    world.put("broken.pdf", b"%PDF-1.7\nnot really a pdf")
    for name in ("a.md", "b.md"):
        world.put(name, GUIDE + name.encode())
    world.run()
    world.put("c.pdf", b"garbage")
    world.put("d.pdf", b"garbage")
    with pytest.raises(RunFailedError):
        world.run()
    assert recorded == [(3, 1), (3, 3)]  # the second run lists the broken file again and the two new ones


def test_the_freshness_check_counts_days_since_the_last_run_that_succeeded(world):
    world.put("a.md", GUIDE)
    world.run()  # finishes at the clock's 2026-11-30 03:05
    world.pipeline.clock = lambda: datetime(2026, 12, 3, 15, 5, tzinfo=UTC)
    assert world.pipeline.days_since_success() == pytest.approx(3.5)
    world.put("b.pdf", b"garbage")
    world.put("c.pdf", b"garbage")
    with pytest.raises(RunFailedError):
        world.run()  # a failed run is not a fresh one
    assert world.pipeline.days_since_success() == pytest.approx(3.5)


def test_without_a_successful_run_the_pipeline_is_as_late_as_its_manifest_is_old(world):
    created = world.pipeline.manifest.created_at()
    world.pipeline.clock = lambda: created + timedelta(days=2, hours=6)
    assert world.pipeline.days_since_success() == pytest.approx(2.25, abs=1e-3)
    world.pipeline.clock = lambda: created - timedelta(days=1)  # a skewed clock never makes it negative
    assert world.pipeline.days_since_success() == 0.0


def test_a_real_pdf_is_read(world):
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": "Blank handbook"})
    buffer = io.BytesIO()
    writer.write(buffer)
    world.put("blank.pdf", buffer.getvalue())
    with pytest.raises(RunFailedError):
        world.run()
    (doc,) = world.documents().values()
    # A blank page has no text: a clear failure, not an empty document in the index.
    assert (doc.status, doc.error) == (k.FAILED, "The file has no text to index.")


def test_oversized_and_unknown_files_are_skipped_with_a_reason_and_not_embedded(world):
    world.put("huge.txt", b"x " * 5000)
    world.put("photo.jpg", b"\xff\xd8\xff")
    result = world.run()
    docs = world.documents()
    assert docs["s3/knowledge/huge.txt"].status == k.SKIPPED and "MB limit" in docs["s3/knowledge/huge.txt"].error
    assert docs["s3/knowledge/photo.jpg"].status == k.SKIPPED and "file type" in docs["s3/knowledge/photo.jpg"].error
    assert result["total"] == 0 and world.embedder.calls == 0
    assert result["report"]["skipped"] == 2
    assert world.run()["report"]["skipped"] == 0  # recorded once, not rewritten every run


def test_videos_are_ingested_and_a_blocked_one_is_reported_without_failing_the_run(world):
    world.videos["PLtestplaylist01"] = [Video("abc123", "Pipeline tour", "etag1", "PLtestplaylist01"),
                                        Video("blocked", "Blocked talk", "etag2", "PLtestplaylist01")]  # fmt: skip
    result = world.run()
    docs = world.documents()
    assert docs["youtube/abc123"].status == k.INDEXED
    assert docs["youtube/abc123"].uri == "https://www.youtube.com/watch?v=abc123"
    assert docs["youtube/blocked"].status == k.UNAVAILABLE and "blocked" in docs["youtube/blocked"].error
    assert (result["report"]["status"], result["report"]["unavailable"]) == (k.SUCCEEDED, 1)


def test_a_missing_youtube_key_fails_that_source_only_and_keeps_its_documents(world):
    world.videos["PLtestplaylist01"] = [Video("abc123", "Pipeline tour", "etag1", "PLtestplaylist01")]
    world.run()
    world.youtube_key["value"] = ""
    world.put("guide.md", GUIDE)
    result = world.run()
    assert result["source_errors"] == {k.SOURCE_YOUTUBE: "The YouTube Data API key is not set."}
    assert [i["document_id"] for i in result["items"]] == ["s3/knowledge/guide.md"]
    assert world.documents()["youtube/abc123"].status == k.INDEXED  # unread is not removed
    assert result["report"]["source_errors"] == {k.SOURCE_YOUTUBE: "The YouTube Data API key is not set."}


def test_throttling_is_a_transient_error_the_state_machine_retries(world):
    assert TransientError.__name__ == k.TRANSIENT_ERROR  # the error name the state machine's Retry lists
    world.put("guide.md", GUIDE)
    found = world.pipeline.discover("run1", "2026-11-21T03:00:00Z")
    (item,) = json.loads(world.s3.get_object(Bucket=WORK, Key=found["items_key"])["Body"].read())
    world.embedder.fail_with = rate_limited("slow down")
    with pytest.raises(TransientError):
        world.pipeline.ingest(item)
    world.embedder.fail_with = None
    assert world.pipeline.ingest(item)["status"] == k.INDEXED  # the retry succeeds


def test_a_failure_the_state_machine_caught_is_recorded_without_its_trace(world):
    world.put("guide.md", GUIDE)
    found = world.pipeline.discover("run1", "2026-11-21T03:00:00Z")
    (item,) = json.loads(world.s3.get_object(Bucket=WORK, Key=found["items_key"])["Body"].read())
    cause = json.dumps({"errorMessage": "Task timed out", "errorType": "Sandbox.Timedout",
                        "stackTrace": ["File secret.py line 1"]})  # fmt: skip
    world.pipeline.record_failure(item, {"Error": "Sandbox.Timedout", "Cause": cause})
    doc = world.documents()["s3/knowledge/guide.md"]
    assert (doc.status, doc.error) == (k.FAILED, "Sandbox.Timedout: Task timed out")
    # A failed document is tried again next run.
    assert world.run()["total"] == 1


class RecordingVectors:
    """An S3 Vectors client that keeps every PutVectors and DeleteVectors request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def put_vectors(self, **request: Any) -> dict[str, Any]:
        self.requests.append(("put", request))
        return {}

    def delete_vectors(self, **request: Any) -> dict[str, Any]:
        self.requests.append(("delete", request))
        return {}


def test_vectors_are_put_and_deleted_in_batches_of_at_most_500():
    """S3 Vectors refuses more than 500 vectors (or keys) in one call: 1,201 go as 500, 500 and 201, in order,
    none dropped or sent twice."""
    client = RecordingVectors()
    index = VectorIndex(client, INDEX_ARN)
    keys = [f"doc#{i}" for i in range(1201)]
    vectors: list[dict[str, Any]] = [{"key": key, "data": {"float32": [i / 1201]}, "metadata": {}}
                                     for i, key in enumerate(keys)]  # fmt: skip
    assert index.put(vectors) == 3
    assert index.delete(keys) == 3
    puts = [request for operation, request in client.requests if operation == "put"]
    deletes = [request for operation, request in client.requests if operation == "delete"]
    assert [operation for operation, _ in client.requests] == ["put"] * 3 + ["delete"] * 3
    assert [len(request["vectors"]) for request in puts] == [500, 500, 201]
    assert [len(request["keys"]) for request in deletes] == [500, 500, 201]
    assert [vector for request in puts for vector in request["vectors"]] == vectors
    assert [key for request in deletes for key in request["keys"]] == keys
    assert {request["indexArn"] for _, request in client.requests} == {INDEX_ARN}
