"""The TOKEN authorizer: only active keys pass; the answer carries the key's usage identifier (never the key)
for the usage plan, and its identity."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import pytest

from lambda_src.authorizer import handler
from lambda_src.authorizer.logic import UnauthorizedError, authorize, stage_arn
from lambda_src.contracts.keys import KEY_PREFIX, KeyRecord, key_hash, new_key, new_usage_identifier
from tests.aws_fakes import create_key_table

METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/POST/chat/completions"


USAGE = "usage" + "ab" * 32


def lookup_for(key: str, status: str = "active", usage_identifier: str = USAGE) -> Any:
    record = KeyRecord(key_id="key_00000000000000aa", owner="alice", plan="standard", status=status,
                       usage_identifier=usage_identifier)  # fmt: skip
    return {key_hash(key): record}.get


def test_an_active_key_is_allowed_on_the_whole_stage_with_its_identity():
    key = new_key()
    answer = authorize(f"Bearer {key}", METHOD_ARN, lookup_for(key))
    assert answer == {
        "principalId": "key_00000000000000aa",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": "arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/*/*",
                }
            ],
        },
        "usageIdentifierKey": USAGE,
        "context": {"keyId": "key_00000000000000aa", "owner": "alice", "plan": "standard", "limits": ""},
    }


def test_a_keys_own_limits_travel_with_the_answer():
    """The inference function applies them over the plan's (an empty value: the plan's alone)."""
    key = new_key()
    record = KeyRecord(key_id="key_00000000000000aa", owner="alice", plan="standard", status="active",
                       usage_identifier=USAGE, limits='{"tokens_per_day": 500}')  # fmt: skip
    answer = authorize(f"Bearer {key}", METHOD_ARN, {key_hash(key): record}.get)
    assert answer["context"]["limits"] == '{"tokens_per_day": 500}'


@pytest.mark.parametrize(
    "token",
    [None, "", "Bearer", "Bearer ", f"bearer {KEY_PREFIX}" + "a" * 43, "Basic abc", f"Bearer {KEY_PREFIX}short",
     f"Bearer {KEY_PREFIX}" + "a" * 43 + " extra", "Bearer " + "a" * 50, 12345, f"Bearer {KEY_PREFIX}" + "é" * 43,
     f"Bearer {KEY_PREFIX}" + "a" * 43 + "\n"],
)  # fmt: skip
def test_malformed_tokens_are_unauthorized(token):
    with pytest.raises(UnauthorizedError, match=r"^Unauthorized$"):
        authorize(token, METHOD_ARN, lambda _h: None)


def test_unknown_and_revoked_keys_are_unauthorized():
    key = new_key()
    with pytest.raises(UnauthorizedError):
        authorize(f"Bearer {new_key()}", METHOD_ARN, lookup_for(key))
    with pytest.raises(UnauthorizedError):
        authorize(f"Bearer {key}", METHOD_ARN, lookup_for(key, status="revoked"))


def test_the_bearer_key_never_reaches_api_gateway():
    """A usage identifier that is not one (empty, or the key itself, however it got there) is refused."""
    key = new_key()
    assert authorize(f"Bearer {key}", METHOD_ARN, lookup_for(key))["usageIdentifierKey"] != key
    for usage_identifier in ("", key, "usage"):
        with pytest.raises(UnauthorizedError):
            authorize(f"Bearer {key}", METHOD_ARN, lookup_for(key, usage_identifier=usage_identifier))


@pytest.mark.parametrize("arn", ["", "not-an-arn", "arn:aws:execute-api:eu-west-1:1:abc", 7])
def test_a_malformed_method_arn_is_unauthorized(arn):
    key = new_key()
    with pytest.raises(UnauthorizedError):
        authorize(f"Bearer {key}", arn, lookup_for(key))


def test_stage_arn_keeps_api_and_stage():
    assert stage_arn(METHOD_ARN) == "arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/*/*"


def test_keys_are_random_and_only_their_hash_is_stored():
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    key = keys.pop()
    assert key.startswith(KEY_PREFIX) and len(key) == len(KEY_PREFIX) + 43
    assert key_hash(key) != key and len(key_hash(key)) == 64


def test_handler_reads_the_key_table_and_never_logs_the_token(aws, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    create_key_table(dynamodb)
    key, legacy, usage_identifier = new_key(), new_key(), new_usage_identifier()
    item = {"key_id": {"S": "key_1"}, "owner": {"S": "bob"}, "plan": {"S": "premium"}, "status": {"S": "active"}}
    dynamodb.put_item(TableName="keys", Item={**item, "key_hash": {"S": key_hash(key)},
                                              "usage_identifier": {"S": usage_identifier}})  # fmt: skip
    # A key issued before usage identifiers (not yet migrated): its API Gateway key's value is the key itself.
    dynamodb.put_item(TableName="keys", Item={**item, "key_hash": {"S": key_hash(legacy)}})
    monkeypatch.setattr(handler, "DYNAMODB", dynamodb)
    monkeypatch.setattr(handler, "TABLE", "keys")

    class Context:
        function_name, memory_limit_in_mb, invoked_function_arn, aws_request_id = "a", 128, "arn", "r"

    answer = handler.lambda_handler({"authorizationToken": f"Bearer {key}", "methodArn": METHOD_ARN}, Context())
    assert answer["context"] == {"keyId": "key_1", "owner": "bob", "plan": "premium", "limits": ""}
    assert answer["usageIdentifierKey"] == usage_identifier
    for refused in (new_key(), legacy):
        with pytest.raises(UnauthorizedError):
            handler.lambda_handler({"authorizationToken": f"Bearer {refused}", "methodArn": METHOD_ARN}, Context())
    captured = capsys.readouterr()
    assert '"allowed"' in captured.out or "allowed" in caplog.text  # Powertools logs JSON to stdout
    assert key not in caplog.text + captured.out + captured.err
