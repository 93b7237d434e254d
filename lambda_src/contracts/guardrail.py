"""The stage's Bedrock Guardrail as the functions see it: where they find the version to apply (Parameter Store,
under the model's path), how streams are scanned, which route families apply it, and how an intervention is
reported. (What a stage may configure, Bedrock's vocabulary and limits, is checked at synth only:
constructs_lib/guardrails/settings.py.)

The guardrail itself is built from GuardrailConfig (constructs_lib/guardrails); a numbered version of it (never the
DRAFT) is written to ``<root>/model/guardrail-version``, read by the functions with the rest of the model settings,
so publishing a new version and changing that parameter applies it without deploying the API.
"""

from __future__ import annotations

# Leaves under the model settings path (lambda_src/contracts/parameters.py MODEL_PATH); present only on a stage
# whose guardrail is enabled.
ID_LEAF = "guardrail-id"
VERSION_LEAF = "guardrail-version"
STREAM_PROCESSING_LEAF = "guardrail-stream-processing"
LEAVES = (ID_LEAF, VERSION_LEAF, STREAM_PROCESSING_LEAF)

# ConverseStream's streamProcessingMode: sync scans each chunk before it is sent (and can mask), async sends first.
STREAM_SYNC = "sync"
STREAM_ASYNC = "async"
STREAM_PROCESSING_MODES = (STREAM_SYNC, STREAM_ASYNC)

# The route families a stage switches the guardrail on for (each function is told by APPLY_GUARDRAIL).
FAMILY_INFERENCE = "inference"  # the OpenAI-compatible routes: /chat/completions and /prompt
FAMILY_CHAT = "chat"  # the chat app's conversations
FAMILIES = (FAMILY_INFERENCE, FAMILY_CHAT)

# An intervention is answered, not refused: 200 with finish_reason content_filter and the configured message. The
# audit record and the request log carry this error type; GuardrailInterventions counts it (contracts/metrics.py).
INTERVENED = "guardrail_intervened"
FINISH_REASON = "content_filter"
