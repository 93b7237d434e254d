"""The inference function's operations, dispatched on the route table: plain Python, no AWS calls of its own.

Which requests reach which operation, and which bodies are valid, comes from lambda_src/contracts
(ROUTES and the request schemas API Gateway validates with too); this module adds what a schema cannot
say (the configured model and token limit, a conversation that starts with the user). Every outcome is a
well-formed JSON response: client faults are 4xx in OpenAI's error shape, upstream faults 5xx; nothing
echoes a stack trace, a secret or anything but the caller's own request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lambda_src.shared.audit_writer import AuditWriter
from lambda_src.shared.config_source import ModelSettings, ModelTarget, SettingsSource
from lambda_src.shared.dispatch import Caller, Dispatcher, Outcome, guardrail_intervened, session_id
from lambda_src.shared.errors import ApiError, invalid_request, not_found
from lambda_src.shared.models import Completion, CompletionRequest, Message, ModelClient
from lambda_src.shared.spend import ModelCallHooks, SpendControl

if TYPE_CHECKING:
    from lambda_src.inference.streaming import Streams
    from lambda_src.shared.runtime.response import StreamingResponse

__all__ = ["Api", "Caller", "ModelCallHooks", "Outcome"]

LOGGER = logging.getLogger(__name__)

FUNCTION = "inference"
# Parameters of OpenAI's API this one refuses clearly rather than ignore (README lists them).
_UNSUPPORTED = ("functions", "function_call", "logprobs", "top_logprobs", "response_format", "audio", "modalities",
                "prediction", "logit_bias")  # fmt: skip


class Api(Dispatcher):
    def __init__(
        self,
        config: SettingsSource,
        model_for: Callable[[ModelTarget], ModelClient],
        *,
        max_body_bytes: int,
        cors_origins: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
        audit: AuditWriter | None = None,
        stream_seconds: int = 0,
        spend: ModelCallHooks | None = None,
        guardrail: bool = False,
    ) -> None:
        """``stream_seconds``: the time budget of a streamed answer (the function's timeout under a STREAM
        integration; under a buffered one the whole stream is sent as one response within API Gateway's 29 s).
        ``spend``: the callers' budgets, a SpendControl (None: unmetered, unit tests only; GET /usage then answers
        404). ``guardrail``: apply the stage's guardrail (its id and version are model settings)."""
        super().__init__(FUNCTION, {"list_models": self._models, "chat_completions": self._chat,
                                    "prompt": self._prompt, "usage": self._usage},
                         max_body_bytes=max_body_bytes, cors_origins=cors_origins, audit=audit,
                         stream_seconds=stream_seconds, guardrail=guardrail)  # fmt: skip
        self.hooks: ModelCallHooks = spend or ModelCallHooks()
        self._streamer: Streams | None = None
        self._config = config
        self.model_for = model_for
        self.clock = clock

    # --- operations (bodies already match the route's schema) ---------------------------------------

    def _models(self, _event: dict[str, Any], _body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        settings = self._config.settings()
        outcome.model_id = settings.model_id
        return {
            "object": "list",
            "data": [{"id": settings.model_id, "object": "model", "created": 0, "owned_by": settings.provider}],
        }

    def _chat(
        self, event: dict[str, Any], body: dict[str, Any], outcome: Outcome
    ) -> dict[str, Any] | StreamingResponse:
        for name in _UNSUPPORTED:
            if body.get(name) is not None:
                raise invalid_request(f"'{name}' is not supported by this API.", "unsupported_parameter")
        n = body.get("n", 1)
        if n is not None and (not _is_int(n) or n != 1):
            raise invalid_request("'n' must be 1: this API returns one choice.", "unsupported_parameter")
        settings = self._config.settings()
        self._check_model(body.get("model"), settings)
        # Parsed by a module of its own, loaded with the first chat request (cold start: /models never needs it).
        from lambda_src.inference.chat_request import assistant_message, parse_chat  # noqa: PLC0415

        chat = parse_chat(body)
        outcome.input_text = chat.audit_input
        outcome.session_id = session_id(event, outcome.caller, body.get("user"))
        request = CompletionRequest(
            model_id=settings.model_id,
            system=(settings.system_prompt, *chat.system),
            messages=chat.messages,
            temperature=float(_given(body, "temperature", settings.temperature)),
            top_p=float(_given(body, "top_p", settings.top_p)),
            max_tokens=_max_tokens(body, settings),
            stop=_stop(body.get("stop")),
            timeout_seconds=settings.request_timeout_seconds,
            tools=chat.tools,
            tool_choice=chat.tool_choice,
            parallel_tool_calls=body.get("parallel_tool_calls") if chat.tools else None,
            guardrail=self.guardrail_of(settings),
        )
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            return self._streams().open(request, settings, outcome, event, include_usage=include_usage)
        completion = self._complete(request, settings, outcome)
        return {
            "id": f"chatcmpl-{outcome.request_id}",
            "object": "chat.completion",
            "created": int(self.clock()),
            "model": outcome.model_id,
            "choices": [
                {
                    "index": 0,
                    "message": assistant_message(completion.text, completion.tool_calls),
                    "finish_reason": completion.finish_reason,
                }
            ],
            "usage": _usage(completion),
        }

    def _prompt(self, event: dict[str, Any], body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        prompt = body["prompt"]
        if not prompt.strip():
            raise invalid_request("'prompt' must not be blank.")
        outcome.input_text = prompt
        settings = self._config.settings()
        outcome.session_id = session_id(event, outcome.caller, None)
        request = CompletionRequest(
            model_id=settings.model_id,
            system=(settings.system_prompt,),
            messages=(Message("user", prompt),),
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_output_tokens,
            stop=(),
            timeout_seconds=settings.request_timeout_seconds,
            guardrail=self.guardrail_of(settings),
        )
        completion = self._complete(request, settings, outcome)
        return {"completion": completion.text, "model": outcome.model_id, "usage": _usage(completion)}

    def _usage(self, _event: dict[str, Any], _body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        """The calling key's own limits and use: the principal is the caller, so no key sees another's."""
        if not isinstance(self.hooks, SpendControl):
            raise not_found("This deployment has no budgets.", "unknown_route")
        return self.hooks.usage(outcome.caller)

    # --- helpers ----------------------------------------------------------------------------------

    def _complete(self, request: CompletionRequest, settings: ModelSettings, outcome: Outcome) -> Completion:
        outcome.model_id = settings.model_id
        outcome.provider = settings.provider
        self.hooks.before(request, settings, outcome)
        try:
            completion = self.model_list(settings, self.model_for, outcome).complete(request)
            if completion.guardrail:
                guardrail_intervened(outcome)
            outcome.usage = completion
            outcome.output_text = completion.text
            if completion.tool_calls:  # the audit log keeps the calls the model asked for, as the stream does
                outcome.output_text += json.dumps([call._asdict() for call in completion.tool_calls])
        except ApiError as error:
            outcome.error_type = error.code
            raise
        finally:
            self.hooks.after(request, outcome)
        return completion

    def _streams(self) -> Streams:
        """The streamed half of the pipeline, imported with the first `stream: true` (a buffered-only function
        never compiles it at its cold start)."""
        if self._streamer is None:
            from lambda_src.inference.streaming import Streams  # noqa: PLC0415

            self._streamer = Streams(self)
        return self._streamer

    def _check_model(self, requested: str | None, settings: ModelSettings) -> None:
        if requested is not None and requested != settings.model_id:
            raise not_found(f"The model {requested[:200]!r} is not served here; GET /models lists the models.",
                            "model_not_found")  # fmt: skip


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _given(body: dict[str, Any], name: str, default: Any) -> Any:
    """The body's value, or ``default`` when it is absent or null."""
    value = body.get(name)
    return default if value is None else value


def _max_tokens(body: dict[str, Any], settings: ModelSettings) -> int:
    value = _given(body, "max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return settings.max_output_tokens
    if value > settings.max_output_tokens:
        raise invalid_request(f"'max_tokens' must be a whole number from 1 to {settings.max_output_tokens}.",
                              "value_out_of_range")  # fmt: skip
    return int(value)


def _stop(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _usage(completion: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }
