"""The key admin command against moto: create prints the key once and registers only a usage identifier with
API Gateway, list never shows keys, revoke finds a key by id at any table size, migrate moves keys issued
before usage identifiers off their plaintext API Gateway key."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from lambda_src.authorizer.logic import authorize
from lambda_src.contracts import spend as s
from lambda_src.contracts.keys import (
    KEY,
    KEY_ID,
    KEY_PREFIX,
    USAGE_IDENTIFIER,
    key_hash,
    new_key,
    new_key_id,
    record_from_item,
)
from lambda_src.shared.budget import Budget
from tests.aws_fakes import REGION, create_key_table, create_usage_table
from tools.keys import Clients, KeyAdmin, main
from tools.operator import ToolError


@pytest.fixture
def clients(aws: None) -> Clients:
    ssm, dynamodb, apigateway = (boto3.client(s, region_name=REGION) for s in ("ssm", "dynamodb", "apigateway"))
    create_key_table(dynamodb)
    for plan in ("standard", "premium"):
        plan_id = apigateway.create_usage_plan(name=f"llm-platform-dev-api-{plan}")["id"]
        ssm.put_parameter(Name=f"/llm-platform/dev/api/usage-plans/{plan}", Value=plan_id, Type="String")
    ssm.put_parameter(Name="/llm-platform/dev/api/key-table", Value="keys", Type="String")
    create_usage_table(dynamodb)
    ssm.put_parameter(Name="/llm-platform/dev/api/usage-table", Value="usage", Type="String")
    return Clients(ssm, dynamodb, apigateway)


def items(clients: Clients) -> list[dict[str, Any]]:
    pages = clients.dynamodb.get_paginator("scan").paginate(TableName="keys")
    return [item for page in pages for item in page["Items"] if "filler" not in item]


def plan_id(clients: Clients, plan: str) -> str:
    return str(clients.ssm.get_parameter(Name=f"/llm-platform/dev/api/usage-plans/{plan}")["Parameter"]["Value"])


def api_key_values(clients: Clients) -> list[str]:
    """Every value API Gateway returns to anyone with apigateway:GET."""
    return [k["value"] for k in clients.apigateway.get_api_keys(includeValues=True)["items"]]


def fill_beyond_one_scan_page(clients: Clients) -> None:
    """Over 1 MB of other (migrated) keys whose hashes sort first (moto scans in key order, as DynamoDB scans in
    its own order): one Scan call stops before any key made by a test."""
    for batch in range(12):
        requests = [{"PutRequest": {"Item": {
            "key_hash": {"S": f"{n:064x}"}, "key_id": {"S": new_key_id()}, "owner": {"S": "filler"},
            "plan": {"S": "standard"}, "status": {"S": "active"}, "usage_identifier": {"S": f"usage{n:064x}"},
            "filler": {"S": "x" * 4000}}}} for n in range(batch * 25, batch * 25 + 25)]  # fmt: skip
        clients.dynamodb.batch_write_item(RequestItems={"keys": requests})


def legacy_key(clients: Clients, owner: str = "erin", plan: str = "standard", status: str = "active") -> str:
    """A key as the admin command issued it before usage identifiers: its API Gateway key's value is the key."""
    key, key_id = new_key(), new_key_id()
    api_key = clients.apigateway.create_api_key(name=f"llm-platform-dev-{key_id}", enabled=True, value=key)
    clients.apigateway.create_usage_plan_key(usagePlanId=plan_id(clients, plan), keyId=api_key["id"],
                                             keyType="API_KEY")  # fmt: skip
    clients.dynamodb.put_item(TableName="keys", Item={
        "key_hash": {"S": key_hash(key)}, "key_id": {"S": key_id}, "owner": {"S": owner}, "plan": {"S": plan},
        "status": {"S": status}, "apigw_key_id": {"S": api_key["id"]}, "created_at": {"S": "2025-01-01T00:00:00+00:00"},
    })  # fmt: skip
    return key


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
    assert api_key["value"] == item["usage_identifier"]["S"] and api_key["enabled"] is True
    assert USAGE_IDENTIFIER.fullmatch(api_key["value"])
    premium = plan_id(clients, "premium")
    assert [k["id"] for k in clients.apigateway.get_usage_plan_keys(usagePlanId=premium)["items"]] == [api_key["id"]]


