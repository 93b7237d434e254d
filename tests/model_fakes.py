"""Stand-ins shared by the inference API's tests: a model stream of given events, a model that streams it, the API
Gateway event of a chat completion, and the openai SDK talking to an Api in-process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx2 as httpx
import openai

from lambda_src.shared.audit_writer import AuditEvent
from lambda_src.shared.errors import ApiError
from lambda_src.shared.models import Completion, CompletionRequest, Finish, StreamEvent, TextDelta, Usage

if TYPE_CHECKING:
    from lambda_src.inference.logic import Api, Outcome

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"

TEXT: list[StreamEvent | ApiError] = [
    TextDelta("The capital "),
    TextDelta("of France "),
    TextDelta("is Paris."),
    Finish("stop"),
    Usage(12, 7),
]


class Audit:
    """An audit writer (best effort) keeping the events it is given."""

    mode = "best_effort"

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def write(self, event: AuditEvent, *, attempts: int = 1) -> bool:
        self.events.append(event)
        return True


class FakeStream:
    """A model stream of given events; an ApiError item is raised when reached."""

    def __init__(self, items: list[StreamEvent | ApiError]) -> None:
        self.items = items
        self.closed = False
        self.served = 0

    def __iter__(self) -> Iterator[StreamEvent]:
        for item in self.items:
            if self.closed:
                return
            if isinstance(item, ApiError):
                raise item
            self.served += 1
            yield item

    def close(self) -> None:
        self.closed = True


class FakeModel:
    def __init__(self, items: list[StreamEvent | ApiError], *, refuse: ApiError | None = None) -> None:
        self.stream_ = FakeStream(items)
        self.refuse = refuse
        self.requests: list[CompletionRequest] = []

    def complete(self, request: CompletionRequest) -> Completion:
        raise AssertionError("a streamed request must not be answered buffered")

    def stream(self, request: CompletionRequest) -> FakeStream:
        self.requests.append(request)
        if self.refuse is not None:
            raise self.refuse
        return self.stream_


def chat_event(**extra: Any) -> dict[str, Any]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Capital of France?"}], "stream": True, **extra}
    context = {"requestId": "req-1", "authorizer": {"keyId": "key_0001", "owner": "alice"}}
    return {"resource": "/chat/completions", "path": "/chat/completions", "httpMethod": "POST", "headers": {},
            "body": json.dumps(body), "isBase64Encoded": False, "requestContext": context}  # fmt: skip


def sdk_client(service: Api, finished: list[Outcome],
               event_for: Callable[[], dict[str, Any]] | None = None) -> openai.OpenAI:  # fmt: skip
    """The openai SDK whose HTTP transport hands each request to the Api (as the event ``event_for`` makes, the
    caller's context included) and streams its body back."""

    def transport(request: httpx.Request) -> httpx.Response:
        event = (event_for or chat_event)()
        event["body"] = request.content.decode()
        outcome = service.handle(event, finished.append)
        if outcome.stream is not None:
            stream = outcome.stream
            return httpx.Response(stream.status_code, headers=stream.headers, stream=_Body(stream.body))
        response = outcome.response
        return httpx.Response(response["statusCode"], headers=response["headers"], content=response["body"])

    http = httpx.Client(transport=httpx.MockTransport(transport))
    return openai.OpenAI(base_url="http://api.local/v1", api_key="sk-test", max_retries=0, http_client=http)


class _Body(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close:
            close()
