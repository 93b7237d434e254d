"""The handlers' JSON-schema validator (lambda_src/shared/validation.py) agrees with jsonschema's Draft4Validator
(what API Gateway models follow) on every request schema of the contract, for generated documents."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from lambda_src.contracts.schemas import CHAT_COMPLETION_REQUEST, PROMPT_REQUEST, REQUEST_SCHEMAS, ROLES
from lambda_src.shared.errors import ApiError
from lambda_src.shared.proxy import json_body
from lambda_src.shared.validation import Schema, request_error

scalars = st.none() | st.booleans() | st.integers(-3, 70_000) | st.floats(-2, 2, allow_nan=False) | st.text(max_size=8)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)  # fmt: skip
parts = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", 1]), "text": scalars})
messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from([*ROLES, "tool", 3]),
                           "content": st.one_of(st.text(max_size=5), st.lists(parts, max_size=2), scalars)}),
    max_size=3,
)  # fmt: skip
chat = st.fixed_dictionaries(
    {},
    optional={"messages": messages | values, "model": scalars, "temperature": scalars, "top_p": scalars,
              "max_tokens": scalars, "max_completion_tokens": scalars, "stream": scalars, "user": scalars,
              "stop": st.one_of(scalars, st.lists(st.text(max_size=3), max_size=6))},
)  # fmt: skip
prompt = st.fixed_dictionaries({}, optional={"prompt": scalars | values})


def _agree(name: str, document: Any) -> None:
    ours = Schema(REQUEST_SCHEMAS[name]).first_violation(document)
    reference = Draft4Validator(REQUEST_SCHEMAS[name]).is_valid(document)
    assert (ours is None) == reference, (json.dumps(document), ours)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat)
def test_chat_schema_verdicts_match_draft4(document):
    _agree(CHAT_COMPLETION_REQUEST, document)


@settings(max_examples=100, deadline=None)
@given(prompt)
def test_prompt_schema_verdicts_match_draft4(document):
    _agree(PROMPT_REQUEST, document)


def test_every_contract_schema_is_a_valid_draft4_schema_the_validator_supports():
    for schema in REQUEST_SCHEMAS.values():
        Draft4Validator.check_schema(schema)
        Schema(schema)


def test_a_keyword_the_validator_does_not_know_is_refused():
    with pytest.raises(ValueError, match="not supported"):
        Schema({"type": "string", "pattern": "^a"})


@pytest.mark.parametrize(
    ("document", "path", "code"),
    [
        ({"messages": []}, "messages", "invalid_messages"),
        ({"messages": [{"role": "user", "content": "x"}], "top_p": 0}, "top_p", "value_out_of_range"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature", "value_out_of_range"),
        ({"messages": [{"role": "user", "content": "x"}], "user": 7}, "user", "invalid_request"),
    ],
)
def test_violations_name_the_field_and_map_to_the_apis_codes(document, path, code):
    violation = Schema(REQUEST_SCHEMAS[CHAT_COMPLETION_REQUEST]).first_violation(document)
    assert violation is not None and violation.path == path
    error = request_error(violation)
    assert (error.status, error.code) == (400, code) and f"'{path}'" in error.message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_numbers_must_be_finite(value):
    body = {"messages": [{"role": "user", "content": "x"}], "temperature": value}
    violation = Schema(REQUEST_SCHEMAS[CHAT_COMPLETION_REQUEST]).first_violation(body)
    assert violation is not None and violation.path == "temperature"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant):
    text = '{"messages": [{"role": "user", "content": "x"}], "top_p": ' + constant + "}"
    with pytest.raises(ApiError) as error:
        json_body({"body": text}, 4096)
    assert (error.value.status, error.value.code) == (400, "invalid_json")