def test_api_gateway_never_holds_the_bearer_key(clients):
    """Anyone with apigateway:GET reads every API key's value: none of them may be a bearer key."""
    admin = KeyAdmin("dev", clients)
    keys = [admin.create("alice", "standard")[1] for _ in range(3)]
    values = api_key_values(clients)
    assert len(values) == 3 and not set(keys) & set(values)
    assert not any(KEY.search(value) for value in values)
    assert {i["usage_identifier"]["S"] for i in items(clients)} == set(values)


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


def test_revoke_finds_a_key_beyond_the_first_scan_page_through_the_index(clients, monkeypatch):
    fill_beyond_one_scan_page(clients)
    admin = KeyAdmin("dev", clients)
    key_id, key = admin.create("leaked", "standard")
    # The premise: one Scan call (what revoke did) does not reach the new key.
    first_page = clients.dynamodb.scan(TableName="keys", FilterExpression="key_id = :id",
                                       ExpressionAttributeValues={":id": {"S": key_id}})  # fmt: skip
    assert first_page["Items"] == [] and "LastEvaluatedKey" in first_page

    def no_scan(**_: Any) -> None:
        raise AssertionError("revoke must not scan the key table")

    monkeypatch.setattr(clients.dynamodb, "scan", no_scan)
    admin.revoke(key_id)
    item = clients.dynamodb.get_item(TableName="keys", Key={"key_hash": {"S": key_hash(key)}})["Item"]
    assert item["status"]["S"] == "revoked"
    assert item["usage_identifier"]["S"] not in api_key_values(clients)


def test_list_reads_every_page(clients):
    fill_beyond_one_scan_page(clients)
    key_id, _ = KeyAdmin("dev", clients).create("last", "standard")
    rows = KeyAdmin("dev", clients).list()
    assert len(rows) == 301 and key_id in [r["key_id"] for r in rows]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "--stage", "qa", "--owner", "a", "--plan", "standard"], "--stage must be one of dev, prod"),
        (["create", "--stage", "dev", "--owner", "a b", "--plan", "standard"], "--owner must be 1-128"),
        (["create", "--stage", "dev", "--owner", "a", "--plan", "gold"], "--plan must be one of premium, standard"),
        (["revoke", "--stage", "dev", "--key-id", "nope"], "--key-id must look like"),
        (["revoke", "--stage", "dev", "--key-id", "key_0000000000000000"], "No key key_0000000000000000"),
        (["list", "--stage", "prod"], "is the prod API deployed?"),
        (["limits", "--stage", "dev", "--key-id", "key_0000000000000000"], "Give --clear, or at least one of"),
        (
            ["limits", "--stage", "dev", "--key-id", "key_0000000000000000", "--tokens-per-day", "5", "--clear"],
            "Give --clear, or at least one of",
        ),
        (
            ["limits", "--stage", "dev", "--key-id", "key_0000000000000000", "--tokens-per-day", "0"],
            "The limits tokens_per_day must be a whole number of tokens from 1",
        ),
        (
            ["limits", "--stage", "dev", "--key-id", "key_0000000000000000", "--tokens-per-day", "2.5"],
            "The limits tokens_per_day must be a whole number of tokens",
        ),
        (
            ["limits", "--stage", "dev", "--key-id", "key_0000000000000000", "--cost-per-month-usd", "inf"],
            "The limits cost_per_month_usd must be a number or None",
        ),
        (
            ["limits", "--stage", "dev", "--key-id", "key_0000000000000000", "--tokens-per-day", "9"],
            "No key key_0000000000000000",
        ),
        (["usage", "--stage", "dev", "--month", "2026-13"], "--month must be a month as YYYY-MM"),
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


