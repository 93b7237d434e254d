"""ConverseStream's events as provider-neutral stream events (lambda_src/shared/models/stream.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.eventstream import ParserError
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from lambda_src.shared.errors import upstream_error, upstream_timeout
from lambda_src.shared.models.bedrock import FINISH, GUARDRAIL_STOP, map_error
from lambda_src.shared.models.stream import Finish, StreamEvent, TextDelta, ToolCallDelta, Usage


class BedrockStream:
    """ConverseStream's events as the provider-neutral stream events; ``close()`` closes the HTTP connection,
    so Bedrock stops generating. Exception events and read timeouts raise ApiError while iterating."""

    def __init__(self, events: Any) -> None:
        self._events = events

    def __iter__(self) -> Iterator[StreamEvent]:
        tool_index: dict[int, int] = {}  # content block index -> tool call index
        try:
            for event in self._events:
                if "contentBlockDelta" in event:
                    block = event["contentBlockDelta"]
                    delta = block.get("delta", {})
                    if "text" in delta:
                        yield TextDelta(str(delta["text"]))
                    elif "toolUse" in delta and block.get("contentBlockIndex") in tool_index:
                        piece = str(delta["toolUse"].get("input", ""))
                        yield ToolCallDelta(tool_index[block["contentBlockIndex"]], "", "", piece)
                elif "contentBlockStart" in event:
                    start = event["contentBlockStart"]
                    tool = start.get("start", {}).get("toolUse")
                    if tool is not None:
                        index = tool_index[start.get("contentBlockIndex", -1)] = len(tool_index)
                        yield ToolCallDelta(index, str(tool.get("toolUseId", "")), str(tool.get("name", "")), "")
                elif "messageStop" in event:
                    stop = str(event["messageStop"].get("stopReason"))
                    yield Finish(FINISH.get(stop, "stop"), stop == GUARDRAIL_STOP)
                elif "metadata" in event:
                    usage = event["metadata"].get("usage", {})
                    yield Usage(int(usage.get("inputTokens", 0)), int(usage.get("outputTokens", 0)))
        except (ClientError, BotoCoreError) as error:  # EventStreamError is a ClientError
            raise map_error(error) from None
        # botocore wraps urllib3's errors around sending only: EventStream reads urllib3's response itself, so a
        # read timeout or a broken connection mid-answer arrives as urllib3's own error (or a socket error), and
        # bytes that are no event-stream message as the parser's.
        except (ReadTimeoutError, TimeoutError):
            raise upstream_timeout() from None
        except (Urllib3Error, OSError, ParserError):
            raise upstream_error("The model's stream broke off.") from None

    def close(self) -> None:
        self._events.close()
