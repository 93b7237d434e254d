"""The SecureString provider against moto's SSM and KMS: values are made, kept, deleted per stage, never leaked."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lambda_src.contracts.parameters import PLACEHOLDER_PREFIX
from lambda_src.secure_parameter import cfn_response, handler, logic

NAME = "/llm-platform/dev/secrets/upstream-api-key"
REGION = "us-east-1"


class Context:
    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def event(request: str, key_arn: str, *, url: str = "https://example.invalid/r", name: str = NAME,
          kind: str = "generated", retain: str = "false", physical_id: str | None = None,
          old: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {
        "RequestType": request,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/llm-platform-dev-config/1",
        "RequestId": "req-1",
        "LogicalResourceId": "UpstreamApiKey",
        "ResourceType": "Custom::SecureStringParameter",
        # CloudFormation passes scalars as strings.
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
            "ParameterName": name,
            "KeyId": key_arn,
            "ValueKind": kind,
            "Description": "test parameter",
            "RetainOnDelete": retain,
        },
    }
    if physical_id is not None:
        body["PhysicalResourceId"] = physical_id
    if old is not None:
        body["OldResourceProperties"] = old
    return body


def run(event_body: dict[str, Any], ssm: Any, endpoint: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Invoke the real handler with moto's client; return the one response CloudFormation received."""
    monkeypatch.setattr(handler, "SSM", ssm)
    event_body["ResponseURL"] = endpoint.url
    handler.lambda_handler(event_body, Context())
    assert len(endpoint.bodies) == 1, endpoint.bodies
    response: dict[str, Any] = endpoint.bodies[0]
    return response


def stored(ssm: Any, name: str = NAME) -> dict[str, Any]:
    parameter: dict[str, Any] = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    return parameter


def key_of(ssm: Any, name: str = NAME) -> str:
    (meta,) = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    return str(meta["KeyId"])


# --- create ---------------------------------------------------------------------------------------


def test_create_generates_and_stores_an_encrypted_value(ssm, key_arn, endpoint, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    response = run(event("Create", key_arn), ssm, endpoint, monkeypatch)

    parameter = stored(ssm)
    value = parameter["Value"]
    assert parameter["Type"] == "SecureString"
    assert key_of(ssm) == key_arn
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value), "expected 256 random bits, URL-safe base64"
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == NAME
    assert response["Data"] == {"ParameterName": NAME}
    assert response["RequestId"] == "req-1" and response["LogicalResourceId"] == "UpstreamApiKey"
    # The value goes to SSM and nowhere else: not the response, not the logs, not stdout/stderr.
    assert value not in json.dumps(response)
    captured = capsys.readouterr()
    assert value not in caplog.text + captured.out + captured.err
    assert f"Created SecureString {NAME} with a generated value" in caplog.text


def test_two_creates_make_different_values(ssm, key_arn):
    logic.handle(event("Create", key_arn), ssm)
    logic.handle(event("Create", key_arn, name=NAME + "-2"), ssm)
    assert stored(ssm)["Value"] != stored(ssm, NAME + "-2")["Value"]


def test_create_placeholder_is_recognizable_and_unguessable(ssm, key_arn, caplog):
    caplog.set_level(logging.DEBUG)
    outcome = logic.handle(event("Create", key_arn, kind="placeholder"), ssm)
    value = stored(ssm)["Value"]
    assert outcome.physical_id == NAME
    assert re.fullmatch(re.escape(PLACEHOLDER_PREFIX) + r"[0-9a-f]{32}", value)
    assert value not in caplog.text


def test_create_adopts_an_existing_secure_string_without_touching_it(ssm, key_arn):
    ssm.put_parameter(Name=NAME, Value="sk-operator-set", Type="SecureString", KeyId=key_arn)
    outcome = logic.handle(event("Create", key_arn, kind="placeholder"), ssm)
    assert outcome.physical_id == NAME
    assert stored(ssm)["Value"] == "sk-operator-set"


