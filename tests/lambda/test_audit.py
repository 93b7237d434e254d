"""The audit writer: records land in S3 through moto's Firehose with exactly the schema's fields; faults
follow audit_mode; privacy follows audit_content."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambda_src.contracts import metrics as metric_names
from lambda_src.contracts.audit import AUDIT_COLUMNS
from lambda_src.inference import handler as inference_handler
from lambda_src.inference.logic import Api
from lambda_src.shared.audit_writer import AuditEvent, AuditFailedError, AuditWriter
from lambda_src.shared.config_source import ModelSettings
from lambda_src.shared.models import Completion, CompletionRequest, ModelStream
from lambda_src.shared.redaction import redact

REGION = "us-east-1"
SETTINGS = ModelSettings(provider="bedrock", model_id="anthropic.claude-3-haiku-20240307-v1:0", temperature=0.2,
                         top_p=0.9, max_output_tokens=1024, request_timeout_seconds=25, system_prompt="Be brief.",
                         upstream_base_url="https://api.openai.com/v1")  # fmt: skip
PYTHON_TYPES = {"string": str, "int": int, "timestamp": str, "boolean": bool}


class Config:
    def settings(self) -> ModelSettings:
        return SETTINGS


class Model:
    def complete(self, request: CompletionRequest) -> Completion:
        return Completion(text="The capital of France is Paris. Mail me at jane.doe@example.com",
                          finish_reason="stop", prompt_tokens=21, completion_tokens=9)  # fmt: skip

    def stream(self, request: CompletionRequest) -> ModelStream:
        raise AssertionError("these tests do not stream")


def chat_event(content: str = "Capital of France?", session: str = "sess-42") -> dict[str, Any]:
    return {
        "resource": "/chat/completions", "httpMethod": "POST", "headers": {"X-Session-Id": session},
        "body": json.dumps({"messages": [{"role": "user", "content": content}]}), "isBase64Encoded": False,
        "requestContext": {"requestId": "req-7", "authorizer": {"keyId": "key_00000000000000aa", "owner": "alice"}},
    }  # fmt: skip


@pytest.fixture
def stream(aws: None) -> dict[str, Any]:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="audit")
    firehose = boto3.client("firehose", region_name=REGION)
    firehose.create_delivery_stream(
        DeliveryStreamName="audit-stream",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/firehose",
                                            "BucketARN": "arn:aws:s3:::audit", "Prefix": "data/"},
    )  # fmt: skip
    return {"s3": s3, "firehose": firehose}


def records(s3: Any) -> list[dict[str, Any]]:
    found = []
    for item in s3.list_objects_v2(Bucket="audit").get("Contents", []):
        body = s3.get_object(Bucket="audit", Key=item["Key"])["Body"].read().decode()
        found += [json.loads(line) for line in body.splitlines() if line.strip()]
    return found


def api(writer: AuditWriter) -> Api:
    return Api(Config(), lambda _s: Model(), max_body_bytes=65536, audit=writer)


def test_a_request_lands_one_record_with_exactly_the_schema(stream):
    writer = AuditWriter(stream["firehose"], "audit-stream", mode="required", content="full", stage="dev")
    outcome = api(writer).handle(chat_event())
    assert outcome.status == 200
    (record,) = records(stream["s3"])
    assert list(record) == [name for name, _type, _doc in AUDIT_COLUMNS]
    for name, glue_type, _doc in AUDIT_COLUMNS:
        assert isinstance(record[name], PYTHON_TYPES[glue_type]), name
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", record["timestamp"])
    assert json.loads(record["input_text"]) == [{"role": "user", "content": "Capital of France?"}]
    assert record["output_text"].startswith("The capital of France is Paris.")
    assert (record["user_id"], record["session_id"], record["api_key_id"]) == (
        "alice",
        "key_00000000000000aa:sess-42",
        "key_00000000000000aa",
    )
    assert (record["request_id"], record["provider"], record["model_id"]) == ("req-7", "bedrock", SETTINGS.model_id)
    assert (record["prompt_tokens"], record["completion_tokens"], record["status_code"]) == (21, 9, 200)
    assert record["error_type"] == "" and record["stage"] == "dev" and record["latency_ms"] >= 0


def test_failed_attempts_are_recorded_too(stream):
    writer = AuditWriter(stream["firehose"], "audit-stream", mode="required", content="full", stage="prod")
    event = chat_event()
    event["body"] = json.dumps({"messages": [], "stream": False})
    outcome = api(writer).handle(event)
    assert outcome.status == 400
    (record,) = records(stream["s3"])
    assert (record["status_code"], record["error_type"], record["output_text"]) == (400, "invalid_messages", "")


def test_a_wrong_method_on_a_model_route_is_recorded(stream):
    writer = AuditWriter(stream["firehose"], "audit-stream", mode="required", content="full", stage="dev")
    outcome = api(writer).handle({**chat_event(), "httpMethod": "GET"})
    assert outcome.status == 405
    (record,) = records(stream["s3"])
    assert (record["status_code"], record["error_type"]) == (405, "method_not_allowed")


def test_models_listing_is_not_an_inference(stream):
    writer = AuditWriter(stream["firehose"], "audit-stream", mode="required", content="full", stage="dev")
    api(writer).handle({"resource": "/models", "httpMethod": "GET"})
    assert records(stream["s3"]) == []


def _failing_firehose() -> tuple[Any, Stubber]:
    credentials = {"aws_access_key_id": "stub", "aws_secret_access_key": "stub"}
    client = boto3.client("firehose", region_name=REGION, **credentials)
    stubber = Stubber(client)
    stubber.add_client_error("put_record", service_error_code="ServiceUnavailableException", http_status_code=503)
    return client, stubber


def test_required_mode_withholds_the_output_when_the_record_cannot_be_written():
    client, stubber = _failing_firehose()
    writer = AuditWriter(client, "audit-stream", mode="required", content="full", stage="prod")
    with stubber:
        outcome = api(writer).handle(chat_event())
    assert outcome.status == 503
    body = json.loads(outcome.response["body"])
    assert body["error"]["code"] == "audit_unavailable"
    assert "Paris" not in outcome.response["body"]
    assert outcome.audit_failed


def test_best_effort_mode_answers_and_counts_the_failure(monkeypatch, capfd):
    client, stubber = _failing_firehose()
    writer = AuditWriter(client, "audit-stream", mode="best_effort", content="full", stage="dev")
    monkeypatch.setattr(inference_handler, "API", api(writer))
    log_handler = inference_handler.LOGGER.registered_handler
    assert isinstance(log_handler, logging.StreamHandler)
    previous = log_handler.setStream(io.StringIO())

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "f", 512, "r"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"

    with stubber:
        response = inference_handler.lambda_handler(chat_event(), Context())
    log_handler.setStream(previous)
    assert isinstance(response, dict) and response["statusCode"] == 200 and "Paris" in response["body"]
    metrics = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert any(m.get(metric_names.AUDIT_WRITE_FAILED) == [1.0] for m in metrics)


def test_writer_raises_in_required_mode_only():
    client, stubber = _failing_firehose()
    event = AuditEvent(request_id="r", api_key_id="k", user_id="u", session_id=None, model_id=None, provider=None,
                       input_text="", output_text="", prompt_tokens=0, completion_tokens=0, latency_ms=1,
                       status_code=200, error_type=None)  # fmt: skip
    with stubber, pytest.raises(AuditFailedError):
        AuditWriter(client, "s", mode="required", content="full", stage="dev").write(event)
    client, stubber = _failing_firehose()
    with stubber:
        assert AuditWriter(client, "s", mode="best_effort", content="full", stage="dev").write(event) is False


PROMPT = (
    "Hi, I'm Jane (jane.doe+work@example.co.uk, +1 415-555-0132). Charge my card 4111 1111 1111 1111 "
    "exp 12/29. Deploy with AKIAIOSFODNN7EXAMPLE and aws_secret_access_key = "
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, then call the API with sk-proj-AbCdEf0123456789XyZ. "
    "Order 1234567890123 shipped on 2026-11-21."
)


def test_redaction_masks_personal_data_and_secrets_but_keeps_the_rest():
    masked = redact(PROMPT)
    for secret in ("jane.doe+work@example.co.uk", "415-555-0132", "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE",
                   "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "sk-proj-AbCdEf0123456789XyZ"):  # fmt: skip
        assert secret not in masked, secret
    for token in ("[EMAIL]", "[PHONE]", "[CARD_NUMBER]", "[AWS_ACCESS_KEY_ID]", "[AWS_SECRET_KEY]", "[API_KEY]"):
        assert token in masked
    # Not a valid card number (fails Luhn), and a date: both kept.
    assert "1234567890123" in masked and "2026-11-21" in masked
    assert masked.startswith("Hi, I'm Jane")


def test_two_keys_naming_the_same_session_get_two_sessions(stream):
    """Session ids are chosen by callers: the record keeps each inside its key's namespace."""
    writer = AuditWriter(stream["firehose"], "audit-stream", mode="required", content="full", stage="dev")
    for key_id, owner in (("key_00000000000000aa", "alice"), ("key_00000000000000bb", "mallory")):
        event = chat_event(session="1")
        event["requestContext"]["authorizer"] = {"keyId": key_id, "owner": owner}
        assert api(writer).handle(event).status == 200
    sessions = {(r["api_key_id"], r["session_id"]) for r in records(stream["s3"])}
    assert sessions == {
        ("key_00000000000000aa", "key_00000000000000aa:1"),
        ("key_00000000000000bb", "key_00000000000000bb:1"),
    }


