"""The streaming adapters: Bedrock ConverseStream (real event-stream bytes through botocore's parser) and an
OpenAI-compatible upstream's SSE (a local HTTP server), as provider-neutral stream events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import urllib3
from botocore.stub import Stubber

from lambda_src.shared.errors import ApiError
from lambda_src.shared.models import CompletionRequest, Image, Message, Tool, ToolCall
from lambda_src.shared.models.bedrock import BedrockModel
from lambda_src.shared.models.openai_upstream import OpenAICompatibleModel
from lambda_src.shared.models.stream import Finish, TextDelta, ToolCallDelta, Usage
from tests.aws_fakes import stub_client
from tests.bedrock_events import answer_with, event, exception, text_answer

REQUEST = CompletionRequest(model_id="anthropic.claude-3-haiku-20240307-v1:0", system=("Be brief.",),
                            messages=(Message("user", "Capital of France?"),), temperature=0.2, top_p=0.9,
                            max_tokens=64, stop=(), timeout_seconds=10)  # fmt: skip


@pytest.fixture
def bedrock() -> Any:
    return stub_client("bedrock-runtime")


def test_text_stop_reason_and_usage(bedrock):
    answer_with(bedrock, text_answer(["The capital ", "is Paris."]))
    events = list(BedrockModel(lambda _t: bedrock).stream(REQUEST))
    assert events == [TextDelta("The capital "), TextDelta("is Paris."), Finish("stop"), Usage(12, 7)]


@pytest.mark.parametrize(("reason", "finish"), [("end_turn", "stop"), ("max_tokens", "length"),
                                                ("tool_use", "tool_calls"), ("guardrail_intervened", "content_filter"),
                                                ("content_filtered", "content_filter"),
                                                ("stop_sequence", "stop")])  # fmt: skip
def test_stop_reasons_map_as_buffered(bedrock, reason, finish):
    answer_with(bedrock, text_answer(["x"], stop=reason))
    assert Finish(finish, reason == "guardrail_intervened") in list(BedrockModel(lambda _t: bedrock).stream(REQUEST))


def test_tool_use_streams_its_start_then_argument_pieces(bedrock):
    answer_with(bedrock, [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me look."}}),
        event("contentBlockStart", {"contentBlockIndex": 1,
                                    "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city": '}}}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '"Paris"}'}}}),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "tool_use"}),
    ])  # fmt: skip
    events = list(BedrockModel(lambda _t: bedrock).stream(REQUEST))
    assert events == [TextDelta("Let me look."), ToolCallDelta(0, "tooluse_1", "get_weather", ""),
                      ToolCallDelta(0, "", "", '{"city": '), ToolCallDelta(0, "", "", '"Paris"}'),
                      Finish("tool_calls")]  # fmt: skip


def test_a_throttle_before_the_first_byte_raises_from_stream(bedrock):
    with Stubber(bedrock) as stubber:
        stubber.add_client_error("converse_stream", service_error_code="ThrottlingException", http_status_code=429)
        with pytest.raises(ApiError) as error:
            BedrockModel(lambda _t: bedrock).stream(REQUEST)
    assert (error.value.status, error.value.code, error.value.headers) == (429, "rate_limit_exceeded",
                                                                           {"Retry-After": "2"})  # fmt: skip


@pytest.mark.parametrize(("kind", "status"), [("modelStreamErrorException", 502), ("throttlingException", 429),
                                              ("internalServerException", 502), ("serviceUnavailableException", 502),
                                              ("validationException", 400)])  # fmt: skip
def test_an_exception_event_mid_stream_raises_while_iterating(bedrock, kind, status):
    answer_with(bedrock, [event("messageStart", {"role": "assistant"}),
                          event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Par"}}),
                          exception(kind, "the model broke off: secret detail")])  # fmt: skip
    received = []
    with pytest.raises(ApiError) as error:
        for item in BedrockModel(lambda _t: bedrock).stream(REQUEST):
            received.append(item)
    assert received == [TextDelta("Par")] and error.value.status == status
    assert "secret detail" not in error.value.message


@pytest.mark.parametrize(("failure", "status"), [
    (urllib3.exceptions.ReadTimeoutError(None, "https://bedrock-runtime", "Read timed out."), 504),  # type: ignore[arg-type]
    (urllib3.exceptions.ProtocolError("Connection broken", ConnectionResetError()), 502),
    (TimeoutError("timed out"), 504),
    (b"\x00\x00\x00\x20garbage that is no event-stream message", 502),  # botocore's ParserError (bad prelude)
])  # fmt: skip
def test_a_connection_failing_mid_stream_raises_an_api_error_while_iterating(bedrock, failure, status):
    # botocore wraps urllib3's errors only around sending: EventStream reads urllib3's response itself.
    answer_with(
        bedrock,
        [
            event("messageStart", {"role": "assistant"}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Par"}}),
            failure,
        ],
    )
    received = []
    with pytest.raises(ApiError) as error:
        for item in BedrockModel(lambda _t: bedrock).stream(REQUEST):
            received.append(item)
    assert received == [TextDelta("Par")] and error.value.status == status


def test_close_closes_the_http_body(bedrock):
    body = answer_with(bedrock, text_answer([str(i) for i in range(50)]))
    stream = BedrockModel(lambda _t: bedrock).stream(REQUEST)
    events = iter(stream)
    next(events)
    stream.close()
    assert body.closed


def test_converse_maps_tools_images_and_tool_results(bedrock):
    request = REQUEST._replace(
        messages=(Message("user", "What is in it, and the weather?", images=(Image("png", b"\x89PNG..."),)),
                  Message("assistant", "", tool_calls=(ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)),
                  Message("tool", "18 C, sunny", tool_call_id="call_1"), Message("user", "Thanks. Summarise.")),
        tools=(Tool("get_weather", "Weather of a city",
                    {"type": "object", "properties": {"city": {"type": "string"}}}),),
        tool_choice="required",
    )  # fmt: skip
    with Stubber(bedrock) as stubber:
        stubber.add_response("converse", {
            "output": {"message": {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "call_2", "name": "get_weather", "input": {"city": "Lyon"}}}]}},
            "stopReason": "tool_use", "usage": {"inputTokens": 30, "outputTokens": 9, "totalTokens": 39},
            "metrics": {"latencyMs": 5},
        }, {
            "modelId": REQUEST.model_id, "system": [{"text": "Be brief."}],
            "inferenceConfig": {"temperature": 0.2, "topP": 0.9, "maxTokens": 64},
            "messages": [
                {"role": "user", "content": [{"text": "What is in it, and the weather?"},
                                             {"image": {"format": "png", "source": {"bytes": b"\x89PNG..."}}}]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}}]},
                # The tool result and the question after it share one user turn (Bedrock alternates turns).
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"text": "18 C, sunny"}]}},
                    {"text": "Thanks. Summarise."}]},
            ],
            "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather of a city",
                                                   "inputSchema": {"json": {"type": "object", "properties": {
                                                       "city": {"type": "string"}}}}}}],
                           "toolChoice": {"any": {}}},
        })  # fmt: skip
        completion = BedrockModel(lambda _t: bedrock).complete(request)
    assert completion.finish_reason == "tool_calls"
    assert [tuple(c) for c in completion.tool_calls] == [("call_2", "get_weather", '{"city": "Lyon"}')]


# --- an OpenAI-compatible upstream --------------------------------------------------------------------


DROP = b"<drop>"
STALL = b"<stall>"
FIXED = b"<fixed>"


class Upstream:
    """A loopback OpenAI-compatible server answering each POST with the next scripted answer."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, list[bytes]]] = []
        self.requests: list[dict[str, Any]] = []
        self.finished = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                upstream.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                status, chunks = upstream.answers.pop(0)
                self.send_response(status)
                self.send_header("Content-Type", "text/event-stream" if status == 200 else "application/json")
                if chunks and chunks[0] is FIXED:  # one Content-Length body (10 bytes too long if it drops)
                    body = b"".join(c for c in chunks[1:] if c is not DROP)
                    self.send_header("Content-Length", str(len(body) + (10 if DROP in chunks else 0)))
                    self.end_headers()
                    self.wfile.write(body)
                    self.close_connection = True
                    upstream.finished.set()
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for chunk in chunks:
                        if chunk is DROP:  # the connection breaks off inside the chunked body
                            self.close_connection = True
                            break
                        if chunk is STALL:  # the upstream goes quiet for longer than the read timeout
                            time.sleep(1.5)
                            continue
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                        time.sleep(0.01)
                    else:
                        self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client closed the stream
                upstream.finished.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.server.shutdown()


