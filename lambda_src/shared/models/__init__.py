"""Provider-neutral value types of a model call (what the routes ask for and get back), and the adapters:
bedrock.py (Converse / ConverseStream) and openai_upstream.py (an OpenAI-compatible HTTP upstream).

A buffered call gives a Completion; a streamed call gives a ModelStream of StreamEvents. Both adapters raise
ApiError (lambda_src/shared/errors.py) for every failure they know: from ``complete``/``stream`` when the model
refused before answering, from the stream's ``__next__`` when it fails mid-answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from lambda_src.shared.models.stream import Finish, ModelStream, StreamEvent, TextDelta, ToolCallDelta, Usage

__all__ = ["Completion", "CompletionRequest", "Finish", "GuardrailRef", "Image", "Message", "ModelClient",
           "ModelStream", "StreamEvent", "TextDelta", "Tool", "ToolCall", "ToolCallDelta", "Usage",
           "model_client"]  # fmt: skip
_STREAM_TYPES = frozenset({"Finish", "ModelStream", "StreamEvent", "TextDelta", "ToolCallDelta", "Usage"})

# The value types on the request path are NamedTuples: immutable like frozen dataclasses, but a frozen
# dataclass compiles generated methods when its module loads (~4M instructions each, at every cold start).


class Image(NamedTuple):
    """An image content part, already decoded from its data: URL."""

    format: str  # "png", "jpeg", "gif" or "webp" (Converse's ImageFormat)
    data: bytes


class ToolCall(NamedTuple):
    """A function call the model asked for (OpenAI tool_calls[i]; Converse toolUse)."""

    id: str
    name: str
    arguments: str  # JSON text, exactly as the model produced it


class Message(NamedTuple):
    role: str  # "user", "assistant" or "tool"; system text goes to CompletionRequest.system
    content: str  # the text parts, joined
    images: tuple[Image, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()  # assistant messages only
    tool_call_id: str = ""  # tool messages only: the call this is the result of


class Tool(NamedTuple):
    """A function the caller offers the model (OpenAI tools[i].function; Converse toolSpec)."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments


class GuardrailRef(NamedTuple):
    """The stage's guardrail as the model settings name it: a numbered version, and how streams are scanned."""

    identifier: str
    version: str
    stream_processing: str  # "sync" or "async" (lambda_src/contracts/guardrail.py)


class CompletionRequest(NamedTuple):
    model_id: str
    system: tuple[str, ...]
    messages: tuple[Message, ...]
    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...]
    timeout_seconds: int
    tools: tuple[Tool, ...] = ()
    # None (model decides; "auto"), "none", "required", or a tool's name (that tool must be called).
    tool_choice: str | None = None
    # OpenAI's parallel_tool_calls as the caller gave it (None: not given). An upstream gets it; Converse has no
    # such switch (README).
    parallel_tool_calls: bool | None = None
    # The guardrail to apply (None: the route family's switch is off, or the stage has none).
    guardrail: GuardrailRef | None = None


class Completion(NamedTuple):
    text: str
    # OpenAI's finish_reason: "stop", "length", "content_filter" or "tool_calls".
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    tool_calls: tuple[ToolCall, ...] = ()
    # The guardrail intervened: ``text`` is its configured message (or the answer with parts masked).
    guardrail: bool = False


class ModelClient(Protocol):
    def complete(self, request: CompletionRequest) -> Completion: ...

    def stream(self, request: CompletionRequest) -> ModelStream: ...


class Provider(Protocol):
    """What picks a model's adapter (ModelSettings has it)."""

    @property
    def provider(self) -> str: ...

    @property
    def upstream_base_url(self) -> str: ...


def model_client(settings: Provider, api_key: Callable[[], str],
                 bedrock_client: Callable[[int], Any]) -> ModelClient:  # fmt: skip
    """The adapter of the configured provider: Bedrock's Converse through ``bedrock_client(read_timeout)``, or an
    OpenAI-compatible upstream with ``api_key()`` (its module is imported on first use: urllib.request and its
    email parsing cost cold-start time Bedrock never needs)."""
    if settings.provider == "openai-compatible":
        from lambda_src.shared.models.guarded import GuardedModel  # noqa: PLC0415
        from lambda_src.shared.models.openai_upstream import OpenAICompatibleModel  # noqa: PLC0415

        # An upstream has no guardrail of Bedrock's: the request's is applied around it with ApplyGuardrail.
        return GuardedModel(OpenAICompatibleModel(settings.upstream_base_url, api_key), bedrock_client)
    from lambda_src.shared.models.bedrock import BedrockModel  # noqa: PLC0415

    return BedrockModel(bedrock_client)


def __getattr__(name: str) -> Any:
    """The stream types (stream.py) load with their first use: a buffered request never builds them."""
    if name in _STREAM_TYPES:
        from lambda_src.shared.models import stream  # noqa: PLC0415

        return getattr(stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
