"""The audit log's part of the stage configuration (CDK-free)."""

from __future__ import annotations

from dataclasses import dataclass

from constructs_lib.foundation.settings import Check, Settings, whole
from lambda_src.contracts.audit import CONTENTS, MODES


@dataclass(frozen=True)
class AuditConfig(Settings):
    """The inference audit log; validated as part of its StageConfig."""

    # required: no record, no model output released (5xx); best_effort: log, count and continue.
    mode: str = "required"
    # full | redacted (personal data and secrets masked) | metadata_only (no text).
    content: str = "full"
    # S3 Object Lock (governance mode) retention of every record.
    object_lock_days: int = 365
    # Records move to Glacier Instant Retrieval after this many days.
    cold_transition_days: int = 90
    # Firehose buffers this long before writing a Parquet file (60-900 s).
    buffer_seconds: int = 300
    # Athena stops a query that would scan more than this (bytes).
    athena_bytes_scanned_cutoff: int = 10 * 1024**3

    def checks(self) -> list[Check]:
        return [
            (self.mode in MODES, "mode", f"must be one of {', '.join(MODES)}"),
            (self.content in CONTENTS, "content", f"must be one of {', '.join(CONTENTS)}"),
            (whole(self.object_lock_days, 36_500), "object_lock_days", "must be a whole number of days from 1"),
            (whole(self.cold_transition_days, 3_650), "cold_transition_days",
             "must be a whole number of days from 1 to 3650"),
            (whole(self.buffer_seconds, 900, minimum=60), "buffer_seconds", "must be from 60 to 900 seconds"),
            (whole(self.athena_bytes_scanned_cutoff, 2**50, minimum=10 * 1024**2),
             "athena_bytes_scanned_cutoff", "must be at least 10 MB (Athena's minimum)"),
        ]  # fmt: skip
