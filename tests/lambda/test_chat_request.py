"""A chat completion body as the provider-neutral conversation: tools, tool calls and results, images, and each
refusal a 400 naming its field."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from lambda_src.contracts.schemas import CHAT_COMPLETION_REQUEST, REQUEST_SCHEMAS
from lambda_src.inference.chat_request import MAX_IMAGE_BYTES, assistant_message, parse_chat
from lambda_src.shared.errors import ApiError
from lambda_src.shared.models import Image, Message, Tool, ToolCall
from lambda_src.shared.validation import Schema

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n-pixels-").decode()
PARAMETERS: dict[str, Any] = {"type": "object", "properties": {"city": {"type": "string"}}}
FUNCTION: dict[str, Any] = {"name": "get_weather", "description": "Weather of a city", "parameters": PARAMETERS}
WEATHER: dict[str, Any] = {"type": "function", "function": FUNCTION}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


def body(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    document = {"messages": messages, **extra}
    assert Schema(REQUEST_SCHEMAS[CHAT_COMPLETION_REQUEST]).first_violation(document) is None  # the gateway's check
    return document


def refusal(document: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ApiError) as error:
        parse_chat(document)
    assert error.value.status == 400
    return error.value.code, error.value.message


def test_a_tool_round_trip_becomes_calls_and_results():
    chat = parse_chat(body([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
    ], tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}}))  # fmt: skip
    assert chat.system == ("Be brief.",)
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    assert chat.messages == (Message("user", "Weather in Paris?"), Message("assistant", "", tool_calls=(call,)),
                             Message("tool", "18 C", tool_call_id="call_1"))  # fmt: skip
    assert chat.tools == (Tool("get_weather", "Weather of a city", WEATHER["function"]["parameters"]),)
    assert chat.tool_choice == "get_weather"
    assert json.loads(chat.audit_input)[2]["tool_calls"][0]["name"] == "get_weather"


def test_images_are_decoded_and_kept_out_of_the_audit_text():
    chat = parse_chat(body([{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": f"data:image/jpg;base64,{PNG}"}},
    ]}]))  # fmt: skip
    (message,) = chat.messages
    assert message.images == (Image("png", base64.b64decode(PNG)), Image("jpeg", base64.b64decode(PNG)))
    assert PNG not in chat.audit_input and "[image/png, 16 bytes]" in chat.audit_input


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://example.com/cat.png", "unsupported_image_url"),
        ("http://169.254.169.254/latest/meta-data", "unsupported_image_url"),
        ("file:///etc/passwd", "invalid_image_url"),
        ("data:image/svg+xml;base64," + PNG, "invalid_image_url"),
        ("data:image/png;base64,not base64!", "invalid_image_url"),
        ("data:image/png;base64," + "A" * (MAX_IMAGE_BYTES * 4 // 3 + 8), "image_too_large"),
    ],
)
def test_image_urls_other_than_data_urls_are_refused(url, code):
    found, message = refusal(body([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]))
    assert found == code and message.startswith("messages[0].content[0].image_url.url")


@pytest.mark.parametrize(
    ("messages", "extra", "words"),
    [
        ([{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "r"}], {},
         "messages[1].tool_call_id"),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
            {**CALL, "function": {"name": "get_weather", "arguments": "[1, 2]"}}]}], {},
         "messages[1].tool_calls[0].function.arguments"),
        ([{"role": "user", "content": "x"}], {"tools": [{"type": "function", "function": {"name": "bad name"}}]},
         "tools[0].function.name"),
        ([{"role": "user", "content": "x"}], {"tools": [WEATHER, WEATHER]}, "offered twice"),
        ([{"role": "user", "content": "x"}], {"tool_choice": "required"}, "'tool_choice' needs 'tools'"),
        ([{"role": "user", "content": "x"}], {"tools": [WEATHER], "tool_choice": {"type": "function",
                                                                                    "function": {"name": "other"}}},
         "not among 'tools'"),
        ([{"role": "assistant", "content": "hi"}], {}, "must start with a user message"),
        ([{"role": "user", "content": "  "}], {}, "messages[0].content must not be empty"),
        ([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
          {"role": "user", "content": "x"}], {}, "only user messages may hold images"),
        ([{"role": "user", "content": [{"type": "text"}]}], {}, "messages[0].content[0].text"),
        # Each call is answered by a tool message before the conversation goes on, once, and ids are not reused.
        ([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [CALL]},
          {"role": "user", "content": "and?"}], {}, "messages[2]: the tool calls of messages[1] (call_1) need"),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [CALL, {**CALL, "id": "call_2"}]},
          {"role": "tool", "tool_call_id": "call_1", "content": "r"}], {},
         "messages: the tool calls of messages[1] (call_2) need"),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [CALL]},
          {"role": "tool", "tool_call_id": "call_1", "content": "r"},
          {"role": "tool", "tool_call_id": "call_1", "content": "r"}], {}, "messages[3].tool_call_id names a"),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [CALL]},
          {"role": "tool", "tool_call_id": "call_1", "content": "r"}, {"role": "assistant", "tool_calls": [CALL]}], {},
         "messages[3].tool_calls[0].id 'call_1' names an earlier call again"),
    ],
)  # fmt: skip
def test_what_a_schema_cannot_say_is_a_400_naming_the_field(messages, extra, words):
    _, message = refusal(body(messages, **extra))
    assert words in message


def test_consecutive_turns_of_one_role_merge():
    chat = parse_chat(body([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]))
    assert chat.messages == (Message("user", "a\n\nb"),)


def test_the_buffered_message_has_null_content_when_it_only_calls_tools():
    calls = (ToolCall("call_1", "get_weather", "{}"),)
    assert assistant_message("", calls) == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}  # fmt: skip
    assert assistant_message("Paris.", ()) == {"role": "assistant", "content": "Paris."}
