"""Provider-neutral value types of a model call (what the routes ask for and get back), and the adapters:
bedrock.py (Converse) and openai_upstream.py (an OpenAI-compatible HTTP upstream)."""

from __future__ import annotations

from typing import NamedTuple, Protocol

# The value types on the request path are NamedTuples: immutable like frozen dataclasses, but a frozen
# dataclass compiles generated methods when its module loads (~4M instructions each, at every cold start).


class Message(NamedTuple):
    role: str  # "user" or "assistant"; system text goes to CompletionRequest.system
    content: str


class CompletionRequest(NamedTuple):
    model_id: str
    system: tuple[str, ...]
    messages: tuple[Message, ...]
    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...]
    timeout_seconds: int


class Completion(NamedTuple):
    text: str
    # OpenAI's finish_reason: "stop", "length" or "content_filter".
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class ModelClient(Protocol):
    def complete(self, request: CompletionRequest) -> Completion: ...