def test_migrate_moves_old_keys_off_their_plaintext_api_gateway_key(clients, capsys):
    fill_beyond_one_scan_page(clients)
    key = legacy_key(clients, plan="premium")
    revoked = legacy_key(clients, owner="frank", status="revoked")
    (old,) = [i for i in items(clients) if i["owner"]["S"] == "erin"]
    # Before: the key is API Gateway's value, and the authorizer refuses it rather than pass it on.
    assert key in api_key_values(clients) and record_from_item(old) is None

    assert main(["migrate", "--stage", "dev"], clients=clients) == 0
    assert capsys.readouterr().out == "migrated: 1, cleaned: 0, revoked: 1, skipped: 0\n"
    migrated = clients.dynamodb.get_item(TableName="keys", Key={"key_hash": {"S": key_hash(key)}})["Item"]
    usage_identifier = migrated["usage_identifier"]["S"]
    assert USAGE_IDENTIFIER.fullmatch(usage_identifier) and "legacy_apigw_key_id" not in migrated
    assert key not in api_key_values(clients) and revoked not in api_key_values(clients)
    new = clients.apigateway.get_api_key(apiKey=migrated["apigw_key_id"]["S"], includeValue=True)
    assert new["value"] == usage_identifier and new["id"] != old["apigw_key_id"]["S"]
    premium = plan_id(clients, "premium")
    assert new["id"] in [k["id"] for k in clients.apigateway.get_usage_plan_keys(usagePlanId=premium)["items"]]
    # The same bearer key now passes, and API Gateway is told its usage identifier.
    answer = authorize(f"Bearer {key}", "arn:aws:execute-api:us-east-1:1:a/v1/GET/models",
                       lambda hashed: record_from_item(clients.dynamodb.get_item(
                           TableName="keys", Key={"key_hash": {"S": hashed}})["Item"]))  # fmt: skip
    assert answer["usageIdentifierKey"] == usage_identifier

    # Idempotent: a second run finds nothing to do and registers nothing.
    count = len(api_key_values(clients))
    assert KeyAdmin("dev", clients).migrate() == {"migrated": 0, "cleaned": 0, "revoked": 1, "skipped": 0}
    assert len(api_key_values(clients)) == count


def test_migrate_interrupted_before_the_old_key_is_deleted_finishes_on_a_rerun(clients, monkeypatch):
    key = legacy_key(clients)
    real_delete = clients.apigateway.delete_api_key

    def fail(**_: Any) -> None:
        raise clients.apigateway.exceptions.TooManyRequestsException(
            {"Error": {"Code": "TooManyRequestsException", "Message": "x"}}, "DeleteApiKey"
        )

    monkeypatch.setattr(clients.apigateway, "delete_api_key", fail)
    with pytest.raises(Exception, match="TooManyRequests"):
        KeyAdmin("dev", clients).migrate()
    (item,) = items(clients)
    assert "usage_identifier" in item and item["legacy_apigw_key_id"]["S"]  # recorded, old key still there
    assert key in api_key_values(clients)

    monkeypatch.setattr(clients.apigateway, "delete_api_key", real_delete)
    assert KeyAdmin("dev", clients).migrate() == {"migrated": 0, "cleaned": 1, "revoked": 0, "skipped": 0}
    (item,) = items(clients)
    assert "legacy_apigw_key_id" not in item
    assert api_key_values(clients) == [item["usage_identifier"]["S"]]


def test_migrate_leaves_nothing_registered_when_recording_fails(clients, monkeypatch):
    key = legacy_key(clients)

    def fail(**_: Any) -> None:
        raise clients.dynamodb.exceptions.ProvisionedThroughputExceededException(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}, "UpdateItem"
        )

    monkeypatch.setattr(clients.dynamodb, "update_item", fail)
    with pytest.raises(Exception, match="ProvisionedThroughputExceeded"):
        KeyAdmin("dev", clients).migrate()
    assert api_key_values(clients) == [key]  # the new API Gateway key is gone again, the item untouched
    assert "usage_identifier" not in items(clients)[0]


def test_migrate_skips_a_key_revoked_meanwhile_and_deletes_the_key_it_registered(clients, monkeypatch):
    key = legacy_key(clients)
    admin = KeyAdmin("dev", clients)
    real_update = clients.dynamodb.update_item

    def revoke_first(**kwargs: Any) -> Any:
        monkeypatch.setattr(clients.dynamodb, "update_item", real_update)
        real_update(TableName="keys", Key={"key_hash": {"S": key_hash(key)}}, UpdateExpression="SET #s = :r",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":r": {"S": "revoked"}})  # fmt: skip
        return real_update(**kwargs)

    monkeypatch.setattr(clients.dynamodb, "update_item", revoke_first)
    assert admin.migrate() == {"migrated": 0, "cleaned": 0, "revoked": 0, "skipped": 1}
    assert api_key_values(clients) == [key]  # the old one: revoke (by id) deletes it
    assert "usage_identifier" not in items(clients)[0]


