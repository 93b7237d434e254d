"""Amazon Bedrock adapter: the Converse API, with Bedrock's errors mapped to the API's statuses."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from lambda_src.shared.errors import ApiError, invalid_request, rate_limited, upstream_error, upstream_timeout
from lambda_src.shared.models import Completion, CompletionRequest

LOGGER = logging.getLogger(__name__)
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "content_filtered": "content_filter",
           "guardrail_intervened": "content_filter", "tool_use": "tool_calls"}  # fmt: skip


class BedrockModel:
    """``clients(timeout)`` returns a bedrock-runtime client whose read timeout is ``timeout`` seconds."""

    def __init__(self, clients: Any) -> None:
        self._clients = clients

    def complete(self, request: CompletionRequest) -> Completion:
        inference: dict[str, Any] = {
            "temperature": request.temperature,
            "topP": request.top_p,
            "maxTokens": request.max_tokens,
        }
        if request.stop:
            inference["stopSequences"] = list(request.stop)
        kwargs: dict[str, Any] = {
            "modelId": request.model_id,
            "messages": [{"role": m.role, "content": [{"text": m.content}]} for m in request.messages],
            "inferenceConfig": inference,
        }
        if request.system:
            kwargs["system"] = [{"text": text} for text in request.system]
        try:
            response = self._clients(request.timeout_seconds).converse(**kwargs)
        except ClientError as error:
            raise _map_client_error(error) from None
        except (ReadTimeoutError, ConnectTimeoutError):
            raise upstream_timeout() from None
        except (EndpointConnectionError, BotoCoreError):
            raise upstream_error("The model endpoint could not be reached; try again later.") from None
        content = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block.get("text", "") for block in content if isinstance(block, dict))
        usage = response.get("usage", {})
        return Completion(
            text=text,
            finish_reason=_FINISH.get(str(response.get("stopReason")), "stop"),
            prompt_tokens=int(usage.get("inputTokens", 0)),
            completion_tokens=int(usage.get("outputTokens", 0)),
        )


def _map_client_error(error: ClientError) -> ApiError:
    code = str(error.response.get("Error", {}).get("Code", ""))
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
        "ModelNotReadyException",
        "ServiceUnavailableException",
        "ModelErrorException",
        "InternalServerException",
    ):
        return upstream_error()
    if code in ("AccessDeniedException", "ResourceNotFoundException"):
        return upstream_error("The configured model is not available to this deployment.")
    return upstream_error()
