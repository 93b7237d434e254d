"""The stage's guardrail end to end on this machine: the local model has no guardrail of Bedrock's, so the inference
function applies the deployed guardrail's numbered version with ApplyGuardrail, answered by the emulator's stand-in
(tools/local/emulator/bedrock.py: the guardrail's words, regexes and simple PII types). A request with the local
stage's blocked phrase gets finish_reason content_filter and the guardrail's message through the openai SDK, buffered
and streamed; a version an operator publishes applies once the model settings name it, without a deploy."""

from __future__ import annotations

import time
from typing import Any

import openai

from lambda_src.contracts import guardrail as g
from lambda_src.contracts import parameters
from stacks.stages import LOCAL_BLOCKED_PHRASE, LOCAL_CONFIG_CACHE_SECONDS, STAGES
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


def test_a_version_published_by_an_operator_applies_without_a_deploy(platform):
    """What the README tells an operator: change the guardrail, publish a version, point the model settings at it.
    The functions read the new number with the model settings (the local cache lives 2 s): no redeploy."""
    bedrock, ssm = platform.client("bedrock"), platform.client("ssm")
    model = parameters.parameter_name("dev", parameters.MODEL_PATH)
    identifier = ssm.get_parameter(Name=f"{model}/{g.ID_LEAF}")["Parameter"]["Value"]
    deployed = ssm.get_parameter(Name=f"{model}/{g.VERSION_LEAF}")["Parameter"]["Value"]
    draft = bedrock.get_guardrail(guardrailIdentifier=identifier)
    words = [w["text"] for w in draft["wordPolicy"]["words"]]
    bedrock.update_guardrail(**update_of(draft, words=[*words, "zanzibar protocol"]))
    version = bedrock.create_guardrail_version(guardrailIdentifier=identifier)["version"]
    question: list[Any] = [{"role": "user", "content": "Explain the Zanzibar Protocol."}]
    client = sdk(platform)
    try:
        assert client.chat.completions.create(model=MODEL_ALIAS, messages=question, max_tokens=16,
                                              temperature=0).choices[0].finish_reason != "content_filter"  # fmt: skip
        ssm.put_parameter(Name=f"{model}/{g.VERSION_LEAF}", Value=version, Type="String", Overwrite=True)
        time.sleep(LOCAL_CONFIG_CACHE_SECONDS + 1)
        answer = client.chat.completions.create(model=MODEL_ALIAS, messages=question, max_tokens=16, temperature=0)
        assert answer.choices[0].finish_reason == "content_filter", answer
    finally:
        ssm.put_parameter(Name=f"{model}/{g.VERSION_LEAF}", Value=deployed, Type="String", Overwrite=True)
        bedrock.update_guardrail(**update_of(draft, words=words))


def update_of(draft: dict[str, Any], *, words: list[str]) -> dict[str, Any]:
    """UpdateGuardrail's arguments for the guardrail GetGuardrail described, with ``words`` as its custom words."""
    sensitive = draft.get("sensitiveInformationPolicy", {})
    return {
        "guardrailIdentifier": draft["guardrailId"], "name": draft["name"],
        "blockedInputMessaging": draft["blockedInputMessaging"],
        "blockedOutputsMessaging": draft["blockedOutputsMessaging"],
        "contentPolicyConfig": {"filtersConfig": [
            {k: f[k] for k in ("type", "inputStrength", "outputStrength")}
            for f in draft.get("contentPolicy", {}).get("filters", [])]},
        "sensitiveInformationPolicyConfig": {
            "piiEntitiesConfig": [{"type": e["type"], "action": e["action"]} for e in sensitive.get("piiEntities", [])],
            "regexesConfig": [{k: r[k] for k in ("name", "pattern", "action")} for r in sensitive.get("regexes", [])],
        },
        "wordPolicyConfig": {"wordsConfig": [{"text": w} for w in words],
                             "managedWordListsConfig": [{"type": m["type"]}
                                                        for m in draft["wordPolicy"].get("managedWordLists", [])]},
    }  # fmt: skip
