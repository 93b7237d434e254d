"""The key admin command against moto: create prints the key once, list never shows keys, revoke disables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambda_src.contracts.keys import KEY, KEY_ID, key_hash
from tools.keys import Clients, KeyAdmin, main

REGION = "us-east-1"


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws():
        ssm, dynamodb, apigateway = (boto3.client(s, region_name=REGION) for s in ("ssm", "dynamodb", "apigateway"))
        dynamodb.create_table(TableName="keys", KeySchema=[{"AttributeName": "key_hash", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "key_hash", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")  # fmt: skip
        for plan in ("standard", "premium"):
            plan_id = apigateway.create_usage_plan(name=f"llm-platform-dev-api-{plan}")["id"]
            ssm.put_parameter(Name=f"/llm-platform/dev/api/usage-plans/{plan}", Value=plan_id, Type="String")
        ssm.put_parameter(Name="/llm-platform/dev/api/key-table", Value="keys", Type="String")
        yield Clients(ssm, dynamodb, apigateway)


def items(clients: Clients) -> list[dict[str, Any]]:
    return list(clients.dynamodb.scan(TableName="keys")["Items"])


def test_create_registers_hash_api_key_and_plan_and_prints_the_key_once(clients, capsys):
    assert main(["create", "--stage", "dev", "--owner", "alice", "--plan", "premium"], clients=clients) == 0
    out = capsys.readouterr().out
    key = KEY.search(out).group()  # type: ignore[union-attr]
    key_id = KEY_ID.search(out).group()  # type: ignore[union-attr]
    (item,) = items(clients)
    assert item["key_hash"]["S"] == key_hash(key)
    assert {k: v["S"] for k, v in item.items() if k in ("key_id", "owner", "plan", "status")} == {
        "key_id": key_id, "owner": "alice", "plan": "premium", "status": "active"}  # fmt: skip
    assert key not in str(item)
    api_key = clients.apigateway.get_api_key(apiKey=item["apigw_key_id"]["S"], includeValue=True)
    assert api_key["value"] == key and api_key["enabled"] is True
    plan_id = clients.ssm.get_parameter(Name="/llm-platform/dev/api/usage-plans/premium")["Parameter"]["Value"]
    assert [k["id"] for k in clients.apigateway.get_usage_plan_keys(usagePlanId=plan_id)["items"]] == [api_key["id"]]


def test_list_never_shows_keys_or_hashes(clients, capsys):
    admin = KeyAdmin("dev", clients)
    _, key = admin.create("bob", "standard")
    assert main(["list", "--stage", "dev"], clients=clients) == 0
    out = capsys.readouterr().out
    assert "bob\tstandard\tactive" in out
    assert key not in out and key_hash(key) not in out


def test_revoke_marks_the_key_and_deletes_the_api_gateway_key(clients, capsys):
    admin = KeyAdmin("dev", clients)
    key_id, _ = admin.create("carol", "standard")
    apigw_id = items(clients)[0]["apigw_key_id"]["S"]
    assert main(["revoke", "--stage", "dev", "--key-id", key_id], clients=clients) == 0
    (item,) = items(clients)
    assert item["status"]["S"] == "revoked" and item["revoked_at"]["S"]
    assert apigw_id not in [k["id"] for k in clients.apigateway.get_api_keys()["items"]]
    assert f"revoked {key_id}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "--stage", "qa", "--owner", "a", "--plan", "standard"], "--stage must be one of dev, prod"),
        (["create", "--stage", "dev", "--owner", "a b", "--plan", "standard"], "--owner must be 1-128"),
        (["create", "--stage", "dev", "--owner", "a", "--plan", "gold"], "--plan must be one of premium, standard"),
        (["revoke", "--stage", "dev", "--key-id", "nope"], "--key-id must look like"),
        (["revoke", "--stage", "dev", "--key-id", "key_0000000000000000"], "No key key_0000000000000000"),
        (["list", "--stage", "prod"], "is the prod API deployed?"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(clients, capsys, argv, message):
    assert main(argv, clients=clients) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1
    assert items(clients) == []


def test_a_failed_registration_leaves_nothing_behind(clients, monkeypatch):
    def fail(**_: Any) -> None:
        raise clients.dynamodb.exceptions.ConditionalCheckFailedException(
            {"Error": {"Code": "ConditionalCheckFailedException", "Message": "x"}}, "PutItem"
        )

    monkeypatch.setattr(clients.dynamodb, "put_item", fail)
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        KeyAdmin("dev", clients).create("dave", "standard")
    assert clients.apigateway.get_api_keys()["items"] == []
