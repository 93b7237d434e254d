"""The stage's guardrail around a model that has none of Bedrock's (an OpenAI-compatible upstream, the local model):
Bedrock's ApplyGuardrail on the caller's input before the call and on the answer after it. Bedrock models get the
guardrail inside Converse instead (bedrock.py), so both paths apply the same numbered version.

- Input: the user turns, as one text (joined by a separator no turn contains, so masked turns can be put back).
  Blocked: the model is not called; the answer is the guardrail's message with ``finish_reason`` content_filter.
  Masked: the model gets the masked turns.
- Output, buffered: the answer's text. Blocked: the guardrail's message replaces it (and any tool calls); masked:
  the masked text.
- Output, streamed: the text is assessed in pieces, cut at whitespace so a word, an e-mail address or a number is
  never split between two assessments. The first piece is ``FIRST_PIECE_CHARS`` long and each next one twice the one
  before, up to ``LAST_PIECE_CHARS``: the first text comes soon, and a long answer costs few assessments (Bedrock
  bills each call by the 1,000 characters). ``sync`` (the only mode that can mask)
  holds each piece until it is assessed; ``async`` sends first and assesses behind, ending the stream when a piece
  is blocked. A blocked piece ends the answer with the guardrail's message; text sent before it stays sent, as with
  Bedrock's own stream scanning. Tool-call arguments are not assessed.

Any failure to assess (throttled, unreachable, not found) fails the call: an answer is never released unassessed.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from lambda_src.contracts import guardrail as g
from lambda_src.shared.errors import upstream_error
from lambda_src.shared.models import Completion, CompletionRequest, GuardrailRef, ModelClient, ModelStream
from lambda_src.shared.models.bedrock import map_error
from lambda_src.shared.models.stream import Finish, StreamEvent, TextDelta, Usage

FIRST_PIECE_CHARS = 128
LAST_PIECE_CHARS = 1_000
# Seconds one assessment may take (ApplyGuardrail answers in well under a second).
ASSESS_TIMEOUT_SECONDS = 5
# Joins the user turns into one text: a line no turn contains (checked), which no filter matches or masks.
SEPARATOR = "\n\u2063\u2063\u2063\n"
INPUT = "INPUT"
OUTPUT = "OUTPUT"


class Verdict(NamedTuple):
    """An intervention: blocked (``text`` is the guardrail's message) or masked (``text`` is the masked text)."""

    blocked: bool
    text: str


class GuardedModel:
    """``inner`` with the request's guardrail applied through ``clients(timeout)``'s ApplyGuardrail."""

    def __init__(self, inner: ModelClient, clients: Callable[[int], Any]) -> None:
        self._inner = inner
        self._clients = clients

    def complete(self, request: CompletionRequest) -> Completion:
        guardrail = request.guardrail
        if guardrail is None:
            return self._inner.complete(request)
        checked = self._check_input(guardrail, request)
        if isinstance(checked, Completion):
            return checked
        completion = self._inner.complete(checked)
        verdict = self.assess(guardrail, OUTPUT, completion.text) if completion.text else None
        if verdict is None:
            return completion
        calls = () if verdict.blocked else completion.tool_calls
        return completion._replace(text=verdict.text, finish_reason=g.FINISH_REASON, tool_calls=calls, guardrail=True)

    def stream(self, request: CompletionRequest) -> ModelStream:
        guardrail = request.guardrail
        if guardrail is None:
            return self._inner.stream(request)
        checked = self._check_input(guardrail, request)
        if isinstance(checked, Completion):
            return _Answered(checked.text)
        return _GuardedStream(self._inner.stream(checked), self, guardrail)

    def assess(self, guardrail: GuardrailRef, source: str, text: str) -> Verdict | None:
        """The guardrail's verdict on ``text`` (None: it did not intervene)."""
        try:
            response = self._clients(ASSESS_TIMEOUT_SECONDS).apply_guardrail(
                guardrailIdentifier=guardrail.identifier, guardrailVersion=guardrail.version, source=source,
                content=[{"text": {"text": text}}])  # fmt: skip
        except (ClientError, BotoCoreError) as error:
            raise map_error(error) from None
        if response.get("action") != "GUARDRAIL_INTERVENED":
            return None
        outputs = [str(output.get("text", "")) for output in response.get("outputs") or [] if isinstance(output, dict)]
        return Verdict(_blocked(response.get("assessments")), "".join(outputs))

    def _check_input(self, guardrail: GuardrailRef, request: CompletionRequest) -> CompletionRequest | Completion:
        """The request with its user turns masked, or the blocked answer."""
        turns = [i for i, message in enumerate(request.messages) if message.role == "user" and message.content]
        texts = [request.messages[i].content for i in turns]
        if not texts:
            return request
        if any(SEPARATOR in text for text in texts):
            raise upstream_error("The request could not be assessed by the content guardrail.", retryable=False)
        verdict = self.assess(guardrail, INPUT, SEPARATOR.join(texts))
        if verdict is None:
            return request
        if verdict.blocked:
            return Completion(verdict.text, g.FINISH_REASON, 0, 0, guardrail=True)
        masked = verdict.text.split(SEPARATOR)
        if len(masked) != len(texts):  # the turns cannot be told apart again: never send them unmasked
            raise upstream_error("The request could not be assessed by the content guardrail.", retryable=False)
        messages = list(request.messages)
        for index, text in zip(turns, masked, strict=True):
            messages[index] = messages[index]._replace(content=text)
        return request._replace(messages=tuple(messages))


def _blocked(assessments: Any) -> bool:
    """Whether any policy of the assessments blocked (rather than masked): an ``action`` of BLOCKED anywhere."""
    stack = [assessments]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("action") == "BLOCKED":
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class _Answered:
    """The answer to a blocked input: the guardrail's message, as a stream."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __iter__(self) -> Iterator[StreamEvent]:
        yield TextDelta(self._text)
        yield Finish(g.FINISH_REASON, guardrail=True)
        yield Usage(0, 0)

    def close(self) -> None:
        return None


class _GuardedStream:
    """The upstream's stream with its text assessed piece by piece (see the module's docstring)."""

    def __init__(self, inner: ModelStream, model: GuardedModel, guardrail: GuardrailRef) -> None:
        self._inner = inner
        self._model = model
        self._guardrail = guardrail
        self._sync = guardrail.stream_processing == g.STREAM_SYNC

    def __iter__(self) -> Iterator[StreamEvent]:
        held = ""  # text not yet assessed (sync: not yet sent either)
        piece_chars = FIRST_PIECE_CHARS
        intervened = False
        for event in self._inner:
            if isinstance(event, TextDelta):
                if not self._sync:
                    yield event
                held += event.text
                if len(held) < piece_chars:
                    continue
                piece, held = _cut(held)
                piece_chars = min(piece_chars * 2, LAST_PIECE_CHARS)
                verdict = yield from self._release(piece)
            elif isinstance(event, Finish):
                verdict = yield from self._release(held)
                held = ""
            else:
                yield event
                continue
            if verdict is not None and verdict.blocked:
                return
            intervened = intervened or verdict is not None
            if isinstance(event, Finish):
                yield Finish(g.FINISH_REASON, guardrail=True) if intervened else event
        yield from self._release(held)  # an upstream that ended without a finish reason

    def _release(self, text: str) -> Generator[StreamEvent, None, Verdict | None]:
        """Assess ``text``; send it (sync: masked, if the guardrail masked), or end the answer when it is blocked.
        Returns the verdict (the generator's value)."""
        if not text:
            return None
        verdict = self._model.assess(self._guardrail, OUTPUT, text)
        if verdict is not None and verdict.blocked:
            self._inner.close()
            yield TextDelta(verdict.text)
            yield Finish(g.FINISH_REASON, guardrail=True)
        elif self._sync:
            yield TextDelta(verdict.text if verdict is not None else text)
        return verdict

    def close(self) -> None:
        self._inner.close()


def _cut(text: str) -> tuple[str, str]:
    """``text`` split after its last whitespace (all of it when it has none)."""
    cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))
    return (text[: cut + 1], text[cut + 1 :]) if cut > 0 else (text, "")
