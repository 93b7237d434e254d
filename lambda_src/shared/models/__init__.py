"""Provider-neutral value types of a model call (what the routes ask for and get back), and the adapters:
bedrock.py (Converse) and openai_upstream.py (an OpenAI-compatible HTTP upstream)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    role: str  # "user" or "assistant"; system text goes to CompletionRequest.system
    content: str


@dataclass(frozen=True)
class CompletionRequest:
    model_id: str
    system: tuple[str, ...]
    messages: tuple[Message, ...]
    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...]
    timeout_seconds: int


@dataclass(frozen=True)
class Completion:
    text: str
    # OpenAI's finish_reason: "stop", "length" or "content_filter".
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class ModelClient(Protocol):
    def complete(self, request: CompletionRequest) -> Completion: ...