def sse(data: dict[str, Any] | str) -> bytes:
    return b"data: " + (data if isinstance(data, str) else json.dumps(data)).encode() + b"\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return sse({"id": "c1", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}]})  # fmt: skip


def test_upstream_stream_text_tool_calls_and_usage(upstream):
    upstream.answers.append((200, [
        chunk({"role": "assistant", "content": ""}), chunk({"content": "Par"}), chunk({"content": "is."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                               "function": {"name": "f", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        sse({"id": "c1", "object": "chat.completion.chunk", "choices": [],
             "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}),
        sse("[DONE]"),
    ]))  # fmt: skip
    model = OpenAICompatibleModel(upstream.url, lambda: "sk-upstream")
    events = list(model.stream(REQUEST))
    assert events == [TextDelta("Par"), TextDelta("is."), ToolCallDelta(0, "call_1", "f", ""),
                      ToolCallDelta(0, "", "", "{}"), Finish("tool_calls"), Usage(5, 3)]  # fmt: skip
    sent = upstream.requests[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True} and sent["max_tokens"] == 64


def test_upstream_refusal_before_the_stream_and_an_error_object_in_it(upstream):
    upstream.answers.append((429, [b'{"error": {"message": "slow down"}}']))
    model = OpenAICompatibleModel(upstream.url, lambda: "sk-upstream")
    with pytest.raises(ApiError) as refused:
        model.stream(REQUEST)
    assert refused.value.status == 429
    upstream.answers.append((200, [chunk({"content": "a"}), sse({"error": {"message": "overloaded"}})]))
    received = []
    with pytest.raises(ApiError) as broke:
        for item in model.stream(REQUEST):
            received.append(item)
    assert received == [TextDelta("a")] and broke.value.status == 502


def test_upstream_close_stops_reading(upstream):
    upstream.answers.append((200, [chunk({"content": str(i)}) for i in range(200)]))
    stream = OpenAICompatibleModel(upstream.url, lambda: "sk-upstream").stream(REQUEST)
    events = iter(stream)
    assert next(events) == TextDelta("0")
    stream.close()
    assert upstream.finished.wait(10)  # the server's writes failed and it stopped


@pytest.mark.parametrize(("script", "status"), [
    ([chunk({"content": "a"}), DROP], 502),  # the connection broke off mid-body (http.client.IncompleteRead)
    ([chunk({"content": "a"}), STALL, chunk({"content": "b"})], 504),  # quiet past the read timeout
    ([chunk({"content": "a"}), b"data: " + b"x" * (300 * 1024) + b"\n\n"], 502),  # an event line beyond the bound
    ([chunk({"content": "a"}), b"data: {not json\n\n"], 502),
])  # fmt: skip
def test_upstream_failures_mid_stream_raise_api_errors_while_iterating(upstream, script, status):
    upstream.answers.append((200, script))
    received = []
    with pytest.raises(ApiError) as broke:
        for item in OpenAICompatibleModel(upstream.url, lambda: "sk").stream(REQUEST._replace(timeout_seconds=1)):
            received.append(item)
    assert received == [TextDelta("a")] and broke.value.status == status


@pytest.mark.parametrize("script", [[chunk({"content": "a"}), chunk({}, "stop")],  # chunked, ended without [DONE]
                                    [FIXED, chunk({"content": "a"}), chunk({}, "stop"), sse("[DONE]")]])  # fmt: skip
def test_upstream_stream_that_ends_cleanly_is_the_answer(upstream, script):
    upstream.answers.append((200, script))
    assert list(OpenAICompatibleModel(upstream.url, lambda: "sk").stream(REQUEST)) == [TextDelta("a"), Finish("stop")]


def test_upstream_stream_shorter_than_its_content_length_is_an_upstream_error(upstream):
    upstream.answers.append((200, [FIXED, chunk({"content": "a"}), DROP]))
    received = []
    with pytest.raises(ApiError) as broke:
        for item in OpenAICompatibleModel(upstream.url, lambda: "sk").stream(REQUEST):
            received.append(item)
    assert received == [TextDelta("a")] and broke.value.status == 502


def test_upstream_buffered_answer_broken_off_is_an_upstream_error(upstream):
    upstream.answers.append((200, [b'{"choices": [', DROP]))
    with pytest.raises(ApiError) as broke:
        OpenAICompatibleModel(upstream.url, lambda: "sk").complete(REQUEST)
    assert broke.value.status == 502


def test_upstream_gets_tools_images_and_tool_turns_in_openais_shape(upstream):
    request = REQUEST._replace(
        messages=(Message("user", "Weather here?", images=(Image("png", b"\x89PNG"),)),
                  Message("assistant", "", tool_calls=(ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)),
                  Message("tool", "18 C", tool_call_id="call_1")),
        tools=(Tool("get_weather", "Weather of a city", {"type": "object"}),),
        tool_choice="get_weather",
        parallel_tool_calls=False,
    )  # fmt: skip
    upstream.answers.append((200, [FIXED, json.dumps({"choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": None, "tool_calls": [{"id": "call_2", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4}}).encode()]))  # fmt: skip
    completion = OpenAICompatibleModel(upstream.url, lambda: "sk").complete(request)
    assert completion.tool_calls == (ToolCall("call_2", "get_weather", '{"city": "Lyon"}'),)
    assert (completion.text, completion.finish_reason) == ("", "tool_calls")
    sent = upstream.requests[0]
    assert sent["messages"][1:] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather here?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
    ]  # fmt: skip
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city", "parameters": {"type": "object"}}}]  # fmt: skip
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False


def test_upstream_gets_no_tool_fields_when_no_tools_are_offered(upstream):
    upstream.answers.append((200, [chunk({"content": "a"}), sse("[DONE]")]))
    list(OpenAICompatibleModel(upstream.url, lambda: "sk").stream(REQUEST))
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(upstream.requests[0])
