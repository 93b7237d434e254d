"""Amazon Bedrock adapter: Converse and ConverseStream, with Bedrock's errors mapped to the API's statuses."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

from lambda_src.shared.errors import ApiError, invalid_request, rate_limited, upstream_error, upstream_timeout
from lambda_src.shared.models import Completion, CompletionRequest, Message, ToolCall

if TYPE_CHECKING:
    from lambda_src.shared.models.bedrock_stream import BedrockStream

LOGGER = logging.getLogger(__name__)
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "content_filtered": "content_filter",
           "guardrail_intervened": "content_filter", "tool_use": "tool_calls"}  # fmt: skip
# The stop reason of an answer the guardrail intervened in (its text is then the guardrail's message).
GUARDRAIL_STOP = "guardrail_intervened"


class BedrockModel:
    """``clients(timeout)`` returns a bedrock-runtime client whose read timeout is ``timeout`` seconds."""

    def __init__(self, clients: Any) -> None:
        self._clients = clients

    def complete(self, request: CompletionRequest) -> Completion:
        try:
            response = self._clients(request.timeout_seconds).converse(**_converse_arguments(request))
        except (ClientError, BotoCoreError) as error:
            raise map_error(error) from None
        content = response.get("output", {}).get("message", {}).get("content", [])
        blocks = [block for block in content if isinstance(block, dict)]
        text = "".join(block.get("text", "") for block in blocks)
        uses = [block["toolUse"] for block in blocks if "toolUse" in block]
        calls = tuple(ToolCall(str(use.get("toolUseId", "")), str(use.get("name", "")),
                               json.dumps(use.get("input", {}))) for use in uses)  # fmt: skip
        usage = response.get("usage", {})
        stop = str(response.get("stopReason"))
        return Completion(
            text=text,
            finish_reason=FINISH.get(stop, "stop"),
            prompt_tokens=int(usage.get("inputTokens", 0)),
            completion_tokens=int(usage.get("outputTokens", 0)),
            tool_calls=calls,
            guardrail=stop == GUARDRAIL_STOP,
        )

    def stream(self, request: CompletionRequest) -> BedrockStream:
        """ConverseStream: a refusal (throttling, validation...) raises here, before any event."""
        # Loaded with the first stream: a buffered-only function never compiles it at its cold start.
        from lambda_src.shared.models.bedrock_stream import BedrockStream  # noqa: PLC0415

        try:
            arguments = _converse_arguments(request)
            if request.guardrail is not None:
                arguments["guardrailConfig"]["streamProcessingMode"] = request.guardrail.stream_processing
            response = self._clients(request.timeout_seconds).converse_stream(**arguments)
        except (ClientError, BotoCoreError) as error:
            raise map_error(error) from None
        return BedrockStream(response["stream"])


def _converse_arguments(request: CompletionRequest) -> dict[str, Any]:
    inference: dict[str, Any] = {
        "temperature": request.temperature,
        "topP": request.top_p,
        "maxTokens": request.max_tokens,
    }
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        role = "assistant" if message.role == "assistant" else "user"  # tool results are the user's turn
        blocks = _blocks(message)
        if messages and messages[-1]["role"] == role:  # tool results, and a question after them, share one turn
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    kwargs: dict[str, Any] = {"modelId": request.model_id, "messages": messages, "inferenceConfig": inference}
    if request.system:
        kwargs["system"] = [{"text": text} for text in request.system]
    if request.guardrail is not None:
        kwargs["guardrailConfig"] = {"guardrailIdentifier": request.guardrail.identifier,
                                     "guardrailVersion": request.guardrail.version, "trace": "disabled"}  # fmt: skip
    tool_config = _tool_config(request, has_tool_blocks=any(m.role == "tool" or m.tool_calls for m in request.messages))
    if tool_config is not None:
        kwargs["toolConfig"] = tool_config
    return kwargs


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"toolResult": {"toolUseId": message.tool_call_id, "content": [{"text": message.content or " "}]}}]
    blocks: list[dict[str, Any]] = [{"text": message.content}] if message.content else []
    blocks += [{"image": {"format": image.format, "source": {"bytes": image.data}}} for image in message.images]
    blocks += [{"toolUse": {"toolUseId": call.id, "name": call.name, "input": json.loads(call.arguments)}}
               for call in message.tool_calls]  # fmt: skip
    return blocks


def _tool_config(request: CompletionRequest, *, has_tool_blocks: bool) -> dict[str, Any] | None:
    """Converse has no "none": without tool blocks in the conversation the tools are simply not offered; with
    them Bedrock requires the tool configuration, so they are offered and the model decides (README)."""
    if not request.tools or (request.tool_choice == "none" and not has_tool_blocks):
        return None
    specs = []
    for tool in request.tools:
        spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": tool.parameters}}
        if tool.description:
            spec["description"] = tool.description
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if request.tool_choice == "required":
        config["toolChoice"] = {"any": {}}
    elif request.tool_choice not in (None, "none"):
        config["toolChoice"] = {"tool": {"name": request.tool_choice}}
    return config


def map_error(error: ClientError | BotoCoreError) -> ApiError:
    if isinstance(error, ClientError):
        return _map_client_error(error)
    if isinstance(error, ReadTimeoutError | ConnectTimeoutError):
        return upstream_timeout()
    return upstream_error("The model endpoint could not be reached; try again later.")


def _map_client_error(error: ClientError) -> ApiError:
    code = str(error.response.get("Error", {}).get("Code", ""))
    code = code[:1].upper() + code[1:]  # exception events name themselves in lowerCamelCase
    if code in ("ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"):
        return rate_limited("The model is receiving too many requests; retry after a short wait.", retry_after=2)
    if code == "ValidationException":
        # Bedrock's text can name the model, the account's configuration or quote the input: it stays in the
        # function's log; the caller gets a fixed sentence.
        LOGGER.warning("Bedrock rejected the request", extra={"bedrock_error": code,
                       "bedrock_message": str(error.response.get("Error", {}).get("Message", ""))[:1000]})  # fmt: skip
        return invalid_request("The model rejected the request as invalid (for example too long for the model).")
    if code in ("ModelTimeoutException",):
        return upstream_timeout()
    if code in (
        "ModelStreamErrorException",
        "ModelNotReadyException",
        "ServiceUnavailableException",
        "ModelErrorException",
        "InternalServerException",
    ):
        return upstream_error()
    if code in ("AccessDeniedException", "ResourceNotFoundException"):
        return upstream_error("The configured model is not available to this deployment.", retryable=False)
    return upstream_error()
