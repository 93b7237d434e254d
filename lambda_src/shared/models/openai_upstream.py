"""OpenAI-compatible upstream adapter: POST {base_url}/chat/completions with the key from Parameter Store,
buffered or streamed (the upstream's own server-sent events, read as they arrive)."""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lambda_src.contracts.parameters import upstream_url_allowed
from lambda_src.shared.errors import invalid_request, rate_limited, upstream_error, upstream_timeout
from lambda_src.shared.models import Completion, CompletionRequest, Message, ToolCall

if TYPE_CHECKING:
    from collections.abc import Iterator

    from lambda_src.shared.models.stream import StreamEvent

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# One server-sent event line; a longer one is not a chat completion chunk.
MAX_EVENT_LINE_BYTES = 256 * 1024


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urlopen would follow a 3xx to any URL, Authorization header included, past the rule the base URL passed:
    a redirect is answered as the upstream error it is (urllib raises HTTPError with the 3xx status)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirects)


class OpenAICompatibleModel:
    def __init__(self, base_url: str, api_key: Callable[[], str]) -> None:
        # Parameter Store can be changed without a synth: the same rule ModelConfig applies, before every use.
        if not upstream_url_allowed(base_url):
            raise upstream_error("The upstream base URL is not allowed.", retryable=False)
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key

    def _post(self, request: CompletionRequest, *, stream: bool) -> Any:
        messages = [{"role": "system", "content": text} for text in request.system]
        messages += [_message(m) for m in request.messages]
        payload: dict[str, Any] = {
            "model": request.model_id,
            "messages": messages,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "stream": stream,
        }
        if stream:
            payload["stream_options"] = {"include_usage": True}
        if request.stop:
            payload["stop"] = list(request.stop)
        if request.tools:
            payload["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
            if request.tool_choice in ("none", "required"):
                payload["tool_choice"] = request.tool_choice
            elif request.tool_choice is not None:
                payload["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
            if request.parallel_tool_calls is not None:
                payload["parallel_tool_calls"] = request.parallel_tool_calls
        http_request = urllib.request.Request(  # noqa: S310 - scheme and host checked in __init__
            self._url,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._api_key()}"},
        )
        try:
            return OPENER.open(http_request, timeout=request.timeout_seconds)
        except urllib.error.HTTPError as error:
            raise map_status(error) from None
        except TimeoutError:
            raise upstream_timeout() from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):  # e.g. BadStatusLine
            raise upstream_error("The model endpoint could not be reached or answered garbage.") from None

    def complete(self, request: CompletionRequest) -> Completion:
        try:
            with self._post(request, stream=False) as reply:
                body = json.loads(reply.read(MAX_RESPONSE_BYTES))
        except TimeoutError:
            raise upstream_timeout() from None
        except (OSError, ValueError, http.client.HTTPException):  # HTTPException: IncompleteRead, a body broken off
            raise upstream_error("The model endpoint could not be reached or answered garbage.") from None
        try:
            choice = body["choices"][0]
            usage = body.get("usage") or {}
            calls = tuple(
                ToolCall(str(c["id"]), str(c["function"]["name"]), str(c["function"].get("arguments") or "{}"))
                for c in choice["message"].get("tool_calls") or []
            )
            return Completion(
                text=str(choice["message"].get("content") or ""),
                finish_reason=str(choice.get("finish_reason") or "stop"),
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                tool_calls=calls,
            )
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise upstream_error("The model answered in an unexpected shape.") from None

    def stream(self, request: CompletionRequest) -> UpstreamStream:
        """The upstream's stream; an HTTP error status raises here, before any event."""
        return UpstreamStream(self._post(request, stream=True))


class UpstreamStream:
    """An OpenAI-compatible SSE stream as stream events, read line by line as it arrives (bounded); ``close()``
    closes the connection, so the upstream stops generating."""

    def __init__(self, reply: Any) -> None:
        self._reply = reply

    def __iter__(self) -> Iterator[StreamEvent]:
        received = 0
        try:
            while True:
                line = self._reply.readline(MAX_EVENT_LINE_BYTES + 1)
                received += len(line)
                if not line:
                    if _broken_off(self._reply):
                        raise upstream_error("The model's stream broke off.")
                    return  # the upstream ended without [DONE]: what came is the answer
                if len(line) > MAX_EVENT_LINE_BYTES or received > MAX_RESPONSE_BYTES:
                    raise upstream_error("The model's stream exceeded the size this API relays.")
                if not line.startswith(b"data:"):
                    continue  # blank lines, comments, other fields
                data = line[5:].strip()
                if data == b"[DONE]":
                    return
                yield from _events(json.loads(data))
        except TimeoutError:
            raise upstream_timeout() from None
        except (OSError, ValueError, http.client.HTTPException):  # HTTPException: IncompleteRead, a body broken off
            raise upstream_error("The model's stream broke off or was not valid JSON.") from None

    def close(self) -> None:
        self._reply.close()


def _broken_off(reply: Any) -> bool:
    """Whether an empty readline() was a body broken off rather than its end: http.client's readline swallows
    the IncompleteRead of a chunked body that stops between chunks (``chunk_left`` becomes None only after the
    last, empty chunk) and closes a short Content-Length body with ``length`` bytes still to come."""
    if getattr(reply, "chunked", False) is True:
        return getattr(reply, "chunk_left", None) is not None
    return bool(getattr(reply, "length", None))


def _message(message: Message) -> dict[str, Any]:
    """A turn in OpenAI's shape again: images as data: URLs, tool calls and tool results as OpenAI sends them."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    content: Any = message.content
    if message.images:
        content = [{"type": "text", "text": message.content}] if message.content else []
        content += [{"type": "image_url", "image_url": {
            "url": f"data:image/{image.format};base64,{base64.b64encode(image.data).decode()}"}}
            for image in message.images]  # fmt: skip
    turn: dict[str, Any] = {"role": message.role, "content": content}
    if message.tool_calls:
        turn["content"] = content or None
        turn["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                              for c in message.tool_calls]  # fmt: skip
    return turn


def _events(chunk: Any) -> Iterator[StreamEvent]:
    from lambda_src.shared.models.stream import Finish, TextDelta, ToolCallDelta, Usage  # noqa: PLC0415

    if not isinstance(chunk, dict):
        raise ValueError("not a chunk")
    if chunk.get("error") is not None:
        raise upstream_error()
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content"):
            yield TextDelta(str(delta["content"]))
        for call in delta.get("tool_calls") or []:
            function = call.get("function") or {}
            yield ToolCallDelta(int(call.get("index", 0)), str(call.get("id") or ""), str(function.get("name") or ""),
                                str(function.get("arguments") or ""))  # fmt: skip
        if choice.get("finish_reason"):
            yield Finish(str(choice["finish_reason"]))
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        yield Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))


def map_status(error: urllib.error.HTTPError) -> Exception:
    """An OpenAI-compatible endpoint's HTTP error as the API's own (also for the embeddings adapter)."""
    if error.code == 429:
        retry = error.headers.get("Retry-After", "") if error.headers else ""
        return rate_limited("The model is receiving too many requests; retry after a short wait.",
                            retry_after=int(retry) if retry.isdigit() else None)  # fmt: skip
    if error.code in (400, 422):
        return invalid_request("The model rejected the request as invalid.")
    if error.code in (408, 504):
        return upstream_timeout()
    # 401/403 mean our upstream key is wrong, 404 a model it does not serve: the caller cannot fix that, and
    # another model would only hide it. A 5xx is the upstream's own trouble: the next model may answer.
    return upstream_error(retryable=error.code >= 500)
