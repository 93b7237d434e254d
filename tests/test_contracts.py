"""Facts shared by infrastructure, functions and tools have one home (lambda_src/contracts); where two readers
interpret one fact, these tests prove they agree."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constructs_lib.config.settings import ModelConfig, ModelPrice
from constructs_lib.foundation.settings import ConfigError
from lambda_src.contracts import api, gateway, keys, parameters
from lambda_src.contracts.environment import AuthorizerEnvironment, InferenceEnvironment
from lambda_src.contracts.schemas import CHAT_COMPLETION_REQUEST, REQUEST_SCHEMAS
from lambda_src.inference import logic
from lambda_src.shared import dispatch
from lambda_src.shared.config_source import ModelSettings
from lambda_src.shared.errors import ApiError, unauthorized
from lambda_src.shared.models import Completion, CompletionRequest, ModelStream
from lambda_src.shared.validation import Schema
from stacks.stages import DEV


def _parses(config: ModelConfig) -> bool:
    values = config.parameter_values()
    try:
        ModelSettings.parse({p.leaf: values[p.field] for p in parameters.MODEL_PARAMETERS})
    except ApiError:
        return False
    return True


numbers = st.floats(-1, 2, allow_nan=False) | st.integers(-2, 3) | st.sampled_from([0, 0.0, 1, 1.0, math.inf])


@settings(max_examples=150, deadline=None)
@given(temperature=numbers, top_p=numbers, tokens=st.integers(-1, 70_000), timeout=st.integers(-1, 40))
def test_what_synth_accepts_the_function_accepts_and_the_reverse(temperature, top_p, tokens, timeout):
    """ModelConfig (synth) and ModelSettings.parse (run time) read the same names and bounds."""
    config = object.__new__(ModelConfig)  # unvalidated, so both sides judge the same raw values
    for field in dataclasses.fields(ModelConfig):
        object.__setattr__(config, field.name, getattr(DEV.model, field.name))
    for name, value in (("temperature", temperature), ("top_p", top_p), ("max_output_tokens", tokens),
                        ("request_timeout_seconds", timeout)):  # fmt: skip
        object.__setattr__(config, name, value)
    problem = config.problem()
    assert (problem is None) == _parses(config), problem


def test_the_stage_values_are_the_parameters_the_function_reads():
    values = DEV.model.parameter_values()
    assert set(values) == {p.field for p in parameters.MODEL_PARAMETERS}
    settings_ = ModelSettings.parse({p.leaf: values[p.field] for p in parameters.MODEL_PARAMETERS})
    assert (settings_.model_id, settings_.temperature, settings_.top_p) == (
        DEV.model.model_id, DEV.model.temperature, DEV.model.top_p
    )  # fmt: skip


def test_top_p_zero_is_refused_by_the_stage_the_request_schema_and_the_function_alike():
    """The copies used to disagree: the API Gateway model allowed top_p 0, the handler did not."""
    with pytest.raises(ConfigError, match=r"model\.top_p"):
        dataclasses.replace(DEV, model=dataclasses.replace(DEV.model, top_p=0))
    body = {"messages": [{"role": "user", "content": "Hi"}], "top_p": 0}
    assert Schema(REQUEST_SCHEMAS[CHAT_COMPLETION_REQUEST]).first_violation(body) is not None
    assert REQUEST_SCHEMAS[CHAT_COMPLETION_REQUEST]["properties"]["top_p"]["exclusiveMinimum"] is True


def test_every_route_of_a_function_reaches_an_operation_of_it():
    served = logic.Api(_NoConfig(), lambda _settings: _NoModel(), max_body_bytes=1024)
    for route in api.routes_of(logic.FUNCTION):
        event = {"resource": route.path, "httpMethod": route.method, "body": "{}" if route.body else None}
        status = json.loads(served.handle(event).response["body"]).get("error", {}).get("code")
        assert status not in ("unknown_route", "method_not_allowed"), route


def test_a_route_without_an_operation_fails_at_init(monkeypatch):
    extra = api.Route("POST", "/translations", function=logic.FUNCTION, operation="translations")
    monkeypatch.setattr(dispatch, "routes_of", lambda function: (*api.routes_of(function), extra))
    with pytest.raises(ValueError, match="operation 'translations', which the inference function does not have"):
        logic.Api(_NoConfig(), lambda _settings: _NoModel(), max_body_bytes=1024)


def test_the_unknown_route_answer_lists_the_route_table():
    message = gateway.GATEWAY_ERRORS["MISSING_AUTHENTICATION_TOKEN"][3]
    assert message.startswith(
        "Unknown route: the API serves GET /models, POST /chat/completions, POST /model, GET /usage, "
        "POST /embeddings, POST /retrieve, GET /conversations, "
    )
    assert message.endswith(
        ", DELETE /conversations/{conversation_id} and POST /conversations/{conversation_id}/messages."
    )


def test_keys_made_by_the_admin_code_pass_the_header_rule_and_the_authorizer():
    header = re.compile(keys.AUTHORIZATION_HEADER_REGEX)
    for _ in range(100):
        key = keys.new_key()
        assert header.fullmatch(f"Bearer {key}") and keys.key_from_header(f"Bearer {key}") == key
        assert keys.KEY_ID.fullmatch(keys.new_key_id())
    assert keys.key_from_header(f"Bearer {keys.new_key()}\n") is None  # Python's $ would accept the newline


def test_usage_identifiers_are_api_gateway_key_values_that_never_pass_as_keys():
    header = re.compile(keys.AUTHORIZATION_HEADER_REGEX)
    made = {keys.new_usage_identifier() for _ in range(100)}
    assert len(made) == 100
    for value in made:
        assert keys.USAGE_IDENTIFIER.fullmatch(value) and 20 <= len(value) <= 128
        assert not header.fullmatch(f"Bearer {value}") and keys.key_from_header(f"Bearer {value}") is None


def test_the_key_items_attributes_are_the_records_fields():
    assert {keys.KEY_ID_ATTRIBUTE, keys.USAGE_ATTRIBUTE} <= set(keys.KeyRecord._fields)
    record = keys.KeyRecord("key_0123456789abcdef", "alice", "standard", keys.ACTIVE, keys.new_usage_identifier())
    item = keys.record_item("ab" * 32, record)
    assert item[keys.HASH_ATTRIBUTE] == {"S": "ab" * 32} and keys.record_from_item(item) == record
    # A key issued before usage identifiers is no record: the authorizer refuses it until it is migrated.
    assert keys.record_from_item({k: v for k, v in item.items() if k != keys.USAGE_ATTRIBUTE}) is None


def test_function_environments_round_trip_and_name_what_is_missing():
    inference = InferenceEnvironment("/p/model", "/p/secrets/k", 60, 1024, ("https://a.example",), "s", "required",
                                     "full", "dev")  # fmt: skip
    assert InferenceEnvironment.from_environment(inference.variables()) == inference
    assert inference.variables()["CORS_ALLOWED_ORIGINS"] == '["https://a.example"]'
    variables = inference.variables()
    del variables["AUDIT_MODE"]
    with pytest.raises(ValueError, match="AUDIT_MODE is missing"):
        InferenceEnvironment.from_environment(variables)
    with pytest.raises(ValueError, match="MAX_BODY_BYTES is malformed"):
        InferenceEnvironment.from_environment({**inference.variables(), "MAX_BODY_BYTES": "lots"})
    assert AuthorizerEnvironment.from_environment({"KEY_TABLE_NAME": "t"}).key_table_name == "t"


def test_an_environment_that_cannot_keep_the_audit_promise_fails_the_init():
    inference = InferenceEnvironment("/p/model", "/p/secrets/k", 60, 1024, (), "", "best_effort", "full", "dev")
    assert InferenceEnvironment.from_environment(inference.variables()) == inference  # no stream: local tests only
    with pytest.raises(ValueError, match="AUDIT_MODE is required but AUDIT_STREAM_NAME is empty"):
        InferenceEnvironment.from_environment(inference._replace(audit_mode="required").variables())
    with pytest.raises(ValueError, match="AUDIT_MODE must be one of"):
        InferenceEnvironment.from_environment(inference._replace(audit_mode="sometimes").variables())


def test_the_function_refuses_a_request_without_a_key_as_the_gateway_does():
    status, error_type, code, message = gateway.GATEWAY_ERRORS["UNAUTHORIZED"]
    assert (unauthorized().status, unauthorized().body()) == (int(status), api.error_body(message, error_type, code))


class _NoConfig:
    def settings(self) -> ModelSettings:
        raise ApiError(500, "no configuration in this test", "server_error", "internal_error")


class _NoModel:
    def complete(self, request: CompletionRequest) -> Completion:
        raise AssertionError("not called")

    def stream(self, request: CompletionRequest) -> ModelStream:
        raise AssertionError("these tests do not stream")


@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda scheme, host, tail: f"{scheme}://{host}{tail}",
            st.sampled_from(["http", "https", "ftp", "HTTP"]),
            st.one_of(
                st.sampled_from(
                    [
                        "127.0.0.1",
                        "localhost",
                        "api.openai.com",
                        "localhost.evil.example",
                        "u:p@api.openai.com",
                        "localhost@evil",
                        "[::1]",
                        "",
                    ]
                ),
                st.from_regex(r"[a-z0-9.@:-]{1,20}", fullmatch=True),
            ),
            st.sampled_from(["", "/v1", ":8080/v1", ":0", ":99999", "/v1?x=1", "/v1#f", " /v1"]),
        ),
    )
)
@settings(max_examples=300, deadline=None)
def test_the_upstream_url_rule_is_the_same_at_synth_and_before_every_call(url):
    from lambda_src.shared.models.openai_upstream import OpenAICompatibleModel  # noqa: PLC0415

    price = ModelPrice("m", 0, 0, "https://example.com/prices", "2026-12-07")
    problem = ModelConfig(provider="openai-compatible", model_id="m", upstream_base_url=url, prices=(price,)).problem()
    synth_accepts = problem is None
    try:
        OpenAICompatibleModel(url, lambda: "k")
        runtime_accepts = True
    except ApiError:
        runtime_accepts = False
    assert synth_accepts == runtime_accepts
    assert runtime_accepts == parameters.upstream_url_allowed(url)