def test_redacted_and_metadata_only_records(stream):
    for content in ("redacted", "metadata_only"):
        writer = AuditWriter(stream["firehose"], "audit-stream", mode="required", content=content, stage="prod")
        api(writer).handle(chat_event(content=PROMPT, session=content))
    by_session = {r["session_id"].split(":", 1)[1]: r for r in records(stream["s3"])}
    redacted = by_session["redacted"]
    assert "[EMAIL]" in redacted["input_text"] and "jane.doe" not in redacted["input_text"]
    assert "[EMAIL]" in redacted["output_text"] and "Paris" in redacted["output_text"]
    bare = by_session["metadata_only"]
    assert bare["input_text"] == "" and bare["output_text"] == ""
    assert bare["prompt_tokens"] == 21 and bare["user_id"] == "alice"


def test_timestamps_are_utc_in_the_serde_format():
    clock = lambda: dt.datetime(2026, 11, 21, 23, 59, 58, 123456, tzinfo=dt.UTC)  # noqa: E731
    writer = AuditWriter(None, "s", mode="required", content="full", stage="dev", clock=clock)
    event = AuditEvent(request_id="r", api_key_id="k", user_id="u", session_id=None, model_id=None, provider=None,
                       input_text="", output_text="", prompt_tokens=0, completion_tokens=0, latency_ms=1,
                       status_code=200, error_type=None)  # fmt: skip
    assert writer.record(event)["timestamp"] == "2026-11-21 23:59:58.123"
