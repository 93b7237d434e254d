"""The streamed half of the inference pipeline: a chat completion answered as OpenAI's server-sent events.

Imported on the first `stream: true` (logic.Api._streams). Everything that can still fail with a status of its
own happens in ``open`` (the REQUEST audit record in required mode, the model-call hooks, opening the model
stream and reading its first event); after the first byte, failures are an error event and the stream ends.
The Dispatcher (lambda_src/shared/dispatch.py) wraps the body so the COMPLETE audit record and the handler's
bookkeeping follow its end, however it ends (the last byte, an error event, or the caller going away).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from lambda_src.inference.sse import CONTENT_TYPE, DONE, ChunkWriter, event, tool_call_delta
from lambda_src.shared.config_source import ModelSettings
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
    ToolCallDelta,
)
from lambda_src.shared.proxy import header, response_headers
from lambda_src.shared.runtime.response import StreamingResponse

if TYPE_CHECKING:
    from typing import Any

    from lambda_src.inference.logic import Api
    from lambda_src.shared.dispatch import Outcome

LOGGER = logging.getLogger(__name__)


class Streams:
    def __init__(self, api: Api) -> None:
        self.api = api

    def open(self, request: CompletionRequest, settings: ModelSettings, outcome: Outcome,
                     event: dict[str, Any], *, include_usage: bool) -> StreamingResponse:  # fmt: skip
        """Everything that can still fail with a status of its own happens here, before the first byte: the
        REQUEST audit record (required mode), the hooks, opening the model stream and its first event."""
        outcome.model_id = settings.model_id
        outcome.provider = settings.provider
        stream, first, events = self.api.open_model_stream(outcome, request, settings, self.api.model_for,
                                                           self.api.hooks)  # fmt: skip
        writer = ChunkWriter(f"chatcmpl-{outcome.request_id}", int(self.api.clock()), outcome.model_id or "",
                             include_usage=include_usage)  # fmt: skip
        headers = response_headers(CONTENT_TYPE, request_id=outcome.request_id, origin=header(event, "origin"),
                                   cors_origins=self.api.cors_origins)  # fmt: skip
        return StreamingResponse(
            200, headers, self._sse(request, stream, events=events, first=first, writer=writer, outcome=outcome)
        )

    def _sse(self, request: CompletionRequest, stream: ModelStream, *, events: Iterator[StreamEvent],
             first: list[StreamEvent], writer: ChunkWriter, outcome: Outcome) -> Iterator[bytes]:  # fmt: skip
        """The answer as server-sent events. Model errors after the first byte become an error event; a caller
        that goes away (GeneratorExit at a yield) closes the model stream. Bookkeeping runs in ``finally``."""
        deadline = time.monotonic() + self.api.answer_seconds()
        answer = _StreamedAnswer(writer)
        outcome.status = 200
        ended = False  # the last byte was handed over: closing the body now is no disconnect
        try:
            yield writer.chunk({"role": "assistant", "content": ""})
            for item in itertools.chain(first, events):
                if isinstance(item, Finish) and item.guardrail:
                    guardrail_intervened(outcome)
                data = answer.chunk(item)
                if data:
                    yield data
                if time.monotonic() > deadline:
                    raise upstream_timeout("The answer took longer than this API streams; ask for fewer tokens.")
            for data in answer.ending():
                ended = data is DONE
                yield data
        except GeneratorExit:
            outcome.disconnected = not ended
            raise
        except ApiError as error:
            outcome.status, outcome.error_type = error.status, error.code
            yield event(error.body())
        except Exception as error:  # a bug: the documented error event, never a stack trace
            LOGGER.error("unhandled error in a stream", extra={"error_type": type(error).__name__,
                         "frames": frames(error), "api_request_id": outcome.request_id})  # fmt: skip
            failure = server_error()
            outcome.status, outcome.error_type = failure.status, failure.code
            yield event(failure.body())
        finally:
            close_stream(stream)
            outcome.output_text = answer.output_text()
            outcome.usage = Completion(outcome.output_text, answer.finish or "stop", answer.prompt_tokens,
                                       answer.completion_tokens)  # fmt: skip
            self.api.hooks.after(request, outcome)


class _StreamedAnswer:
    """What a stream has said so far (for the audit record and the usage), and its chunks."""

    __slots__ = ("calls", "completion_tokens", "finish", "prompt_tokens", "text", "writer")

    def __init__(self, writer: ChunkWriter) -> None:
        self.writer = writer
        self.text: list[str] = []
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, argument pieces...]
        self.prompt_tokens = self.completion_tokens = 0
        self.finish: str | None = None

    def chunk(self, item: StreamEvent) -> bytes | None:
        if isinstance(item, TextDelta):
            if not item.text:
                return None
            self.text.append(item.text)
            return self.writer.chunk({"content": item.text})
        if isinstance(item, ToolCallDelta):
            self.calls.setdefault(item.index, [item.id, item.name]).append(item.arguments)
            return self.writer.chunk({"tool_calls": [tool_call_delta(item.index, item.id, item.name, item.arguments)]})
        if isinstance(item, Finish):
            self.finish = item.reason
            return self.writer.chunk({}, item.reason)
        self.prompt_tokens, self.completion_tokens = item.prompt_tokens, item.completion_tokens
        return None

    def ending(self) -> Iterator[bytes]:
        if self.finish is None:
            yield self.writer.chunk({}, "stop")
        if self.writer.include_usage:
            yield self.writer.usage(self.prompt_tokens, self.completion_tokens)
        yield DONE

    def output_text(self) -> str:
        calls = [{"id": c[0], "name": c[1], "arguments": "".join(c[2:])} for _i, c in sorted(self.calls.items())]
        return "".join(self.text) + (json.dumps(calls, ensure_ascii=False) if calls else "")
