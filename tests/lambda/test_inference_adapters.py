"""Config from Parameter Store with a TTL cache, and the OpenAI-compatible upstream adapter over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from aws_lambda_powertools.utilities import parameters

from lambda_src.contracts.parameters import PLACEHOLDER_PREFIX
from lambda_src.secure_parameter import logic as provider_logic
from lambda_src.shared.config_source import ConfigSource
from lambda_src.shared.errors import ApiError
from lambda_src.shared.models import CompletionRequest, Message
from lambda_src.shared.models.openai_upstream import OpenAICompatibleModel
from tests.aws_fakes import MODEL_PATH, UPSTREAM_KEY, put_model_parameters
from tests.http_fakes import Upstream

REQUEST = CompletionRequest(model_id="SmolLM2", system=("Be brief.",), messages=(Message("user", "Hi"),),
                            temperature=0.0, top_p=1.0, max_tokens=16, stop=("\n",), timeout_seconds=1)  # fmt: skip


def test_config_is_read_from_parameter_store_and_cached_for_its_ttl(ssm):
    put_model_parameters(ssm)
    source = ConfigSource(MODEL_PATH, UPSTREAM_KEY, max_age=1, provider=parameters.SSMProvider())
    first = source.settings()
    assert first.model_id == "anthropic.claude-3-haiku-20240307-v1:0" and first.temperature == 0.2
    put_model_parameters(ssm, id="us.anthropic.claude-3-5-haiku-20241022-v1:0")
    assert source.settings().model_id == first.model_id  # still cached
    time.sleep(1.1)
    assert source.settings().model_id == "us.anthropic.claude-3-5-haiku-20241022-v1:0"  # no deploy needed


@pytest.mark.parametrize("change", [{"temperature": "2"}, {"max-output-tokens": "lots"}, {"provider": "azure"}])
def test_invalid_parameters_are_a_server_error(ssm, change):
    put_model_parameters(ssm, **change)
    source = ConfigSource(MODEL_PATH, UPSTREAM_KEY, max_age=0, provider=parameters.SSMProvider())
    with pytest.raises(ApiError) as error:
        source.settings()
    assert error.value.status == 500


def test_an_unset_upstream_key_is_reported_not_sent(ssm, key_arn):
    ssm.put_parameter(Name=UPSTREAM_KEY, Value=PLACEHOLDER_PREFIX + "0" * 32, Type="SecureString", KeyId=key_arn)
    source = ConfigSource(MODEL_PATH, UPSTREAM_KEY, max_age=0, provider=parameters.SSMProvider())
    with pytest.raises(ApiError) as error:
        source.upstream_api_key()
    assert "has not been set" in error.value.message and "0" * 32 not in str(error.value)
    ssm.put_parameter(Name=UPSTREAM_KEY, Value="sk-upstream", Type="SecureString", KeyId=key_arn, Overwrite=True)
    assert source.upstream_api_key() == "sk-upstream"


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_upstream_success_sends_the_key_and_maps_the_answer(upstream):
    upstream.body = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Hello"},
                                             "finish_reason": "length"}],
                                "usage": {"prompt_tokens": 5, "completion_tokens": 1}}).encode()  # fmt: skip
    completion = OpenAICompatibleModel(upstream.url, lambda: "sk-up").complete(REQUEST)
    assert (completion.text, completion.finish_reason, completion.prompt_tokens, completion.completion_tokens) == (
        "Hello", "length", 5, 1)  # fmt: skip
    (sent,) = upstream.requests
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer sk-up"
    assert sent["json"]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert sent["json"]["stream"] is False and sent["json"]["stop"] == ["\n"]


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected", "code"),
    [
        (429, {"Retry-After": "7"}, b"{}", 429, "rate_limit_exceeded"),
        (400, {}, b"{}", 400, "invalid_request"),
        (401, {}, b"{}", 502, "upstream_error"),
        (500, {}, b"{}", 502, "upstream_error"),
        (504, {}, b"{}", 504, "upstream_timeout"),
        (200, {}, b"not json", 502, "upstream_error"),
        (200, {}, b'{"choices": []}', 502, "upstream_error"),
    ],
)
def test_upstream_failures_map_to_api_statuses(upstream, status, headers, body, expected, code):
    upstream.status, upstream.headers, upstream.body = status, headers, body
    with pytest.raises(ApiError) as error:
        OpenAICompatibleModel(upstream.url, lambda: "sk-up").complete(REQUEST)
    assert (error.value.status, error.value.code) == (expected, code)
    if status == 429:
        assert error.value.headers == {"Retry-After": "7"}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_an_upstream_error_and_the_key_goes_nowhere_else(upstream, status):
    """The base URL passed the rule; where a redirect points did not (urllib followed it with the key before)."""
    elsewhere = Upstream()
    try:
        upstream.status, upstream.headers = status, {"Location": elsewhere.url + "/steal"}
        with pytest.raises(ApiError) as error:
            OpenAICompatibleModel(upstream.url, lambda: "sk-up").complete(REQUEST)
        assert (error.value.status, error.value.code) == (502, "upstream_error")
        assert len(upstream.requests) == 1 and elsewhere.requests == []
    finally:
        elsewhere.server.shutdown()
        elsewhere.server.server_close()


def test_upstream_timeout_is_a_504(upstream):
    upstream.delay = 1.5
    with pytest.raises(ApiError) as error:
        OpenAICompatibleModel(upstream.url, lambda: "sk-up").complete(REQUEST)
    assert error.value.status == 504


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/v1",
        # Each of these passed the old prefix check (startswith "http://localhost" / "http://127.0.0.1").
        "http://localhost.attacker.example/v1",
        "http://localhost@attacker.example/v1",
        "http://127.0.0.1.attacker.example/v1",
        "http://127.0.0.1:8080@attacker.example/v1",
        "https://user:secret@api.example.com/v1",
        "https://api.example.com/v1?redirect=http://x",
        "https://api.example.com:99999/v1",
    ],
)
def test_only_https_or_exactly_loopback_upstreams(url):
    with pytest.raises(ApiError) as error:
        OpenAICompatibleModel(url, lambda: "k")
    assert error.value.status == 502


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "http://127.0.0.1:8080/v1", "http://localhost/v1"])
def test_https_and_loopback_upstreams_are_accepted(url):
    OpenAICompatibleModel(url, lambda: "k")


def test_the_placeholder_the_provider_writes_is_the_one_the_api_refuses():
    """The SecureString provider and the inference function share the placeholder through the contracts."""

    class Written:
        def get(self, name: str, decrypt: bool, max_age: int) -> str:
            return provider_logic.new_value("placeholder")

    with pytest.raises(ApiError) as error:
        ConfigSource(MODEL_PATH, UPSTREAM_KEY, max_age=0, provider=Written()).upstream_api_key()
    assert error.value.status == 500 and "has not been set" in error.value.message
