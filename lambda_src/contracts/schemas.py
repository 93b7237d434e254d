"""One JSON schema (draft 4, what API Gateway models speak) per request body.

The API construct turns each into the API Gateway model of its route, and the handlers validate bodies
against the same schema (lambda_src/shared/validation.py) before any route logic runs, so the gateway and
the function can never disagree on a limit. Optional fields accept null, as OpenAI's API does.
"""

from __future__ import annotations

from typing import Any

from lambda_src.contracts.chat import MAX_MESSAGE_CHARS, MAX_TITLE_CHARS
from lambda_src.contracts.knowledge import (
    DIMENSION,
    MAX_EMBEDDING_INPUT_CHARS,
    MAX_EMBEDDING_INPUTS,
    MAX_QUERY_CHARS,
    SOURCES,
    TOP_K,
)
from lambda_src.contracts.parameters import MAX_OUTPUT_TOKENS, TEMPERATURE, TOP_P

DRAFT4 = "http://json-schema.org/draft-04/schema#"
CHAT_COMPLETION_REQUEST = "ChatCompletionRequest"
PROMPT_REQUEST = "PromptRequest"
EMBEDDINGS_REQUEST = "EmbeddingsRequest"
RETRIEVE_REQUEST = "RetrieveRequest"
CREATE_CONVERSATION_REQUEST = "CreateConversationRequest"
RENAME_CONVERSATION_REQUEST = "RenameConversationRequest"
MESSAGE_REQUEST = "MessageRequest"

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_MESSAGES = 256
MAX_TOOLS = 64
MAX_TOOL_CALLS = 64
MAX_ID_CHARS = 256
MAX_TOOL_NAME_CHARS = 64
MAX_TOOL_DESCRIPTION_CHARS = 4096
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 200
MAX_USER_CHARS = 256
MAX_MODEL_CHARS = 256

# A content part: text, or an image as a data: URL (the function checks which fields each kind needs).
_CONTENT_PART: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["text", "image_url"]},
        "text": {"type": "string"},
        "image_url": {
            "type": "object",
            "required": ["url"],
            "properties": {"url": {"type": "string"}, "detail": {"type": ["string", "null"]}},
        },
    },
}
_TOOL_CALL: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS},
        "type": {"type": "string", "enum": ["function"]},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": {"type": "string", "maxLength": MAX_TOOL_NAME_CHARS},
                           "arguments": {"type": "string"}},
        },
    },
}  # fmt: skip
_TOOL: dict[str, Any] = {
    "type": "object",
    "required": ["type", "function"],
    "properties": {
        "type": {"type": "string", "enum": ["function"]},
        "function": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "maxLength": MAX_TOOL_NAME_CHARS},
                "description": {"type": ["string", "null"], "maxLength": MAX_TOOL_DESCRIPTION_CHARS},
                "parameters": {"type": ["object", "null"]},
            },
        },
    },
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
                    "required": ["role"],
                    "properties": {
                        "role": {"type": "string", "enum": list(ROLES)},
                        # null only where OpenAI allows it: an assistant message that calls tools.
                        "content": {"type": ["string", "array", "null"], "items": _CONTENT_PART},
                        "tool_calls": {"type": ["array", "null"], "maxItems": MAX_TOOL_CALLS, "items": _TOOL_CALL},
                        "tool_call_id": {"type": ["string", "null"], "maxLength": MAX_ID_CHARS},
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
            "stream_options": {
                "type": ["object", "null"],
                "properties": {"include_usage": {"type": ["boolean", "null"]}},
            },
            "tools": {"type": ["array", "null"], "maxItems": MAX_TOOLS, "items": _TOOL},
            # "none", "auto", "required" or {"type": "function", "function": {"name": ...}} (checked by the function).
            "tool_choice": {"type": ["string", "object", "null"]},
            "parallel_tool_calls": {"type": ["boolean", "null"]},
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
    # OpenAI's embeddings request. Token arrays as input are refused (the schema's "a string"): the models here
    # take text. The openai SDK asks for base64 unless told otherwise.
    EMBEDDINGS_REQUEST: {
        "$schema": DRAFT4,
        "title": EMBEDDINGS_REQUEST,
        "type": "object",
        "required": ["input"],
        "properties": {
            "input": {
                "type": ["string", "array"],
                "minLength": 1,
                "maxLength": MAX_EMBEDDING_INPUT_CHARS,
                "minItems": 1,
                "maxItems": MAX_EMBEDDING_INPUTS,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_EMBEDDING_INPUT_CHARS},
            },
            "model": {"type": ["string", "null"], "maxLength": MAX_MODEL_CHARS},
            "encoding_format": {"type": "string", "enum": ["float", "base64"]},
            "dimensions": DIMENSION.json_schema(nullable=True),
            "user": {"type": ["string", "null"], "maxLength": MAX_USER_CHARS},
        },
    },
    RETRIEVE_REQUEST: {
        "$schema": DRAFT4,
        "title": RETRIEVE_REQUEST,
        "type": "object",
        "required": ["query"],
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS},
            "top_k": TOP_K.json_schema(nullable=True),
            # Only chunks of this source (the index's filterable `source` metadata).
            "source": {"type": "string", "enum": list(SOURCES)},
        },
    },
    CREATE_CONVERSATION_REQUEST: {
        "$schema": DRAFT4,
        "title": CREATE_CONVERSATION_REQUEST,
        "type": "object",
        "properties": {"title": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_TITLE_CHARS}},
    },
    RENAME_CONVERSATION_REQUEST: {
        "$schema": DRAFT4,
        "title": RENAME_CONVERSATION_REQUEST,
        "type": "object",
        "required": ["title"],
        "properties": {"title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE_CHARS}},
    },
    MESSAGE_REQUEST: {
        "$schema": DRAFT4,
        "title": MESSAGE_REQUEST,
        "type": "object",
        "required": ["content"],
        "properties": {"content": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_CHARS}},
    },
}
