"""A chat completion request in OpenAI's shape, turned into the provider-neutral conversation: system text,
turns (text, images, tool calls, tool results), the tools offered and the tool choice, and the conversation as
the audit log keeps it. Bodies reach this already checked against the route's JSON schema; this adds what a
schema cannot say, each refusal a 400 naming the field.

- Images: only ``data:`` URLs of PNG, JPEG, GIF or WebP, decoded and size-bounded here. An ``http(s)`` URL is
  refused: the function never fetches a URL a caller gives it.
- Tools: function tools; a tool message must answer a call an earlier assistant message made; a call's
  arguments must be a JSON object (Converse takes them as one).
- Consecutive messages of one role are merged (Bedrock needs alternating turns); tool results stay separate
  messages (the Bedrock adapter puts them in one user turn).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, NamedTuple

from lambda_src.shared.errors import ApiError, invalid_request
from lambda_src.shared.models import Image, Message, Tool, ToolCall

# Converse's limits: 20 images per request, 3.75 MB each.
MAX_IMAGES = 20
MAX_IMAGE_BYTES = 3_750_000
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_DATA_URL = re.compile(r"^data:image/(png|jpeg|jpg|gif|webp);base64,(.*)$", re.DOTALL)


class ChatRequest(NamedTuple):
    system: tuple[str, ...]
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...]
    tool_choice: str | None
    audit_input: str  # the conversation as JSON text, images as "[image/png, N bytes]"


def _invalid(message: str) -> ApiError:
    return invalid_request(message, "invalid_messages")


def parse_chat(body: dict[str, Any]) -> ChatRequest:
    tools = _tools(body.get("tools"))
    tool_choice = _tool_choice(body.get("tool_choice"), tools)
    conversation = _Conversation()
    for index, item in enumerate(body["messages"]):
        conversation.add(f"messages[{index}]", item)
    turns = conversation.turns
    conversation.check_answered("messages")
    if not turns or turns[0].role != "user":
        raise _invalid("The conversation must start with a user message.")
    return ChatRequest(tuple(conversation.system), tuple(turns), tools, tool_choice,
                       json.dumps(conversation.audit, ensure_ascii=False))  # fmt: skip


class _Conversation:
    def __init__(self) -> None:
        self.system: list[str] = []
        self.turns: list[Message] = []
        self.audit: list[dict[str, Any]] = []
        self.calls_made: set[str] = set()
        self.unanswered: dict[str, str] = {}  # call id -> the assistant message that made it
        self.images = 0

    def check_answered(self, where: str) -> None:
        """Every call an assistant message makes is answered by tool messages right after it (OpenAI's rule;
        Bedrock refuses a toolUse without its toolResult in the next turn)."""
        if self.unanswered:
            ids = ", ".join(sorted(self.unanswered))
            made = next(iter(self.unanswered.values()))
            raise _invalid(f"{where}: the tool calls of {made} ({ids}) need tool messages answering them first.")

    def add(self, where: str, item: dict[str, Any]) -> None:
        role = item["role"]
        text, pictures = _content(item.get("content"), where)
        self.images += len(pictures)
        if self.images > MAX_IMAGES:
            raise _invalid(f"{where}.content: a request may hold at most {MAX_IMAGES} images.")
        if pictures and role != "user":
            raise _invalid(f"{where}.content: only user messages may hold images.")
        entry: dict[str, Any] = {"role": role, "content": text}
        self.audit.append(entry)
        if pictures:
            entry["images"] = [f"[image/{p.format}, {len(p.data)} bytes]" for p in pictures]
        if role in ("system", "developer"):
            if not text.strip():
                raise _invalid(f"{where}.content must not be empty.")
            self.system.append(text)
            return
        if role == "tool":
            call_id = item.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in self.calls_made:
                raise _invalid(f"{where}.tool_call_id must name a tool call of an earlier assistant message.")
            if self.unanswered.pop(call_id, None) is None:
                raise _invalid(f"{where}.tool_call_id names a tool call another tool message answered already.")
            entry["tool_call_id"] = call_id
            self.turns.append(Message("tool", text, tool_call_id=call_id))
            return
        self.check_answered(where)
        calls = _tool_calls(item.get("tool_calls"), where) if role == "assistant" else ()
        for index, call in enumerate(calls):
            if call.id in self.calls_made:
                raise _invalid(f"{where}.tool_calls[{index}].id {call.id!r} names an earlier call again.")
            self.calls_made.add(call.id)
            self.unanswered[call.id] = where
        if calls:
            entry["tool_calls"] = [call._asdict() for call in calls]
        if not text.strip() and not pictures and not calls:
            raise _invalid(f"{where}.content must not be empty.")
        _append(self.turns, Message(role, text, images=pictures, tool_calls=calls))


def _append(turns: list[Message], message: Message) -> None:
    last = turns[-1] if turns else None
    if last is None or last.role != message.role:
        turns.append(message)
        return
    text = "\n\n".join(part for part in (last.content, message.content) if part)
    turns[-1] = Message(message.role, text, images=last.images + message.images,
                        tool_calls=last.tool_calls + message.tool_calls)  # fmt: skip


def _content(content: Any, where: str) -> tuple[str, tuple[Image, ...]]:
    if content is None:
        return "", ()
    if isinstance(content, str):
        return content, ()
    texts: list[str] = []
    images: list[Image] = []
    for index, part in enumerate(content):
        here = f"{where}.content[{index}]"
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise _invalid(f"{here}.text must be a string.")
            texts.append(part["text"])
        else:
            image_url = part.get("image_url")
            if not isinstance(image_url, dict) or not isinstance(image_url.get("url"), str):
                raise _invalid(f"{here}.image_url.url must be a string.")
            images.append(_image(image_url["url"], f"{here}.image_url.url"))
    return "".join(texts), tuple(images)


def _image(url: str, where: str) -> Image:
    if url.startswith(("http://", "https://")):
        raise invalid_request(f"{where}: remote image URLs are not supported; send the image as a data: URL "
                              "(base64). This API never fetches URLs.", "unsupported_image_url")  # fmt: skip
    found = _DATA_URL.match(url)
    if found is None:
        raise invalid_request(f"{where} must be a data: URL of a PNG, JPEG, GIF or WebP image, base64-encoded.",
                              "invalid_image_url")  # fmt: skip
    if len(found.group(2)) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise invalid_request(f"{where}: an image may be at most {MAX_IMAGE_BYTES} bytes.", "image_too_large")
    try:
        data = base64.b64decode(found.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_request(f"{where} is not valid base64.", "invalid_image_url") from None
    if not data or len(data) > MAX_IMAGE_BYTES:
        raise invalid_request(f"{where}: an image must hold 1 to {MAX_IMAGE_BYTES} bytes.", "image_too_large")
    kind = found.group(1)
    return Image("jpeg" if kind == "jpg" else kind, data)


def _tool_calls(raw: Any, where: str) -> tuple[ToolCall, ...]:
    calls = []
    for index, call in enumerate(raw or []):
        here = f"{where}.tool_calls[{index}]"
        function = call["function"]
        try:
            arguments = json.loads(function["arguments"] or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise _invalid(f"{here}.function.arguments must be a JSON object (as text).")
        if not _TOOL_NAME.match(function["name"]):
            raise _invalid(f"{here}.function.name must be 1-64 letters, digits, '_' or '-'.")
        calls.append(ToolCall(call["id"], function["name"], function["arguments"] or "{}"))
    return tuple(calls)


def _tools(raw: Any) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    for index, item in enumerate(raw or []):
        function = item["function"]
        name = function["name"]
        if not _TOOL_NAME.match(name):
            raise invalid_request(f"tools[{index}].function.name must be 1-64 letters, digits, '_' or '-'.")
        if any(tool.name == name for tool in tools):
            raise invalid_request(f"tools[{index}].function.name {name!r} is offered twice.")
        parameters = function.get("parameters")
        tools.append(Tool(name, function.get("description") or "",
                          parameters if parameters is not None else {"type": "object", "properties": {}}))  # fmt: skip
    return tuple(tools)


def _tool_choice(raw: Any, tools: tuple[Tool, ...]) -> str | None:
    if raw is None or raw == "auto":
        return None
    if not tools:
        raise invalid_request("'tool_choice' needs 'tools'.")
    if raw in ("none", "required"):
        return str(raw)
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        name = raw["function"].get("name")
        if any(tool.name == name for tool in tools):
            return str(name)
        raise invalid_request("'tool_choice' names a function that is not among 'tools'.")
    raise invalid_request("'tool_choice' must be 'none', 'auto', 'required' or {'type': 'function', "
                          "'function': {'name': ...}}.")  # fmt: skip


def assistant_message(text: str, calls: tuple[ToolCall, ...]) -> dict[str, Any]:
    """The buffered answer's ``message``: content null when the model only calls tools."""
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in calls
        ]
    return message
