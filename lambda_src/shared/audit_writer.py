"""Writes one audit record per inference attempt to Kinesis Data Firehose, with privacy controls.

- ``audit_mode``: ``required`` - a record that cannot be written (after bounded retries) turns the
  response into a 5xx and the model output is not released; ``best_effort`` - log, count, continue.
- Streamed answers (``AuditEvent.streamed``): in required mode a REQUEST record (who, when, model, input) must
  be accepted before the model is called; the COMPLETE record follows when the stream ends (also after a
  disconnect), retried within bounds (``write(..., attempts=3)``) because the output has already left.
- ``audit_content``: ``full`` | ``redacted`` (emails, phone numbers, card numbers, AWS keys and similar
  secrets masked before the record leaves the function: redaction.py) | ``metadata_only`` (no text at all).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambda_src.contracts.audit import AUDIT_COLUMNS, CONTENTS, MODES, PHASE_COMPLETE, TIMESTAMP_FORMAT

LOGGER = logging.getLogger(__name__)
# Keeps one record well under Firehose's 1,000 KiB record limit.
MAX_TEXT_CHARS = 200_000


class AuditEvent(NamedTuple):
    """What happened in one request, before privacy rules apply."""

    request_id: str
    api_key_id: str
    user_id: str
    session_id: str | None
    model_id: str | None
    provider: str | None
    input_text: str
    output_text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    status_code: int
    error_type: str | None
    phase: str = PHASE_COMPLETE
    streamed: bool = False
    disconnected: bool = False


class AuditFailedError(Exception):
    """The record could not be written in required mode."""


class AuditWriter:
    def __init__(self, firehose: Any, stream_name: str, *, mode: str, content: str, stage: str,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        if mode not in MODES or content not in CONTENTS:
            raise ValueError(f"audit mode must be one of {MODES} and content one of {CONTENTS}")
        self._firehose = firehose
        self._stream = stream_name
        self.mode = mode
        self.content = content
        self._stage = stage
        self._clock = clock
        self._sleep = sleep
        self._redact: Callable[[str], str] | None = None
        if content == "redacted":
            # Imported (and its patterns compiled) only where records are redacted.
            from lambda_src.shared.redaction import redact  # noqa: PLC0415

            self._redact = redact

    def record(self, event: AuditEvent) -> dict[str, Any]:
        """The record exactly as it is written: every schema column, nothing else."""
        input_text, output_text = event.input_text, event.output_text
        if self.content == "metadata_only":
            input_text = output_text = ""
        elif self._redact is not None:
            input_text, output_text = self._redact(input_text), self._redact(output_text)
        record: dict[str, Any] = {
            "timestamp": self._clock().strftime(TIMESTAMP_FORMAT)[:-3],
            "input_text": input_text[:MAX_TEXT_CHARS],
            "output_text": output_text[:MAX_TEXT_CHARS],
            "user_id": event.user_id,
            "session_id": event.session_id or "",
            "request_id": event.request_id,
            "api_key_id": event.api_key_id,
            "model_id": event.model_id or "",
            "provider": event.provider or "",
            "prompt_tokens": event.prompt_tokens,
            "completion_tokens": event.completion_tokens,
            "latency_ms": event.latency_ms,
            "status_code": event.status_code,
            "error_type": event.error_type or "",
            "stage": self._stage,
            "phase": event.phase,
            "streamed": event.streamed,
            "disconnected": event.disconnected,
        }
        assert list(record) == [name for name, _type, _doc in AUDIT_COLUMNS]  # noqa: S101 - schema drift is a bug
        return record

    def write(self, event: AuditEvent, *, attempts: int = 1) -> bool:
        """True when the record was accepted. In required mode a failure raises AuditFailedError.

        ``attempts`` > 1 retries a failed write (after the client's own retries) with a short doubling pause:
        for the COMPLETE record of a stream, whose output the caller already has."""
        data = (json.dumps(self.record(event), ensure_ascii=False) + "\n").encode()
        code = ""
        for attempt in range(attempts):
            if attempt:
                self._sleep(0.2 * 2 ** (attempt - 1))
            try:
                self._firehose.put_record(DeliveryStreamName=self._stream, Record={"Data": data})
                return True
            except (ClientError, BotoCoreError) as error:
                code = str(error.response.get("Error", {}).get("Code") if isinstance(error, ClientError)
                           else type(error).__name__)  # fmt: skip
        LOGGER.error("Audit %s record for %s not written after %d attempt(s): %s", event.phase, event.request_id,
                     attempts, code)  # fmt: skip
        if self.mode == "required":
            raise AuditFailedError(code)
        return False


def stream_writer(client: Callable[..., Any], stream_name: str, *, mode: str, content: str,
                  stage: str) -> AuditWriter | None:  # fmt: skip
    """The writer of a function's audit stream (None without one: local unit tests only). ``client`` is
    ``boto3.client`` or a session's ``client``; its Firehose calls are bounded, so a slow Firehose cannot hold the
    caller (required mode then answers 503)."""
    if not stream_name:
        return None
    firehose = client("firehose", config=Config(connect_timeout=1, read_timeout=2,
                                                retries={"mode": "standard", "max_attempts": 3}))  # fmt: skip
    return AuditWriter(firehose, stream_name, mode=mode, content=content, stage=stage)