def _lookup(clients: Clients, key: str) -> Any:
    """What the authorizer reads for a bearer key."""
    found = clients.dynamodb.get_item(TableName="keys", Key={"key_hash": {"S": key_hash(key)}}).get("Item")
    return record_from_item(found)


def test_limits_give_a_key_its_own_and_the_authorizer_passes_them_on(clients, capsys):
    admin = KeyAdmin("dev", clients)
    key_id, key = admin.create("alice", "standard")
    capsys.readouterr()
    argv = ["limits", "--stage", "dev", "--key-id", key_id, "--tokens-per-day", "50000", "--cost-per-month-usd", "2.5"]
    assert main(argv, clients=clients) == 0
    assert '{"cost_per_month_usd": 2.5, "tokens_per_day": 50000}' in capsys.readouterr().out
    # A second call changes one field and keeps the other; `none` is no limit (over the plan's).
    assert main(["limits", "--stage", "dev", "--key-id", key_id, "--cost-per-month-usd", "none"], clients=clients) == 0
    answer = authorize(f"Bearer {key}", "arn:aws:execute-api:us-east-1:123456789012:a/v1/GET/usage",
                       lambda hashed: _lookup(clients, key))  # fmt: skip
    assert json.loads(answer["context"]["limits"]) == {"cost_per_month_usd": None, "tokens_per_day": 50000}
    assert main(["limits", "--stage", "dev", "--key-id", key_id, "--clear"], clients=clients) == 0
    assert "none (its plan applies)" in capsys.readouterr().out.splitlines()[-1]
    assert _lookup(clients, key).limits == "" and "limits" not in items(clients)[0]


def test_limits_refuse_a_revoked_key(clients, capsys):
    admin = KeyAdmin("dev", clients)
    key_id, _ = admin.create("alice", "standard")
    admin.revoke(key_id)
    capsys.readouterr()
    assert main(["limits", "--stage", "dev", "--key-id", key_id, "--tokens-per-day", "5"], clients=clients) == 2
    assert "is revoked" in capsys.readouterr().err


def test_limits_set_while_another_operator_changed_them_are_refused_not_lost(clients, monkeypatch):
    admin = KeyAdmin("dev", clients)
    key_id, key = admin.create("alice", "standard")
    real_get = clients.dynamodb.get_item

    def read_then_someone_else_writes(**kwargs: Any) -> Any:
        found = real_get(**kwargs)
        clients.dynamodb.update_item(TableName="keys", Key={"key_hash": {"S": key_hash(key)}},
                                     UpdateExpression="SET limits = :l",
                                     ExpressionAttributeValues={":l": {"S": '{"tokens_per_day": 7}'}})  # fmt: skip
        return found

    monkeypatch.setattr(clients.dynamodb, "get_item", read_then_someone_else_writes)
    with pytest.raises(ToolError, match="changed while its limits were set"):
        admin.set_limits(key_id, {"tokens_per_minute": 100})
    assert _lookup(clients, key).limits == '{"tokens_per_day": 7}'


def test_usage_lists_every_keys_tokens_and_spend_this_month(clients, capsys):
    admin = KeyAdmin("dev", clients)
    spender, _ = admin.create("alice", "standard")
    idle, _ = admin.create("bob", "premium")
    spent = Budget(clients.dynamodb, "usage")
    spent.settle(spent.reserve(s.key_principal(spender), s.Limits(), 1_000, 9_000), 640, 1_234)
    capsys.readouterr()
    assert main(["usage", "--stage", "dev"], clients=clients) == 0
    out = capsys.readouterr().out
    header, *rows = [line.split("\t") for line in out.splitlines()]
    assert header == ["key_id", "owner", "plan", "status", "tokens_this_month", "tokens_today", "cost_this_month_usd"]
    assert rows == [[spender, "alice", "standard", "active", "640", "640", "0.001234"],
                    [idle, "bob", "premium", "active", "0", "0", "0.000000"]]  # fmt: skip
    assert KEY_PREFIX not in out
    past = KeyAdmin("dev", clients).usage("2025-01")
    assert [r["tokens_this_month"] for r in past] == ["0", "0"]
