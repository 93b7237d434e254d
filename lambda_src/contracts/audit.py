"""The audit record, defined once: the Glue table (AuditStack), the writer (lambda_src/shared/audit_writer.py)
and the stage settings all read it.

Types are Glue/Hive type names; the writer maps them to JSON values Firehose converts to Parquet.
"""

from __future__ import annotations

# required: no record, no model output released (5xx); best_effort: log, count and continue.
MODE_REQUIRED = "required"
MODES = (MODE_REQUIRED, "best_effort")
# full | redacted (personal data and secrets masked) | metadata_only (no text).
CONTENTS = ("full", "redacted", "metadata_only")
# Every request ends in one COMPLETE record. A streamed answer in required mode is preceded by a REQUEST record
# (who, when, model, input) that must be accepted before the model is called: the caller never receives output
# that left no trace, even if the function dies mid-stream.
PHASE_REQUEST = "request"
PHASE_COMPLETE = "complete"

AUDIT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("timestamp", "timestamp", "When the inference finished (UTC)"),
    ("input_text", "string", "The conversation sent to the model (per audit_content)"),
    ("output_text", "string", "The model's answer (per audit_content); empty when none was released"),
    ("user_id", "string", "Owner of the API key"),
    ("session_id", "string", "<api_key_id>:<X-Session-Id header or the OpenAI user field> (session_key)"),
    ("request_id", "string", "API Gateway request id"),
    ("api_key_id", "string", "Id of the API key (never the key)"),
    ("model_id", "string", "Model or inference profile that answered"),
    ("provider", "string", "bedrock or openai-compatible"),
    ("prompt_tokens", "int", "Input tokens"),
    ("completion_tokens", "int", "Output tokens"),
    ("latency_ms", "int", "Time spent on the request in the function"),
    ("status_code", "int", "HTTP status returned to the caller"),
    ("error_type", "string", "Error code when the request failed"),
    ("stage", "string", "Deployment stage"),
    ("phase", "string", "complete (one per request: count these) or request (sent before a streamed answer)"),
    ("streamed", "boolean", "The answer was streamed (server-sent events)"),
    ("disconnected", "boolean", "The caller went away before a streamed answer ended (output is partial)"),
)


def session_key(api_key_id: str, session_id: str) -> str:
    """A session as the audit log records and queries it: the caller's own id inside its key's namespace, so two
    keys that both say session "1" never share a transcript."""
    return f"{api_key_id}:{session_id}"


PARTITION_KEY = ("dt", "string", "UTC day, yyyy-MM-dd (partition projection)")
# Firehose's OpenX JSON SerDe reads timestamps in this form.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