def test_create_refuses_to_replace_a_plain_string(ssm, key_arn, endpoint, monkeypatch):
    ssm.put_parameter(Name=NAME, Value="not-secret", Type="String")
    response = run(event("Create", key_arn), ssm, endpoint, monkeypatch)
    assert response["Status"] == "FAILED"
    assert "already exists as a String parameter; refusing to replace it" in response["Reason"]
    assert response["PhysicalResourceId"] == logic.CREATE_FAILED_MARKER
    assert stored(ssm)["Value"] == "not-secret"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ParameterName": "relative/name"}, "ParameterName must be an absolute SSM parameter name"),
        ({"KeyId": "alias/aws/ssm"}, "KeyId must be a KMS key ARN"),
        ({"ValueKind": "literal"}, "ValueKind must be one of generated, placeholder"),
        ({"RetainOnDelete": "maybe"}, "RetainOnDelete must be true or false"),
    ],
)
def test_bad_properties_fail_with_a_reason(changes, reason, ssm, key_arn, endpoint, monkeypatch):
    body = event("Create", key_arn)
    body["ResourceProperties"].update(changes)
    response = run(body, ssm, endpoint, monkeypatch)
    assert response["Status"] == "FAILED"
    assert reason in response["Reason"]
    assert ssm.describe_parameters()["Parameters"] == []


