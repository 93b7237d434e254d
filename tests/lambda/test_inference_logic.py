"""The inference API's routes, validation and error mapping, with the model stubbed at the botocore layer."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import ANY, Stubber

from lambda_src.inference.logic import Api
from lambda_src.shared.config_source import ModelSettings
from lambda_src.shared.errors import ApiError
from lambda_src.shared.models import Completion, CompletionRequest, ModelStream
from lambda_src.shared.models.bedrock import BedrockModel
from tests.aws_fakes import stub_client

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
SETTINGS = ModelSettings(provider="bedrock", model_id=MODEL, temperature=0.2, top_p=0.9, max_output_tokens=1024,
                         request_timeout_seconds=25, system_prompt="Be brief.",
                         upstream_base_url="https://api.openai.com/v1")  # fmt: skip
CONVERSE_OK = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Paris."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
    "metrics": {"latencyMs": 100},
}


class FixedConfig:
    def __init__(self, settings: ModelSettings = SETTINGS) -> None:
        self._settings = settings

    def settings(self) -> ModelSettings:
        return self._settings


@pytest.fixture
def bedrock() -> Any:
    client = stub_client("bedrock-runtime")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def api_with(client: Any, **kwargs: Any) -> Api:
    return Api(FixedConfig(), lambda _s: BedrockModel(lambda _t: client), max_body_bytes=kwargs.pop("max_body", 4096),
               cors_origins=("https://app.example.com",), clock=lambda: 1_700_000_000.0)  # fmt: skip


def event(
    route: str,
    method: str = "POST",
    body: Any = None,
    *,
    raw: str | None = None,
    headers: dict[str, str] | None = None,
    b64: bool = False,
) -> dict[str, Any]:
    text = raw if raw is not None else (json.dumps(body) if body is not None else None)
    if b64 and text is not None:
        text = base64.b64encode(text.encode()).decode()
    return {
        "resource": route,
        "path": route,
        "httpMethod": method,
        "headers": headers or {},
        "body": text,
        "isBase64Encoded": b64,
        "requestContext": {"requestId": "req-123", "authorizer": {"keyId": "key_0001", "owner": "alice"}},
    }


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Capital of France?"}], **extra}


def answer(outcome: Any) -> tuple[int, dict[str, Any]]:
    response = outcome.response
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def error_of(outcome: Any) -> tuple[int, str]:
    status, body = answer(outcome)
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code", "param"}
    assert "Traceback" not in body["error"]["message"]
    return status, body["error"]["code"]


# --- success ----------------------------------------------------------------------------------------


def test_chat_completion_calls_converse_and_answers_in_openai_shape(bedrock):
    client, stubber = bedrock
    stubber.add_response("converse", CONVERSE_OK, {
        "modelId": MODEL,
        "messages": [{"role": "user", "content": [{"text": "Capital of France?"}]}],
        "system": [{"text": "Be brief."}, {"text": "Answer in English."}],
        "inferenceConfig": {"temperature": 0.0, "topP": 0.9, "maxTokens": 50, "stopSequences": ["\n\n"]},
    })  # fmt: skip
    body = chat(temperature=0, max_tokens=50, stop="\n\n", user="session-9")
    body["messages"].insert(0, {"role": "system", "content": "Answer in English."})
    outcome = api_with(client).handle(event("/chat/completions", body=body))
    status, data = answer(outcome)
    assert status == 200
    assert data == {
        "id": "chatcmpl-req-123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    assert outcome.caller.key_id == "key_0001" and outcome.caller.owner == "alice"
    assert outcome.session_id == "key_0001:session-9"


def test_models_lists_the_configured_model(bedrock):
    client, _ = bedrock
    status, data = answer(api_with(client).handle(event("/models", "GET")))
    assert status == 200
    assert data == {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "bedrock"}]}


def test_simple_model_route(bedrock):
    client, stubber = bedrock
    expected = {
        "modelId": MODEL,
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"temperature": 0.2, "topP": 0.9, "maxTokens": 1024},
    }
    stubber.add_response("converse", {**CONVERSE_OK, "stopReason": "max_tokens"}, expected)
    outcome = api_with(client).handle(event("/model", body={"prompt": "Hi"}, headers={"X-Session-Id": "s-1"}))
    status, data = answer(outcome)
    assert status == 200
    assert data == {"completion": "Paris.", "model": MODEL,
                    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}  # fmt: skip
    assert outcome.session_id == "key_0001:s-1"


def test_consecutive_turns_of_one_role_are_merged_and_text_parts_joined(bedrock):
    client, stubber = bedrock
    stubber.add_response("converse", CONVERSE_OK, {
        "modelId": MODEL, "system": ANY, "inferenceConfig": ANY,
        "messages": [{"role": "user", "content": [{"text": "a b\n\nc"}]}],
    })  # fmt: skip
    body = chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a "}, {"type": "text", "text": "b"}]},
                          {"role": "user", "content": "c"}])  # fmt: skip
    assert answer(api_with(client).handle(event("/chat/completions", body=body)))[0] == 200


def test_base64_bodies_are_decoded(bedrock):
    client, stubber = bedrock
    stubber.add_response(
        "converse", CONVERSE_OK, {"modelId": MODEL, "messages": ANY, "system": ANY, "inferenceConfig": ANY}
    )
    outcome = api_with(client).handle(event("/chat/completions", body=chat(), b64=True))
    assert answer(outcome)[0] == 200


def test_cors_header_only_for_listed_origins(bedrock):
    client, _ = bedrock
    allowed = api_with(client).handle(event("/models", "GET", headers={"Origin": "https://app.example.com"}))
    other = api_with(client).handle(event("/models", "GET", headers={"origin": "https://evil.example"}))
    assert allowed.response["headers"]["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Access-Control-Allow-Origin" not in other.response["headers"]


# --- client errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_event", "status", "code"),
    [
        (event("/chat/completions", raw="{not json"), 400, "invalid_json"),
        (event("/chat/completions", raw="[1, 2]"), 400, "invalid_request"),
        (event("/chat/completions", raw=""), 400, "invalid_request"),
        (event("/chat/completions", raw="[" * 100_000 + "]" * 100_000), 413, "request_too_large"),
        (
            event("/chat/completions", raw="%%%", b64=False, headers={}) | {"isBase64Encoded": True},
            400,
            "invalid_request",
        ),
        (event("/chat/completions", body=chat(messages=[])), 400, "invalid_messages"),
        (event("/chat/completions", body=chat(messages="hi")), 400, "invalid_messages"),
        (event("/chat/completions", body=chat(messages=[{"role": "user", "content": "  "}])), 400, "invalid_messages"),
        (event("/chat/completions", body=chat(messages=[{"role": "tool", "content": "x"}])), 400, "invalid_messages"),
        (
            event("/chat/completions", body=chat(messages=[{"role": "assistant", "content": "x"}])),
            400,
            "invalid_messages",
        ),
        (
            event("/chat/completions", body=chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}])),
            400,
            "invalid_messages",
        ),
        (event("/chat/completions", body=chat(temperature="hot")), 400, "value_out_of_range"),
        (event("/chat/completions", body=chat(temperature=1.5)), 400, "value_out_of_range"),
        (event("/chat/completions", body=chat(temperature=True)), 400, "value_out_of_range"),
        (event("/chat/completions", body=chat(top_p=0)), 400, "value_out_of_range"),
        (event("/chat/completions", body=chat(max_tokens=0)), 400, "value_out_of_range"),
        (event("/chat/completions", body=chat(max_tokens=5000)), 400, "value_out_of_range"),
        (event("/chat/completions", body=chat(max_tokens=10.5)), 400, "value_out_of_range"),
        (event("/chat/completions", body=chat(stop=["a", "b", "c", "d", "e"])), 400, "invalid_request"),
        (event("/chat/completions", body=chat(user=7)), 400, "invalid_request"),
        (event("/chat/completions", body=chat(n=2)), 400, "unsupported_parameter"),
        (event("/chat/completions", body=chat(tools=[{"type": "function"}])), 400, "invalid_request"),
        (event("/chat/completions", body=chat(logprobs=True)), 400, "unsupported_parameter"),
        (event("/chat/completions", body=chat(model="gpt-4o")), 404, "model_not_found"),
        (event("/chat/completions", body=chat(model=["x"])), 400, "invalid_request"),
        (event("/model", body={"prompt": ""}), 400, "invalid_request"),
        (event("/model", body={"prompt": ["x"]}), 400, "invalid_request"),
        (event("/nope", "GET"), 404, "unknown_route"),
        (event("/models", "DELETE"), 405, "method_not_allowed"),
        ({"requestContext": {"authorizer": {"keyId": "key_0001"}}}, 404, "unknown_route"),
    ],
)
def test_client_faults_get_4xx_in_openai_shape(request_event, status, code, bedrock):
    client, _ = bedrock
    assert error_of(api_with(client).handle(request_event)) == (status, code)


def test_unknown_route_names_only_what_the_caller_sent(bedrock):
    client, _ = bedrock
    outcome = api_with(client).handle(event("/<script>" + "x" * 500, "GET"))
    _, body = answer(outcome)
    assert len(body["error"]["message"]) < 200


# --- upstream errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "api_code"),
    [
        ("ThrottlingException", 429, "rate_limit_exceeded"),
        ("ServiceQuotaExceededException", 429, "rate_limit_exceeded"),
        ("ValidationException", 400, "invalid_request"),
        ("ModelTimeoutException", 504, "upstream_timeout"),
        ("ModelErrorException", 502, "upstream_error"),
        ("ServiceUnavailableException", 502, "upstream_error"),
        ("InternalServerException", 502, "upstream_error"),
        ("AccessDeniedException", 502, "upstream_error"),
        ("ResourceNotFoundException", 502, "upstream_error"),
    ],
)
def test_bedrock_errors_map_to_api_statuses(code, status, api_code, bedrock):
    client, stubber = bedrock
    stubber.add_client_error("converse", service_error_code=code, service_message="input is too long\nsecret detail",
                             http_status_code=400)  # fmt: skip
    outcome = api_with(client).handle(event("/chat/completions", body=chat()))
    assert error_of(outcome) == (status, api_code)
    if status == 429:
        assert outcome.response["headers"]["Retry-After"] == "2"
    assert "secret detail" not in outcome.response["body"]


def test_read_timeout_is_a_504():
    class Slow:
        def converse(self, **_: Any) -> None:
            raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")

    api = Api(FixedConfig(), lambda _s: BedrockModel(lambda _t: Slow()), max_body_bytes=4096)
    assert error_of(api.handle(event("/chat/completions", body=chat()))) == (504, "upstream_timeout")


class Broken:
    def complete(self, request: CompletionRequest) -> Completion:
        raise KeyError("secret-internal-state")

    def stream(self, request: CompletionRequest) -> ModelStream:
        raise AssertionError("these tests do not stream")


def test_a_bug_is_a_500_without_details(caplog):
    api = Api(FixedConfig(), lambda _s: Broken(), max_body_bytes=4096)
    outcome = api.handle(event("/chat/completions", body=chat()))
    assert error_of(outcome) == (500, "internal_error")
    assert "secret-internal-state" not in outcome.response["body"] + caplog.text
    (record,) = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert (record.error_type, record.api_request_id, record.key_id) == ("KeyError", "req-123", "key_0001")
    # Where it failed and how it got there (was: only the exception's type).
    assert record.frames[0] == {"file": "lambda_src/shared/dispatch.py", "line": record.frames[0]["line"],
                                "function": "_handle"}  # fmt: skip
    assert record.frames[-1]["function"] == "complete" and record.frames[-1]["file"].endswith("test_inference_logic.py")
    assert record.exc_info is None


def test_a_request_without_authorizer_context_is_refused(bedrock):
    """API Gateway always passes the authorizer's context; a method without one (or a direct invoke) must not
    be served anonymously (it was: a 200 with an empty key id)."""
    client, _ = bedrock
    for context in ({"requestId": "r"}, {"requestId": "r", "authorizer": {"keyId": "", "owner": "x"}}, None):
        request = event("/models", "GET")
        request["requestContext"] = context
        outcome = api_with(client).handle(request)
        assert error_of(outcome) == (401, "invalid_api_key")
        assert not outcome.audited


def test_bedrock_validation_text_stays_in_the_log(bedrock, caplog):
    client, stubber = bedrock
    detail = "Malformed input request: account 123456789012 model arn:aws:bedrock:... quota"
    stubber.add_client_error("converse", service_error_code="ValidationException", service_message=detail,
                             http_status_code=400)  # fmt: skip
    outcome = api_with(client).handle(event("/chat/completions", body=chat()))
    assert error_of(outcome) == (400, "invalid_request")
    assert "123456789012" not in outcome.response["body"] and "Malformed" not in outcome.response["body"]
    (record,) = [r for r in caplog.records if r.getMessage() == "Bedrock rejected the request"]
    assert record.bedrock_message == detail


def test_broken_configuration_is_a_500():
    class BadConfig:
        def settings(self) -> ModelSettings:
            return ModelSettings.parse({"provider": "bedrock"})

    api = Api(BadConfig(), lambda _s: None, max_body_bytes=4096)  # type: ignore[arg-type,return-value]
    assert error_of(api.handle(event("/models", "GET"))) == (500, "internal_error")


def test_api_error_shape():
    error = ApiError(429, "slow down", "rate_limit_error", "rate_limit_exceeded", {"Retry-After": "2"})
    assert error.body() == {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded",
                                      "param": None}}  # fmt: skip
