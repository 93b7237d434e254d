"""The stage's guardrail end to end on this machine: the local model has no guardrail of Bedrock's, so the inference
function applies the deployed guardrail's numbered version with ApplyGuardrail, answered by the emulator's stand-in
(tools/local/emulator/bedrock.py: the guardrail's words, regexes and simple PII types). A request with the local
stage's blocked phrase gets finish_reason content_filter and the guardrail's message through the openai SDK, buffered
and streamed, and the audit log records the intervention."""

from __future__ import annotations

from typing import Any

import openai

from stacks.stages import LOCAL_BLOCKED_PHRASE, STAGES
from tools.local.launcher import MODEL_ALIAS, LocalPlatform, create_key

BLOCKED: list[Any] = [{"role": "user", "content": f"What is the launch date of {LOCAL_BLOCKED_PHRASE.title()}?"}]


def sdk(platform: LocalPlatform) -> openai.OpenAI:
    _key_id, key = create_key(platform.client, STAGES["dev"].api.usage_plans[0].name)
    return openai.OpenAI(base_url=platform.base_url, api_key=key, max_retries=0, timeout=60)


def test_a_blocked_request_gets_content_filter_and_the_guardrails_message(platform):
    client = sdk(platform)
    message = STAGES["dev"].guardrails.blocked_input_message
    answer = client.chat.completions.create(model=MODEL_ALIAS, messages=BLOCKED, max_tokens=32, temperature=0)
    assert answer.choices[0].finish_reason == "content_filter" and answer.choices[0].message.content == message
    chunks = list(client.chat.completions.create(model=MODEL_ALIAS, messages=BLOCKED, max_tokens=32, temperature=0,
                                                 stream=True))  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == message
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"


def test_a_clean_request_is_answered_by_the_model(platform):
    answer = sdk(platform).chat.completions.create(
        model=MODEL_ALIAS, messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=16,
        temperature=0)  # fmt: skip
    assert answer.choices[0].finish_reason in ("stop", "length") and answer.choices[0].message.content