def test_aws_errors_fail_with_the_service_reason(key_arn, endpoint, monkeypatch):
    client = boto3.client("ssm", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error("put_parameter", service_error_code="AccessDeniedException",
                             service_message="not authorized to perform kms:Encrypt")  # fmt: skip
    with stubber:
        response = run(event("Create", key_arn), client, endpoint, monkeypatch)
    assert response["Status"] == "FAILED"
    assert response["Reason"] == "Create failed: AccessDeniedException: not authorized to perform kms:Encrypt"


def test_an_unexpected_error_still_answers_cloudformation(key_arn, endpoint, monkeypatch, caplog):
    class Broken:
        def put_parameter(self, **kwargs: Any) -> None:
            raise RuntimeError(f"boom {kwargs['Value']}")

    response = run(event("Create", key_arn), Broken(), endpoint, monkeypatch)
    assert response["Status"] == "FAILED"
    assert response["Reason"] == "Unexpected RuntimeError in the provider; see its log group."
    assert "boom" not in caplog.text  # the exception text could carry the value: never logged
    # ... but where it failed is (was: the type only).
    (record,) = [r for r in caplog.records if r.getMessage().startswith("Unexpected RuntimeError at ")]
    where = json.loads(record.getMessage().removeprefix("Unexpected RuntimeError at "))
    assert where[0]["file"] == "lambda_src/secure_parameter/handler.py"
    assert where[-1]["function"] == "put_parameter" and where[-1]["file"].endswith("test_secure_parameter.py")


# --- update ---------------------------------------------------------------------------------------


def test_update_keeps_an_operator_set_value(ssm, key_arn, endpoint, monkeypatch):
    logic.handle(event("Create", key_arn, kind="placeholder"), ssm)
    ssm.put_parameter(Name=NAME, Value="sk-live-operator", Type="SecureString", KeyId=key_arn, Overwrite=True)

    body = event("Update", key_arn, kind="placeholder", physical_id=NAME,
                 old=event("Create", key_arn, kind="placeholder")["ResourceProperties"])  # fmt: skip
    body["ResourceProperties"]["Description"] = "new description"
    response = run(body, ssm, endpoint, monkeypatch)

    assert response["Status"] == "SUCCESS" and response["PhysicalResourceId"] == NAME
    assert stored(ssm)["Value"] == "sk-live-operator"


def test_update_recreates_a_parameter_deleted_out_of_band(ssm, key_arn):
    old = event("Create", key_arn)["ResourceProperties"]
    outcome = logic.handle(event("Update", key_arn, physical_id=NAME, old=old), ssm)
    assert outcome.physical_id == NAME
    assert stored(ssm)["Type"] == "SecureString"


def test_update_to_a_new_name_creates_it_and_leaves_the_old_for_the_delete(ssm, key_arn):
    logic.handle(event("Create", key_arn), ssm)
    old_value = stored(ssm)["Value"]
    new_name = "/llm-platform/dev/secrets/renamed"
    outcome = logic.handle(
        event("Update", key_arn, name=new_name, physical_id=NAME, old=event("Create", key_arn)["ResourceProperties"]),
        ssm,
    )
    assert outcome.physical_id == new_name
    assert stored(ssm)["Value"] == old_value
    assert stored(ssm, new_name)["Type"] == "SecureString"


def test_update_that_changes_the_key_fails_readably(ssm, key_arn, endpoint, monkeypatch):
    logic.handle(event("Create", key_arn), ssm)
    other_key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    body = event("Update", other_key, physical_id=NAME, old=event("Create", key_arn)["ResourceProperties"])
    response = run(body, ssm, endpoint, monkeypatch)
    assert response["Status"] == "FAILED"
    assert "Changing the KMS key of /llm-platform/dev/secrets/upstream-api-key" in response["Reason"]
    assert response["PhysicalResourceId"] == NAME


# --- delete ---------------------------------------------------------------------------------------


def test_delete_in_dev_removes_the_parameter_and_is_idempotent(ssm, key_arn, endpoint, monkeypatch):
    logic.handle(event("Create", key_arn), ssm)
    response = run(event("Delete", key_arn, physical_id=NAME, retain="false"), ssm, endpoint, monkeypatch)
    assert response["Status"] == "SUCCESS"
    with pytest.raises(ClientError, match="ParameterNotFound"):
        ssm.get_parameter(Name=NAME)
    # A repeated delete (CloudFormation retries) succeeds too.
    assert logic.handle(event("Delete", key_arn, physical_id=NAME), ssm).physical_id == NAME


def test_delete_in_prod_keeps_the_parameter(ssm, key_arn, endpoint, monkeypatch):
    logic.handle(event("Create", key_arn, retain="true"), ssm)
    value = stored(ssm)["Value"]
    response = run(event("Delete", key_arn, physical_id=NAME, retain="true"), ssm, endpoint, monkeypatch)
    assert response["Status"] == "SUCCESS"
    assert stored(ssm)["Value"] == value


def test_delete_after_a_failed_create_touches_nothing(ssm, key_arn):
    ssm.put_parameter(Name=NAME, Value="keep", Type="SecureString", KeyId=key_arn)
    outcome = logic.handle(event("Delete", key_arn, physical_id=logic.CREATE_FAILED_MARKER), ssm)
    assert outcome.physical_id == logic.CREATE_FAILED_MARKER
    assert stored(ssm)["Value"] == "keep"


# --- answering CloudFormation ---------------------------------------------------------------------


def test_a_function_about_to_time_out_answers_failed_once(key_arn):
    sent: list[dict[str, Any]] = []
    responder = cfn_response.Responder(
        event("Create", key_arn),
        remaining_seconds=cfn_response.TIMEOUT_MARGIN_SECONDS + 0.05,
        send=lambda _url, body: sent.append(json.loads(body)),
    )
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(0.01)
    responder.success(NAME, {"ParameterName": NAME})  # too late: ignored
    assert [b["Status"] for b in sent] == ["FAILED"]
    assert "about to time out" in sent[0]["Reason"]
    assert sent[0]["PhysicalResourceId"] == logic.CREATE_FAILED_MARKER


def test_long_reasons_are_truncated(key_arn):
    sent: list[dict[str, Any]] = []
    responder = cfn_response.Responder(event("Create", key_arn), 60, send=lambda _u, b: sent.append(json.loads(b)))
    responder.failed("x" * 5000)
    assert len(sent[0]["Reason"]) == cfn_response.MAX_REASON_CHARS


def test_responses_go_only_to_https_urls():
    with pytest.raises(ValueError, match="https"):
        cfn_response.put_response("http://example.com/presigned", b"{}")
