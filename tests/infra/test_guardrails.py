"""The stage's Bedrock Guardrail: its policies from stage config, a numbered version wired through the model
settings, the route families that apply it, and bedrock:ApplyGuardrail on exactly that guardrail."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import aws_cdk as cdk
import pytest

from constructs_lib.foundation.settings import ConfigError
from constructs_lib.guardrails.guardrail import digest
from constructs_lib.guardrails.settings import ContentFilter, DeniedTopic, GuardrailConfig, PiiEntity, RegexFilter
from lambda_src.contracts import guardrail as g
from stacks.config_stack import ConfigStack
from stacks.data_stack import DataStack
from stacks.stages import DEV, PROD
from tests.infra.conftest import CDK_JSON_CONTEXT, GUARDRAIL_VARIANT, Synth
from tests.infra.templates import by_type, rendered


def guardrail_of(synth: Synth) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    template = synth.raw("config")
    ((guardrail_id, guardrail),) = by_type(template, "AWS::Bedrock::Guardrail").items()
    ((version_id, version),) = by_type(template, "AWS::Bedrock::GuardrailVersion").items()
    return guardrail_id, guardrail, version_id, version


@pytest.mark.parametrize(("variant", "stage", "config"), [
    ("dev", "dev", DEV.guardrails), ("prod", "prod", PROD.guardrails),
    ("dev_upload", "dev", GUARDRAIL_VARIANT)])  # fmt: skip
def test_the_guardrail_is_the_stage_config(variant, stage, config, variants):
    _, guardrail, _, _ = guardrail_of(variants[variant])
    found = guardrail["Properties"]
    assert found["BlockedInputMessaging"] == config.blocked_input_message
    assert found["BlockedOutputsMessaging"] == config.blocked_output_message
    assert found["ContentPolicyConfig"]["FiltersConfig"] == [
        {"Type": f.type, "InputStrength": f.input_strength, "OutputStrength": f.output_strength}
        for f in config.content_filters]  # fmt: skip
    sensitive = found["SensitiveInformationPolicyConfig"]
    assert sensitive["PiiEntitiesConfig"] == [{"Type": e.type, "Action": e.action} for e in config.pii_entities]
    assert sensitive.get("RegexesConfig", []) == [
        {"Name": r.name, "Pattern": r.pattern, "Action": r.action, "Description": r.description}
        for r in config.regexes]  # fmt: skip
    assert found.get("TopicPolicyConfig", {}).get("TopicsConfig", []) == [
        {"Name": t.name, "Definition": t.definition, "Type": "DENY", "Examples": list(t.examples)}
        for t in config.denied_topics]  # fmt: skip
    words = found.get("WordPolicyConfig", {})
    assert words.get("WordsConfig", []) == [{"Text": w} for w in config.words]
    assert words.get("ManagedWordListsConfig", []) == ([{"Type": "PROFANITY"}] if config.profanity else [])
    assert found["Name"] == f"llm-platform-{stage}"


def test_the_api_applies_a_numbered_version_read_from_the_model_settings(dev):
    guardrail_id, _, version_id, version = guardrail_of(dev)
    assert version["Properties"]["GuardrailIdentifier"] == {"Fn::GetAtt": [guardrail_id, "GuardrailId"]}
    # A configuration change publishes a new version (a changed description replaces it); the one it replaces is
    # kept for functions still holding its number in their settings cache.
    assert version["Properties"]["Description"].endswith(digest(DEV.guardrails))
    assert (version["UpdateReplacePolicy"], version["DeletionPolicy"]) == ("Retain", "Delete")
    values = {p["Properties"]["Name"]: p["Properties"]["Value"]
              for p in by_type(dev.raw("config"), "AWS::SSM::Parameter").values()}  # fmt: skip
    root = "/llm-platform/dev/model/"
    assert values[root + g.VERSION_LEAF] == {"Fn::GetAtt": [version_id, "Version"]}
    assert values[root + g.ID_LEAF] == {"Fn::GetAtt": [guardrail_id, "GuardrailId"]}
    assert values[root + g.STREAM_PROCESSING_LEAF] == "sync"


def test_a_new_policy_is_a_new_version_and_a_route_switch_is_not():
    words = dataclasses.replace(DEV.guardrails, words=("bluebird",))
    switch = dataclasses.replace(DEV.guardrails, chat_routes=False, stream_processing="sync")
    assert digest(words) != digest(DEV.guardrails) == digest(switch)


def _apply_statements(synth: Synth, function: str) -> list[dict[str, Any]]:
    statements = synth.properties("api", f"{function}/Policy")["PolicyDocument"]["Statement"]
    return [s for s in statements if "bedrock:ApplyGuardrail" in json.dumps(s["Action"])]


@pytest.mark.parametrize(("variant", "applied"), [("dev", {"Inference": True, "Chat": True}),
                                                  ("dev_upload", {"Inference": True, "Chat": False})])  # fmt: skip
def test_each_route_family_that_applies_it_may_apply_exactly_that_guardrail(variant, applied, variants):
    synth = variants[variant]
    for function, on in applied.items():
        statements = _apply_statements(synth, function)
        environment = synth.properties("api", f"{function}/Function")["Environment"]["Variables"]
        assert environment["APPLY_GUARDRAIL"] == str(int(on))
        if not on:
            assert statements == []
            continue
        (statement,) = statements
        assert statement["Action"] == "bedrock:ApplyGuardrail"
        assert re.fullmatch(r"<import:llm-platform-dev-config:ExportsOutputFnGetAttGuardrail\w+GuardrailArn\w+>",
                            rendered(statement["Resource"]))  # fmt: skip
    assert _apply_statements(synth, "Retrieval") == [] and _apply_statements(synth, "Authorizer") == []


def test_a_stage_without_a_guardrail_writes_no_guardrail_and_no_leaves():
    app = cdk.App(context=CDK_JSON_CONTEXT)
    stage = dataclasses.replace(DEV, guardrails=GuardrailConfig(enabled=False))
    data = DataStack(app, "data", stage=stage)
    config = ConfigStack(app, "config", stage=stage, data=data)
    template = app.synth().get_stack_by_name(config.stack_name).template
    assert config.guardrail is None
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("AWS::Bedrock::")]
    names = [p["Properties"]["Name"] for p in by_type(template, "AWS::SSM::Parameter").values()]
    assert not [n for n in names if "guardrail" in n]


@pytest.mark.parametrize(("changes", "message"), [
    ({"content_filters": (ContentFilter("GORE"),)}, "guardrails.content_filters entry 'GORE': type must be one of"),
    ({"content_filters": (ContentFilter("HATE", "EXTREME"),)}, "guardrails.content_filters entry HATE: strengths"),
    ({"content_filters": (ContentFilter("PROMPT_ATTACK", "HIGH", "HIGH"),)},
     "guardrails.content_filters entry PROMPT_ATTACK: output_strength must be 'NONE'"),
    ({"pii_entities": (PiiEntity("SHOE_SIZE"),)}, "guardrails.pii_entities entry 'SHOE_SIZE': type must be one of"),
    ({"pii_entities": (PiiEntity("EMAIL", "HIDE"),)}, "guardrails.pii_entities entry EMAIL: action must be one of"),
    ({"pii_entities": (PiiEntity("EMAIL"), PiiEntity("EMAIL", "BLOCK"))}, "guardrails.pii_entities must not name"),
    ({"regexes": (RegexFilter("id", "EMP-(\\d"),)}, "guardrails.regexes entry id: pattern is not a valid regular"),
    ({"regexes": (RegexFilter("bad name", "x"),)}, "guardrails.regexes entry 'bad name': name must be"),
    ({"denied_topics": (DeniedTopic("Stocks", ""),)}, "guardrails.denied_topics entry Stocks: definition must be"),
    ({"words": ("",)}, "guardrails.words must be a tuple of at most 10,000 words"),
    ({"blocked_input_message": ""}, "guardrails.blocked_input_message must be non-empty text"),
    ({"stream_processing": "later"}, "guardrails.stream_processing must be one of sync, async"),
    ({"stream_processing": "async"}, "guardrails.stream_processing must be 'sync' while a PII type or regex masks"),
    ({"content_filters": (), "pii_entities": (), "profanity": False},
     "guardrails.enabled needs at least one content filter, PII type, regex, denied topic or word"),
])  # fmt: skip
def test_a_bad_guardrail_config_fails_with_a_sentence_naming_the_field(changes, message):
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(DEV, guardrails=dataclasses.replace(DEV.guardrails, **changes))
    assert str(error.value).startswith("Stage 'dev': ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_async_scanning_is_allowed_when_nothing_masks():
    config = GuardrailConfig(pii_entities=(PiiEntity("AWS_SECRET_KEY", "BLOCK"),), stream_processing="async")
    assert dataclasses.replace(DEV, guardrails=config).guardrails.families() == (g.FAMILY_INFERENCE, g.FAMILY_CHAT)
    assert GuardrailConfig(enabled=False).families() == ()
