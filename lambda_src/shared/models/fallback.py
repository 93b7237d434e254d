"""The stage's ordered list of models as one ModelClient: when a model is throttled, times out or fails with a
5xx (``ApiError.retryable``), the next is tried while the request's time budget allows; never after a 4xx, and a
stream only before its first byte (its first event is read here, so a stream that fails at once falls back too).

The outcome names the model that answered (the response's ``model`` and the audit record use it) and counts the
fallbacks (a metric). When every model fails, the caller gets the first model's error: the others' are logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from lambda_src.shared.errors import ApiError

if TYPE_CHECKING:
    from lambda_src.shared.config_source import ModelTarget
    from lambda_src.shared.dispatch import Outcome
    from lambda_src.shared.models import Completion, CompletionRequest, ModelClient, ModelStream, StreamEvent

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
# A next model is only tried with at least this long left of the request's time budget.
MIN_ATTEMPT_SECONDS = 3


class ModelChain:
    def __init__(self, targets: tuple[ModelTarget, ...], client_for: Callable[[ModelTarget], ModelClient],
                 outcome: Outcome, *, deadline: float,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        """``deadline``: when the request's time budget ends, on ``clock``'s scale."""
        self.targets = targets
        self.client_for = client_for
        self.outcome = outcome
        self.deadline = deadline
        self.clock = clock

    def complete(self, request: CompletionRequest) -> Completion:
        return self._first_answer(request, lambda client, attempt: client.complete(attempt))

    def stream(self, request: CompletionRequest) -> ModelStream:
        return self._first_answer(request, _opened)

    def _first_answer(self, request: CompletionRequest, call: Callable[[ModelClient, CompletionRequest], T]) -> T:
        first_error: ApiError | None = None
        for index, target in enumerate(self.targets):
            attempt = request._replace(model_id=target.model_id)
            if index:
                left = self.deadline - self.clock()
                if left < MIN_ATTEMPT_SECONDS:
                    LOGGER.warning("no time left for the next model", extra={"model_id": target.model_id})
                    break
                attempt = attempt._replace(timeout_seconds=max(1, min(request.timeout_seconds, int(left))))
                self.outcome.fallbacks += 1
            self.outcome.model_id, self.outcome.provider = target.model_id, target.provider
            try:
                return call(self.client_for(target), attempt)
            except ApiError as error:
                if not error.retryable:
                    raise
                LOGGER.warning("model failed, trying the next", extra={"model_id": target.model_id,
                               "error_code": error.code, "status": error.status})  # fmt: skip
                first_error = first_error or error
        first = self.targets[0]
        self.outcome.model_id, self.outcome.provider = first.model_id, first.provider
        assert first_error is not None  # noqa: S101 - every path that gets here failed with one
        raise first_error


def _opened(client: ModelClient, request: CompletionRequest) -> ModelStream:
    """The model's stream with its first event already read (a failure there is still before the first byte)."""
    stream = client.stream(request)
    try:
        events = iter(stream)
        first = next(events, None)
    except BaseException:
        stream.close()
        raise
    return _Replay(stream, [] if first is None else [first], events)


class _Replay:
    """A stream whose first event was read ahead: it comes first again."""

    def __init__(self, stream: ModelStream, first: list[StreamEvent], rest: Iterator[StreamEvent]) -> None:
        self._stream, self._first, self._rest = stream, first, rest

    def __iter__(self) -> Iterator[StreamEvent]:
        yield from self._first
        yield from self._rest

    def close(self) -> None:
        self._stream.close()
