"""Admin command for the inference API's keys: create (printed once), list, revoke.

    python -m tools.keys create --stage dev --owner alice --plan standard
    python -m tools.keys list --stage dev
    python -m tools.keys revoke --stage dev --key-id key_0123456789abcdef

A key is stored only as its SHA-256 in the stage's key table, and registered as an API Gateway API key in
the chosen usage plan (API Gateway needs the value to apply the plan's throttle and quota). It never
enters a template. Uses the standard AWS credential chain and region of the shell.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from lambda_src.contracts import parameters
from lambda_src.contracts.keys import (
    ACTIVE,
    HASH_ATTRIBUTE,
    KEY_ID,
    REVOKED,
    KeyRecord,
    item_key,
    key_hash,
    new_key,
    new_key_id,
    record_item,
)
from lambda_src.contracts.naming import APP_NAME
from stacks.stages import STAGES

_OWNER = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")


class KeyToolError(Exception):
    """A problem to report to the operator in one sentence."""


@dataclass(frozen=True)
class Clients:
    ssm: Any
    dynamodb: Any
    apigateway: Any

    @classmethod
    def default(cls, region: str | None) -> Clients:
        session = boto3.session.Session(region_name=region)
        return cls(session.client("ssm"), session.client("dynamodb"), session.client("apigateway"))


class KeyAdmin:
    def __init__(self, stage: str, clients: Clients) -> None:
        if stage not in STAGES:
            raise KeyToolError(f"--stage must be one of {', '.join(sorted(STAGES))} (got {stage!r}).")
        self.stage = stage
        self.clients = clients

    def _parameter(self, relative: str, what: str) -> str:
        name = parameters.parameter_name(self.stage, relative)
        try:
            return str(self.clients.ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
                raise KeyToolError(f"{what} not found at {name}: is the {self.stage} API deployed?") from None
            raise

    def plans(self) -> dict[str, str]:
        path = parameters.parameter_name(self.stage, parameters.USAGE_PLANS)
        found = self.clients.ssm.get_parameters_by_path(Path=path)["Parameters"]
        return {p["Name"].rsplit("/", 1)[1]: p["Value"] for p in found}

    def create(self, owner: str, plan: str) -> tuple[str, str]:
        """Register a new key; returns (key_id, key). The key is shown once and never stored."""
        if not _OWNER.match(owner):
            raise KeyToolError("--owner must be 1-128 letters, digits or ._@+- (it identifies the caller in logs).")
        table = self._parameter(parameters.KEY_TABLE, "The key table")
        plans = self.plans()
        if plan not in plans:
            raise KeyToolError(f"--plan must be one of {', '.join(sorted(plans)) or '(none deployed)'} (got {plan!r}).")
        key = new_key()
        key_id = new_key_id()
        api_key = self.clients.apigateway.create_api_key(
            name=f"{APP_NAME}-{self.stage}-{key_id}", description=f"owner {owner}, plan {plan}", enabled=True, value=key
        )
        try:
            self.clients.apigateway.create_usage_plan_key(
                usagePlanId=plans[plan], keyId=api_key["id"], keyType="API_KEY"
            )
            self.clients.dynamodb.put_item(
                TableName=table,
                Item={
                    **record_item(key_hash(key), KeyRecord(key_id=key_id, owner=owner, plan=plan, status=ACTIVE)),
                    "apigw_key_id": {"S": api_key["id"]},
                    "created_at": {"S": _now()},
                },
                ConditionExpression=f"attribute_not_exists({HASH_ATTRIBUTE})",
            )
        except (ClientError, BotoCoreError):
            # Leave nothing half-registered behind.
            self.clients.apigateway.delete_api_key(apiKey=api_key["id"])
            raise
        return key_id, key

    def list(self) -> list[dict[str, str]]:
        table = self._parameter(parameters.KEY_TABLE, "The key table")
        rows: list[dict[str, str]] = []
        paginator = self.clients.dynamodb.get_paginator("scan")
        fields = [*KeyRecord._fields, "created_at", "revoked_at"]
        for page in paginator.paginate(TableName=table, ProjectionExpression=", ".join(f"#{f}" for f in fields),
                                       ExpressionAttributeNames={f"#{f}": f for f in fields}):  # fmt: skip
            rows += [{f: item.get(f, {}).get("S", "") for f in fields} for item in page["Items"]]
        return sorted(rows, key=lambda r: r["created_at"])

    def revoke(self, key_id: str) -> None:
        if not KEY_ID.fullmatch(key_id):
            raise KeyToolError(f"--key-id must look like key_0123456789abcdef (got {key_id!r}).")
        table = self._parameter(parameters.KEY_TABLE, "The key table")
        items = self.clients.dynamodb.scan(
            TableName=table,
            FilterExpression="key_id = :id",
            ExpressionAttributeValues={":id": {"S": key_id}},
        )["Items"]
        if not items:
            raise KeyToolError(f"No key {key_id} in the {self.stage} key table.")
        item = items[0]
        self.clients.dynamodb.update_item(
            TableName=table,
            Key=item_key(item[HASH_ATTRIBUTE]["S"]),
            UpdateExpression="SET #s = :revoked, revoked_at = :now",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":revoked": {"S": REVOKED}, ":now": {"S": _now()}},
        )
        apigw_key = item.get("apigw_key_id", {}).get("S")
        if apigw_key:
            try:
                self.clients.apigateway.delete_api_key(apiKey=apigw_key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "NotFoundException":
                    raise


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def main(argv: Sequence[str] | None = None, clients: Clients | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.keys", description=__doc__.splitlines()[0])
    parser.add_argument("--region", help="AWS region of the deployment (default: the shell's)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--stage", required=True)
    create.add_argument("--owner", required=True)
    create.add_argument("--plan", required=True)
    listing = commands.add_parser("list", help="list keys (ids and owners, never the keys)")
    listing.add_argument("--stage", required=True)
    revoke = commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("--stage", required=True)
    revoke.add_argument("--key-id", required=True)
    args = parser.parse_args(argv)
    try:
        admin = KeyAdmin(args.stage, clients or Clients.default(args.region))
        if args.command == "create":
            key_id, key = admin.create(args.owner, args.plan)
            print(f"key id: {key_id}\nAPI key (shown once, store it now): {key}")
        elif args.command == "list":
            for row in admin.list():
                print("\t".join(row[f] for f in (*KeyRecord._fields, "created_at", "revoked_at")))
        else:
            admin.revoke(args.key_id)
            print(f"revoked {args.key_id} (cached authorizations expire within the stage's authorizer cache TTL)")
    except KeyToolError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"Error: AWS refused the call: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
