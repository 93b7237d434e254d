"""A grounded answer, streamed as server-sent events, and stored when it ends however it ends.

    event: start   data: {"conversation_id", "message_id", "citations": [{number, document_id, title, uri, source}]}
    event: delta   data: {"text"}                          (as many as the model sends)
    event: end     data: {"finish_reason", "usage": {prompt_tokens, completion_tokens}, "partial": false}
    event: error   data: {"error": {message, type, code, param}}   (instead of end, after the first byte)

Everything that can still fail with a status of its own happens in ``open``: the REQUEST audit record in
required mode, opening the model stream and reading its first event. After the first byte a failure is an
``error`` event. The question and the answer (marked partial when the stream did not reach ``end``: an error,
the time budget, or the caller going away) are written to the history in the body's ``finally``; the
Dispatcher then writes the COMPLETE audit record.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from lambda_src.chat.grounding import Source
from lambda_src.chat.history import Conversation, Message
from lambda_src.contracts import chat as c
from lambda_src.shared.dispatch import close_stream, guardrail_intervened
from lambda_src.shared.errors import ApiError, server_error, upstream_timeout
from lambda_src.shared.logs import frames
from lambda_src.shared.models import (
    Completion,
    CompletionRequest,
    Finish,
    ModelStream,
    StreamEvent,
    TextDelta,
    Usage,
)
from lambda_src.shared.proxy import header, response_headers
from lambda_src.shared.runtime.response import StreamingResponse

if TYPE_CHECKING:
    from lambda_src.chat.logic import ChatApi
    from lambda_src.shared.config_source import ModelSettings
    from lambda_src.shared.dispatch import Outcome

LOGGER = logging.getLogger(__name__)
CONTENT_TYPE = "text/event-stream; charset=utf-8"


class Question(NamedTuple):
    """What an answer is for: the conversation, the question's reserved place (the answer's is the next) and
    text, and the sources the model was given."""

    conversation: Conversation
    sequence: int
    text: str
    sources: list[Source]


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


class Answering:
    def __init__(self, api: ChatApi, event: dict[str, Any], outcome: Outcome) -> None:
        self.api = api
        self.event = event
        self.outcome = outcome

    def open(self, request: CompletionRequest, settings: ModelSettings, question: Question) -> StreamingResponse:
        """The REQUEST audit record (required mode), the user's budget reservation, the model list's first answer."""
        api, outcome = self.api, self.outcome
        stream, first, events = api.open_model_stream(outcome, request, settings, api.model_for, api.hooks)
        self.request = request
        headers = response_headers(CONTENT_TYPE, request_id=outcome.request_id, origin=header(self.event, "origin"),
                                   cors_origins=api.cors_origins)  # fmt: skip
        return StreamingResponse(200, headers, self._body(stream, first, events, question))

    def _body(self, stream: ModelStream, first: list[StreamEvent], events: Iterator[StreamEvent],
              question: Question) -> Iterator[bytes]:  # fmt: skip
        outcome = self.outcome
        conversation, sequence = question.conversation, question.sequence
        outcome.status = 200
        deadline = time.monotonic() + self.api.answer_seconds()
        citations = [source.citation() for source in question.sources]
        pieces: list[str] = []
        finish, prompt_tokens, completion_tokens = "", 0, 0
        ended = False
        try:
            yield sse(c.EVENT_START, {"conversation_id": conversation.id, "message_id": f"m_{sequence + 1:05d}",
                                      "citations": citations})  # fmt: skip
            for item in itertools.chain(first, events):
                if isinstance(item, TextDelta) and item.text:
                    pieces.append(item.text)
                    yield sse(c.EVENT_DELTA, {"text": item.text})
                elif isinstance(item, Finish):
                    finish = item.reason
                    if item.guardrail:
                        guardrail_intervened(outcome)
                elif isinstance(item, Usage):
                    prompt_tokens, completion_tokens = item.prompt_tokens, item.completion_tokens
                if time.monotonic() > deadline:
                    raise upstream_timeout("The answer took longer than this API streams.")
            ended = True
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
            yield sse(c.EVENT_END, {"finish_reason": finish or "stop", "partial": False, "usage": usage})
        except GeneratorExit:
            outcome.disconnected = not ended
            raise
        except ApiError as error:
            outcome.status, outcome.error_type = error.status, error.code
            yield sse(c.EVENT_ERROR, error.body())
        except Exception as error:  # a bug: the documented error event, never a stack trace
            LOGGER.error("unhandled error in a stream", extra={"error_type": type(error).__name__,
                         "frames": frames(error), "api_request_id": outcome.request_id})  # fmt: skip
            failure = server_error()
            outcome.status, outcome.error_type = failure.status, failure.code
            yield sse(c.EVENT_ERROR, failure.body())
        finally:
            close_stream(stream)
            text = "".join(pieces)
            outcome.output_text = text
            outcome.usage = Completion(text, finish or "stop", prompt_tokens, completion_tokens)
            self.api.hooks.after(self.request, outcome)
            answer = Message(sequence + 1, c.ASSISTANT, text, "", citations,
                             {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
                             not ended, finish or ("stop" if ended else "incomplete"))  # fmt: skip
            try:
                self.api.history.record(outcome.caller.user_id, conversation, sequence, question.text, answer)
            except Exception as error:  # the answer has left; losing its record is logged and counted, not hidden
                LOGGER.error("the answer could not be stored", extra={"error_type": type(error).__name__,
                             "frames": frames(error), "api_request_id": outcome.request_id})  # fmt: skip
                outcome.error_type = outcome.error_type or "history_unavailable"
