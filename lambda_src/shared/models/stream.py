"""The events of a streamed model answer (``ModelClient.stream``), provider-neutral; re-exported by the package
(lazily: the buffered path never loads them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol


class TextDelta(NamedTuple):
    text: str


class ToolCallDelta(NamedTuple):
    """A piece of a tool call. ``index`` numbers the calls of one answer from 0; the first delta of a call
    carries its ``id`` and ``name``, later ones only ``arguments`` pieces (JSON text to concatenate)."""

    index: int  # type: ignore[assignment]  # shadows tuple.index, as OpenAI names it
    id: str
    name: str
    arguments: str


class Finish(NamedTuple):
    reason: str  # as Completion.finish_reason
    # The guardrail intervened (reason is then "content_filter").
    guardrail: bool = False


class Usage(NamedTuple):
    prompt_tokens: int
    completion_tokens: int


StreamEvent = TextDelta | ToolCallDelta | Finish | Usage


class ModelStream(Protocol):
    """The events of one streamed answer, in order; ``close()`` stops the model call (a client went away)."""

    def __iter__(self) -> Iterator[StreamEvent]: ...

    def close(self) -> None: ...
