"""One JSON schema (draft 4, what API Gateway models speak) per request body.

The API construct turns each into the API Gateway model of its route, and the handlers validate bodies
against the same schema (lambda_src/shared/validation.py) before any route logic runs, so the gateway and
the function can never disagree on a limit. Optional fields accept null, as OpenAI's API does.
"""

from __future__ import annotations

from typing import Any

from lambda_src.contracts.parameters import MAX_OUTPUT_TOKENS, TEMPERATURE, TOP_P

DRAFT4 = "http://json-schema.org/draft-04/schema#"
CHAT_COMPLETION_REQUEST = "ChatCompletionRequest"
PROMPT_REQUEST = "PromptRequest"

ROLES = ("system", "developer", "user", "assistant")
MAX_MESSAGES = 256
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 200
MAX_USER_CHARS = 256
MAX_MODEL_CHARS = 256

_TEXT_PART: dict[str, Any] = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}},
}
_MAX_TOKENS = MAX_OUTPUT_TOKENS.json_schema(nullable=True)

REQUEST_SCHEMAS: dict[str, dict[str, Any]] = {
    CHAT_COMPLETION_REQUEST: {
        "$schema": DRAFT4,
        "title": CHAT_COMPLETION_REQUEST,
        "type": "object",
        "required": ["messages"],
        "properties": {
            "model": {"type": ["string", "null"], "maxLength": MAX_MODEL_CHARS},
            "messages": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_MESSAGES,
                "items": {
                    "type": "object",
                    "required": ["role", "content"],
                    "properties": {
                        "role": {"type": "string", "enum": list(ROLES)},
                        "content": {"type": ["string", "array"], "items": _TEXT_PART},
                    },
                },
            },
            "temperature": TEMPERATURE.json_schema(nullable=True),
            "top_p": TOP_P.json_schema(nullable=True),
            "max_tokens": _MAX_TOKENS,
            "max_completion_tokens": _MAX_TOKENS,
            "stop": {
                "type": ["string", "array", "null"],
                "minLength": 1,
                "maxLength": MAX_STOP_CHARS,
                "maxItems": MAX_STOP_SEQUENCES,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_STOP_CHARS},
            },
            "stream": {"type": ["boolean", "null"]},
            "user": {"type": ["string", "null"], "maxLength": MAX_USER_CHARS},
        },
    },
    PROMPT_REQUEST: {
        "$schema": DRAFT4,
        "title": PROMPT_REQUEST,
        "type": "object",
        "required": ["prompt"],
        "properties": {"prompt": {"type": "string", "minLength": 1}},
    },
}
