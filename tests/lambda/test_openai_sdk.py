"""The official openai SDK against the API: local gateway -> real authorizer and handler -> stubbed Bedrock.

Keys come from the project's admin command (tools.keys) against moto's SSM, DynamoDB and API Gateway.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import openai
import pytest
from aws_lambda_powertools.utilities import parameters
from botocore.stub import Stubber
from moto.core import config as moto_config

from lambda_src.authorizer import handler as authorizer_handler
from lambda_src.contracts import metrics
from lambda_src.inference import handler as inference_handler
from lambda_src.inference.logic import Api
from lambda_src.shared.config_source import ConfigSource
from tests.aws_fakes import MODEL_PATH, MODEL_VALUES, REGION, UPSTREAM_KEY, issue_key, put_model_parameters
from tests.bedrock_events import answer_with, text_answer
from tools.keys import Clients, KeyAdmin
from tools.local.gateway import LocalGateway

MODEL = MODEL_VALUES["id"]
ANSWER = {
    "output": {"message": {"role": "assistant", "content": [{"text": "The capital of France is Paris."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 20, "outputTokens": 8, "totalTokens": 28},
    "metrics": {"latencyMs": 120},
}


@pytest.fixture
def deployment(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    ssm = boto3.client("ssm", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    apigateway = boto3.client("apigateway", region_name=REGION)
    put_model_parameters(ssm)
    key_id, key = issue_key(ssm, dynamodb, apigateway)

    bedrock = boto3.client("bedrock-runtime", region_name=REGION)
    stubber = Stubber(bedrock)
    stubber.activate()
    monkeypatch.setattr(authorizer_handler, "DYNAMODB", dynamodb)
    monkeypatch.setattr(authorizer_handler, "TABLE", "keys")
    monkeypatch.setattr(inference_handler, "bedrock_client", lambda _timeout: bedrock)
    config = ConfigSource(MODEL_PATH, UPSTREAM_KEY, max_age=60, provider=parameters.SSMProvider())
    monkeypatch.setattr(inference_handler, "API", Api(config, inference_handler.model_for, max_body_bytes=262144))
    gateway = LocalGateway(inference_handler.lambda_handler, authorizer_handler.lambda_handler).start()
    yield {"gateway": gateway, "key": key, "key_id": key_id, "stubber": stubber}
    gateway.stop()
    stubber.deactivate()


def client(deployment: dict[str, Any], key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=deployment["gateway"].base_url, api_key=key or deployment["key"], max_retries=0)


def test_models_list(deployment):
    assert [m.id for m in client(deployment).models.list()] == [MODEL]


def test_chat_completions_create_returns_the_models_text(deployment, capfd):
    log_stream = io.StringIO()
    log_handler = inference_handler.LOGGER.registered_handler
    assert isinstance(log_handler, logging.StreamHandler)
    previous = log_handler.setStream(log_stream)
    deployment["stubber"].add_response("converse", ANSWER, {
        "modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "What is the capital of France?"}]}],
        "system": [{"text": "You are a helpful assistant."}],
        "inferenceConfig": {"temperature": 0.0, "topP": 0.9, "maxTokens": 32},
    })  # fmt: skip
    completion = client(deployment).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0,
        max_tokens=32,
    )
    assert completion.choices[0].message.content == "The capital of France is Paris."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 28
    log_handler.setStream(previous)
    logs = log_stream.getvalue() + capfd.readouterr().out
    # Structured logs name the key id, never the key or the prompt; metrics go out as EMF, named by the contract.
    assert deployment["key_id"] in logs and deployment["key"] not in logs
    assert "capital of France" not in logs
    (emf,) = [json.loads(line) for line in logs.splitlines() if line.startswith('{"_aws"')]
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == metrics.NAMESPACE
    # route, service and stage: what the stage's alarms and dashboard select (constructs_lib/observability).
    assert [sorted(names) for names in directive["Dimensions"]] == [sorted(metrics.REQUEST_DIMENSIONS)]
    assert emf[metrics.ROUTE_DIMENSION] == "/chat/completions"
    assert (emf[metrics.SERVICE_DIMENSION], emf[metrics.STAGE_DIMENSION]) == ("llm-test", "dev")
    assert {m["Name"] for m in directive["Metrics"]} == {
        metrics.LATENCY,
        metrics.REQUESTS,
        metrics.PROMPT_TOKENS,
        metrics.COMPLETION_TOKENS,
    }
    assert (emf[metrics.PROMPT_TOKENS], emf[metrics.COMPLETION_TOKENS]) == ([20.0], [8.0])


def test_bedrock_throttling_surfaces_as_rate_limit_error(deployment):
    deployment["stubber"].add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)
    with pytest.raises(openai.RateLimitError) as error:
        client(deployment).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert error.value.response.headers["retry-after"] == "2"


def test_a_bad_key_is_an_authentication_error(deployment):
    with pytest.raises(openai.AuthenticationError):
        client(deployment, key="sk-llm-" + "A" * 43).models.list()
    with pytest.raises(openai.AuthenticationError):
        client(deployment, key="not-a-key").models.list()


def test_an_invalid_body_is_a_bad_request_error(deployment):
    with pytest.raises(openai.BadRequestError) as error:
        client(deployment).chat.completions.create(model=MODEL, messages=[])
    assert error.value.code == "invalid_messages"


def test_unknown_model_and_route_are_not_found(deployment):
    with pytest.raises(openai.NotFoundError):
        client(deployment).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(openai.NotFoundError):
        client(deployment).embeddings.create(model=MODEL, input="x")


def test_a_revoked_key_stops_working(deployment):
    ssm, dynamodb, apigateway = (boto3.client(s, region_name=REGION) for s in ("ssm", "dynamodb", "apigateway"))
    KeyAdmin("dev", Clients(ssm, dynamodb, apigateway)).revoke(deployment["key_id"])
    with pytest.raises(openai.AuthenticationError):
        client(deployment).models.list()


WEATHER_TOOL: Any = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                                 "parameters": {"type": "object", "properties": {
                                                     "city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip


def test_the_sdks_tool_calling_loop_against_bedrock(deployment):
    """The model asks for a tool, the client runs it and sends the result, the model answers."""
    stubber = deployment["stubber"]
    stubber.add_response("converse", {
        "output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 40, "outputTokens": 12, "totalTokens": 52},
        "metrics": {"latencyMs": 50},
    })  # fmt: skip
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client(deployment).chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id == "tooluse_1" and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"}]  # fmt: skip
    stubber.add_response("converse", {
        "output": {"message": {"role": "assistant", "content": [{"text": "It is 18 C and sunny in Paris."}]}},
        "stopReason": "end_turn", "usage": {"inputTokens": 60, "outputTokens": 10, "totalTokens": 70},
        "metrics": {"latencyMs": 50},
    }, {
        "modelId": MODEL, "system": [{"text": "You are a helpful assistant."}],
        "inferenceConfig": {"temperature": 0.2, "topP": 0.9, "maxTokens": 1024},
        "messages": [
            {"role": "user", "content": [{"text": "What is the weather in Paris?"}]},
            {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_1",
                                                         "content": [{"text": "18 C and sunny"}]}}]},
        ],
        "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather of a city",
                                               "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]}}}]},
    })  # fmt: skip
    second = client(deployment).chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "It is 18 C and sunny in Paris."


@pytest.mark.parametrize("streaming", [True, False], ids=["stream-integration", "streaming-switched-off"])
def test_the_sdk_streams_a_bedrock_answer(deployment, monkeypatch, streaming):
    """ConverseStream through the handler and the gateway: relayed chunk by chunk behind a STREAM integration,
    the same events in one answer when the stage switches streaming off."""
    # moto has no ConverseStream: it lets bedrock-runtime through to the event-stream answer below (no network).
    passthrough = moto_config.default_user_config["core"]["passthrough"]
    monkeypatch.setitem(passthrough, "services", [*passthrough.get("services", []), "bedrockruntime"])
    bedrock = boto3.client("bedrock-runtime", region_name=REGION)
    answer_with(bedrock, text_answer(["The capital ", "of France ", "is Paris."], usage=(20, 8)))
    monkeypatch.setattr(inference_handler, "bedrock_client", lambda _timeout: bedrock)
    monkeypatch.setattr(inference_handler, "ENV",
                        inference_handler.ENV._replace(stream_timeout_seconds=300 if streaming else 0))  # fmt: skip
    stream = client(deployment).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Capital of France?"}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The capital of France is Paris."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 28
