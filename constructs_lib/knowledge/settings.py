"""The knowledge base's part of the stage configuration (CDK-free)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from constructs_lib.dataset.settings import is_prefix
from constructs_lib.foundation.settings import Check, Settings, whole
from lambda_src.contracts.knowledge import DIMENSION, EMBEDDING_PROVIDERS, TITAN_DIMENSIONS, TITAN_V2

# EventBridge Scheduler's cron: six fields, minutes to year ("0 3 ? * MON *").
_CRON = re.compile(r"^\S+ \S+ \S+ \S+ \S+ \S+$")
_TIME_ZONE = re.compile(r"^(?:UTC|[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_+-]+){1,2})$")
# A YouTube playlist id: letters, digits, - and _ (PL..., UU..., OL...).
_PLAYLIST = re.compile(r"^[A-Za-z0-9_-]{10,64}$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


@dataclass(frozen=True)
class KnowledgeConfig(Settings):
    """What the weekly pipeline reads, how it chunks and embeds, and the index it fills."""

    # Under the dataset bucket: documents below this prefix are the knowledge base's S3 source.
    prefix: str = "knowledge/"
    # YouTube playlists whose videos' transcripts are ingested (none: the YouTube source is off).
    youtube_playlist_ids: tuple[str, ...] = ()
    embedding_provider: str = "bedrock"
    embedding_model_id: str = TITAN_V2
    # The index's vector size; immutable, so the index name carries it (and index_version).
    dimension: int = 1024
    index_version: int = 1
    # Chunks of about this many tokens, each repeating the end of the previous one.
    chunk_tokens: int = 400
    chunk_overlap_tokens: int = 60
    # Texts per embedding request (openai-compatible) or concurrent calls (Titan embeds one text per call).
    embedding_batch_size: int = 16
    # Files larger than this are reported as skipped.
    max_document_mb: int = 20
    # Documents processed at once by the pipeline's Map.
    max_concurrency: int = 4
    # The run fails when more than this share of its documents failed.
    failure_threshold_percent: int = 10
    # EventBridge Scheduler cron (minutes hours day-of-month month day-of-week year) in schedule_time_zone.
    schedule_cron: str = "0 3 ? * MON *"
    schedule_time_zone: str = "UTC"
    schedule_enabled: bool = True

    def checks(self) -> list[Check]:
        checks: list[Check] = [
            (is_prefix(self.prefix), "prefix", "must be a relative S3 key prefix ending in '/', such as 'knowledge/'"),
            (isinstance(self.youtube_playlist_ids, tuple) and all(
                isinstance(p, str) and _PLAYLIST.match(p) for p in self.youtube_playlist_ids),
             "youtube_playlist_ids", "must be a tuple of YouTube playlist ids such as 'PLxxxxxxxxxxxx'"),
            (self.embedding_provider in EMBEDDING_PROVIDERS, "embedding_provider",
             f"must be one of {', '.join(EMBEDDING_PROVIDERS)}"),
            (isinstance(self.embedding_model_id, str) and bool(_MODEL.match(self.embedding_model_id)),
             "embedding_model_id", "must be a model id of 1-128 letters, digits or ._:/-"),
            (DIMENSION.contains(self.dimension), "dimension", f"must be {DIMENSION.describe()}"),
            (whole(self.index_version, 999), "index_version", "must be a whole number from 1 to 999"),
            (whole(self.chunk_tokens, 8000, minimum=50), "chunk_tokens", "must be a whole number from 50 to 8000"),
            (whole(self.chunk_overlap_tokens, 4000, minimum=0) and self.chunk_overlap_tokens < self.chunk_tokens // 2,
             "chunk_overlap_tokens", "must be a whole number from 0 to less than half of chunk_tokens"),
            (whole(self.embedding_batch_size, 96), "embedding_batch_size", "must be a whole number from 1 to 96"),
            (whole(self.max_document_mb, 100), "max_document_mb", "must be a whole number of MB from 1 to 100"),
            (whole(self.max_concurrency, 40), "max_concurrency", "must be a whole number from 1 to 40"),
            (whole(self.failure_threshold_percent, 100, minimum=0), "failure_threshold_percent",
             "must be a whole number from 0 to 100"),
            (isinstance(self.schedule_cron, str) and bool(_CRON.match(self.schedule_cron)), "schedule_cron",
             "must be an EventBridge Scheduler cron of six fields such as '0 3 ? * MON *'"),
            (isinstance(self.schedule_time_zone, str) and bool(_TIME_ZONE.match(self.schedule_time_zone)),
             "schedule_time_zone", "must be an IANA time zone such as 'UTC' or 'Europe/Paris'"),
            (isinstance(self.schedule_enabled, bool), "schedule_enabled", "must be True or False"),
        ]  # fmt: skip
        if self.embedding_provider == "bedrock":
            checks.append((self.embedding_model_id == TITAN_V2, "embedding_model_id",
                           f"must be '{TITAN_V2}' with the bedrock provider"))  # fmt: skip
            checks.append((self.dimension in TITAN_DIMENSIONS, "dimension",
                           f"must be one of {TITAN_DIMENSIONS} for Titan Text Embeddings V2"))  # fmt: skip
        return checks

    @property
    def max_document_bytes(self) -> int:
        return self.max_document_mb * 1024 * 1024
