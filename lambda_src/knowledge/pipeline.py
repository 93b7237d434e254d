"""The weekly pipeline's steps as plain Python, each one a Lambda handler the state machine calls:

discover  list the sources, diff them against the manifest, write the work list for the Map, open the run
ingest    one document: fetch, extract, chunk, embed in batches, put vectors, delete stale ones, record it
          (or delete a removed document's vectors); a failure the state machine caught is recorded here too
report    close the run (its document counts go out as metrics); fail it when more documents failed than the
          stage allows
freshness (on its own schedule) how many days ago a run last succeeded

Idempotent: a document whose version (ETag, playlist item etag) is unchanged and indexed is not in the work
list, so a second run over unchanged sources embeds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from lambda_src.contracts import knowledge as k
from lambda_src.contracts.environment import KnowledgeEnvironment
from lambda_src.knowledge.chunking import chunk
from lambda_src.knowledge.errors import RunFailedError, TransientError
from lambda_src.knowledge.extract import DocumentError, extract
from lambda_src.knowledge.manifest import Document, Manifest
from lambda_src.knowledge.youtube import WATCH_URL, SourceError, Unavailable, Video, playlist_videos, transcript
from lambda_src.shared.embeddings import Embedder
from lambda_src.shared.errors import ApiError
from lambda_src.shared.vectors import VectorIndex

MAX_TEXT_CHARS = 5_000_000  # of extracted text per document (a 20 MB PDF of text stays well under)


@dataclass
class Sources:
    """What the steps read and write besides the manifest; callables are only called when needed."""

    s3: Any
    vectors: VectorIndex
    embedder: Callable[[], Embedder]
    # The YouTube Data API key (raises SourceError when unset), and the optional proxy for transcripts.
    youtube_key: Callable[[], str]
    youtube_proxy: Callable[[], dict[str, str] | None]
    videos: Callable[[str, str], Iterator[Video]] = playlist_videos
    transcript: Callable[..., str] = transcript


# The freshness check looks for the last run that succeeded among this many of the newest runs.
FRESHNESS_RUNS = 20


class Pipeline:
    """``record_run(total, failed)``: told each run's document counts when its report closes it (the handler
    emits them as metrics), before a run over its failure threshold fails."""

    def __init__(self, settings: KnowledgeEnvironment, manifest: Manifest, sources: Sources,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 record_run: Callable[[int, int], None] = lambda total, failed: None) -> None:  # fmt: skip
        self.settings = settings
        self.manifest = manifest
        self.sources = sources
        self.clock = clock
        self.record_run = record_run

    # -- discover ---------------------------------------------------------------------------------
    def discover(self, execution: str, started_at: str) -> dict[str, Any]:
        run_id = f"{started_at}/{execution}"
        known = {doc.document_id: doc for doc in self.manifest.documents()}
        found: dict[str, dict[str, Any]] = {}
        source_errors: dict[str, str] = {}
        skipped = 0
        for item, reason in self._s3_documents():
            if reason:
                skipped += self._record_skipped(known.get(item["document_id"]), item, reason, run_id)
            found[item["document_id"]] = item
        readable = {k.SOURCE_S3}
        if self.settings.playlist_ids:
            try:
                for item in self._videos():
                    found[item["document_id"]] = item
                readable.add(k.SOURCE_YOUTUBE)
            except SourceError as error:
                source_errors[k.SOURCE_YOUTUBE] = str(error)
        work: list[dict[str, Any]] = []
        for document_id, item in found.items():
            if item.get("skip"):
                continue
            previous = known.get(document_id)
            if previous is None or previous.version != item["version"] or previous.status != k.INDEXED:
                work.append({**item, "action": k.ACTION_INGEST, "run_id": run_id})
        for document_id, previous in known.items():
            # A source that could not be read this run keeps its documents: unread is not removed.
            if document_id not in found and previous.source in readable:
                work.append({"action": k.ACTION_DELETE, "document_id": document_id, "source": previous.source,
                             "run_id": run_id})  # fmt: skip
        items_key = f"{k.WORK_PREFIX}{execution}/items.json"
        self.sources.s3.put_object(Bucket=self.settings.work_bucket, Key=items_key,
                                   Body=json.dumps(work).encode(), ContentType="application/json")  # fmt: skip
        deleted = sum(1 for item in work if item["action"] == k.ACTION_DELETE)
        self.manifest.start_run(run_id, started_at=started_at, total=len(work), skipped=skipped,
                                source_errors=source_errors)  # fmt: skip
        return {"run_id": run_id, "total": len(work), "deletions": deleted, "items_key": items_key,
                "source_errors": source_errors}  # fmt: skip

    def _s3_documents(self) -> Iterator[tuple[dict[str, Any], str]]:
        """(work item, why it is skipped or '') for every object under the prefix."""
        paginator = self.sources.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.settings.dataset_bucket, Prefix=self.settings.knowledge_prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue  # a folder marker
                item = {"document_id": f"{k.SOURCE_S3}/{key}", "source": k.SOURCE_S3, "key": key,
                        "uri": f"s3://{self.settings.dataset_bucket}/{key}", "title": PurePosixPath(key).name,
                        "version": str(obj.get("ETag", "")).strip('"')}  # fmt: skip
                reason = ""
                if PurePosixPath(key).suffix.lower() not in k.KNOWLEDGE_FILE_TYPES:
                    reason = f"Not a file type the pipeline reads ({', '.join(k.KNOWLEDGE_FILE_TYPES)})."
                elif int(obj.get("Size", 0)) > self.settings.max_document_bytes:
                    reason = f"Larger than the {self.settings.max_document_bytes // (1024 * 1024)} MB limit."
                if reason:
                    item["skip"] = True
                yield item, reason

    def _videos(self) -> Iterator[dict[str, Any]]:
        key = self.sources.youtube_key()
        seen: set[str] = set()
        for playlist_id in self.settings.playlist_ids:
            for video in self.sources.videos(playlist_id, key):
                if video.video_id in seen:
                    continue
                seen.add(video.video_id)
                yield {"document_id": f"{k.SOURCE_YOUTUBE}/{video.video_id}", "source": k.SOURCE_YOUTUBE,
                       "video_id": video.video_id, "uri": WATCH_URL + video.video_id, "title": video.title,
                       "version": video.etag}  # fmt: skip

    def _record_skipped(self, previous: Document | None, item: dict[str, Any], reason: str, run_id: str) -> int:
        """A skipped file is in the manifest (so `status` can say why); written again only when it changed."""
        if previous is not None and previous.chunks:
            self.sources.vectors.delete([k.vector_key(item["document_id"], i) for i in range(previous.chunks)])
        elif previous is not None and (previous.version, previous.status, previous.error) == (
            item["version"],
            k.SKIPPED,
            reason,
        ):
            return 0
        self.manifest.save(Document(item["document_id"], item["source"], item["uri"], item["title"], item["version"],
                                    0, k.SKIPPED, reason, run_id), tokens=0, now=self._now())  # fmt: skip
        return 1

    # -- ingest -----------------------------------------------------------------------------------
    def ingest(self, item: dict[str, Any]) -> dict[str, Any]:
        if item.get("action") == k.ACTION_DELETE:
            return self._delete(item)
        run_id = item["run_id"]
        previous = self.manifest.document(item["document_id"])
        try:
            title, text, version = self._read(item)
        except Unavailable as why:
            self._save(item, version=item["version"], chunks=0, status=k.UNAVAILABLE, error=str(why), tokens=0,
                       previous=previous)  # fmt: skip
            self.manifest.count(run_id, done=1, unavailable=1)
            return {"status": k.UNAVAILABLE}
        except DocumentError as why:
            return self._failed(item, str(why), previous)
        pieces = chunk(text, self.settings.chunk_tokens, self.settings.chunk_overlap_tokens)
        try:
            embeddings = self.sources.embedder().embed(pieces)
        except ApiError as error:
            if error.status == 429 or error.status >= 500:
                raise TransientError(error.message) from None
            return self._failed(item, error.message, previous)
        document_id = item["document_id"]
        vectors = [
            {"key": k.vector_key(document_id, i), "data": {"float32": vector},
             "metadata": {k.META_SOURCE: item["source"], k.META_DOCUMENT: document_id, k.META_TEXT: piece,
                          k.META_URI: item["uri"], k.META_TITLE: title}}
            for i, (piece, vector) in enumerate(zip(pieces, embeddings.vectors, strict=True))
        ]  # fmt: skip
        self._vector_call(self.sources.vectors.put, vectors)
        # New chunks overwrite the old ones key by key; the old document's surplus chunks go.
        stale = range(len(vectors), previous.chunks if previous else 0)
        self._vector_call(self.sources.vectors.delete, [k.vector_key(document_id, i) for i in stale])
        self._save({**item, "title": title}, version=version, chunks=len(vectors), status=k.INDEXED, error="",
                   tokens=embeddings.tokens, previous=previous)  # fmt: skip
        self.manifest.count(run_id, done=1, chunks=len(vectors), tokens=embeddings.tokens,
                            embedding_calls=embeddings.calls)  # fmt: skip
        return {"status": k.INDEXED, "chunks": len(vectors)}

    def _read(self, item: dict[str, Any]) -> tuple[str, str, str]:
        """(title, text, version) of the document as fetched now."""
        if item["source"] == k.SOURCE_YOUTUBE:
            text = self.sources.transcript(item["video_id"], proxy=self.sources.youtube_proxy())
            return item["title"], _bounded(text), item["version"]
        answer = self._s3_call(self.sources.s3.get_object, Bucket=self.settings.dataset_bucket, Key=item["key"])
        if int(answer.get("ContentLength", 0)) > self.settings.max_document_bytes:
            raise DocumentError("The file grew past the size limit since it was listed.")
        data = answer["Body"].read(self.settings.max_document_bytes + 1)
        extracted = extract(item["key"], data)
        if not extracted.text.strip():
            raise DocumentError("The file has no text to index.")
        return extracted.title, _bounded(extracted.text), str(answer.get("ETag", item["version"])).strip('"')

    def _delete(self, item: dict[str, Any]) -> dict[str, Any]:
        previous = self.manifest.document(item["document_id"])
        if previous is not None and previous.chunks:
            keys = [k.vector_key(item["document_id"], i) for i in range(previous.chunks)]
            self._vector_call(self.sources.vectors.delete, keys)
        self.manifest.forget(item["document_id"])
        self.manifest.count(item["run_id"], done=1, deleted=1)
        return {"status": "deleted"}

    def record_failure(self, item: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
        """What the state machine caught after its retries: the error's type and message, never its trace."""
        try:
            cause = json.loads(error.get("Cause") or "{}")
        except ValueError:
            cause = {}
        message = cause.get("errorMessage") if isinstance(cause, dict) else None
        text = f"{error.get('Error') or 'Error'}: {message or 'the step failed'}"
        return self._failed(item, text, self.manifest.document(item["document_id"]))

    def _failed(self, item: dict[str, Any], message: str, previous: Document | None) -> dict[str, Any]:
        # A document that fails keeps whatever it had indexed before; its status says it failed this run.
        self._save(item, version="" if previous is None else previous.version,
                   chunks=previous.chunks if previous else 0, status=k.FAILED, error=message, tokens=0,
                   previous=previous)  # fmt: skip
        self.manifest.count(item["run_id"], done=1, failed=1)
        return {"status": k.FAILED}

    def _save(self, item: dict[str, Any], *, version: str, chunks: int, status: str, error: str, tokens: int,
              previous: Document | None) -> None:  # fmt: skip
        title = item.get("title") or (previous.title if previous else "")
        self.manifest.save(Document(item["document_id"], item["source"], item.get("uri", ""), title, version, chunks,
                                    status, error, item["run_id"]), tokens=tokens, now=self._now())  # fmt: skip

    def _vector_call(self, call: Callable[[Any], int], argument: Any) -> None:
        if not argument:
            return
        try:
            call(argument)
        except ApiError as error:
            raise TransientError(error.message) from None

    @staticmethod
    def _s3_call(call: Callable[..., Any], **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - loaded with boto3

        try:
            return call(**arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise DocumentError("The file was deleted since it was listed.") from None
            if code in ("AccessDenied", "403"):
                raise DocumentError("The pipeline may not read this file.") from None
            raise TransientError(f"S3 answered {code}.") from None
        except BotoCoreError:
            raise TransientError("S3 could not be reached.") from None

    # -- report -----------------------------------------------------------------------------------
    def report(self, run_id: str) -> dict[str, Any]:
        run = self.manifest.run(run_id)
        if run is None:
            raise ValueError(f"No run {run_id!r} in the manifest.")
        total, failed = int(run.get(k.RUN_TOTAL, 0)), int(run.get(k.RUN_FAILED, 0))
        # Documents the Map never finished (it was stopped) count as failed.
        failed += max(0, total - int(run.get(k.RUN_DONE, 0)))
        over = total > 0 and failed * 100 > self.settings.failure_threshold_percent * total
        started = _instant(run[k.RUN_STARTED])
        now = self.clock()
        status = k.RUN_FAILED_STATUS if over else k.SUCCEEDED
        self.manifest.finish_run(run_id, status=status, finished_at=now.isoformat(),
                                 duration_seconds=(now - started).total_seconds())  # fmt: skip
        summary = {**(self.manifest.run(run_id) or run)}
        self.record_run(total, failed)  # once the run is closed: a retried report that failed before counts once
        if over:
            raise RunFailedError(f"{failed} of {total} documents failed, more than the "
                                 f"{self.settings.failure_threshold_percent}% the stage allows.")  # fmt: skip
        return summary

    # -- freshness --------------------------------------------------------------------------------
    def days_since_success(self) -> float:
        """Days since the newest run that succeeded finished; when none of the newest runs succeeded, since the
        manifest was created (the stage's first deployment): a pipeline that never succeeded is as late as it is old."""
        since = next((_instant(run[k.RUN_FINISHED]) for run in self.manifest.runs(limit=FRESHNESS_RUNS)
                      if run.get(k.RUN_STATUS) == k.SUCCEEDED and run.get(k.RUN_FINISHED)), None)  # fmt: skip
        if since is None:
            since = self.manifest.created_at()
        return max(0.0, (self.clock() - since).total_seconds() / 86_400)

    def _now(self) -> str:
        return self.clock().isoformat()


def _instant(text: Any) -> datetime:
    """A timestamp the manifest holds (ISO 8601, ``Z`` or an offset) as an aware datetime."""
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _bounded(text: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise DocumentError(f"The extracted text is longer than {MAX_TEXT_CHARS:,} characters.")
    return text
