"""Admin command for the inference API's keys: create (printed once), list, revoke, migrate, limits, usage.

    python -m tools.keys create --stage dev --owner alice --plan standard
    python -m tools.keys list --stage dev
    python -m tools.keys revoke --stage dev --key-id key_0123456789abcdef
    python -m tools.keys migrate --stage dev
    python -m tools.keys limits --stage dev --key-id key_0123456789abcdef --tokens-per-day 50000 \
        --cost-per-month-usd none
    python -m tools.keys limits --stage dev --key-id key_0123456789abcdef --clear
    python -m tools.keys usage --stage dev [--month 2026-12]

A key is stored only as its SHA-256 in the stage's key table. API Gateway applies the chosen usage plan to
an API key whose value is the key's random usage identifier (kept in the key's item), never the key, so
nothing API Gateway returns reveals a key. `migrate` gives the keys issued before usage identifiers existed
(their API Gateway key's value was the key) a usage identifier and deletes their old API Gateway key. A key
never enters a template. `limits` gives one key limits of its own over its plan's (a value per field, `none` for no
limit; `--clear` goes back to the plan's), effective within the authorizer cache's TTL; `usage` lists every key's
tokens and spend of a UTC month from the budgets' usage table. Uses the standard AWS credential chain and region of
the shell.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from lambda_src.contracts import parameters
from lambda_src.contracts import spend as s
from lambda_src.contracts.keys import (
    ACTIVE,
    HASH_ATTRIBUTE,
    KEY_ID,
    KEY_ID_ATTRIBUTE,
    KEY_ID_INDEX,
    LIMITS_ATTRIBUTE,
    REVOKED,
    USAGE_ATTRIBUTE,
    KeyRecord,
    item_key,
    key_hash,
    new_key,
    new_key_id,
    new_usage_identifier,
    record_item,
)
from lambda_src.contracts.naming import APP_NAME
from tools.operator import ToolError, check_stage, error_code, run_command, stage_parameter

_OWNER = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")
# Attributes the admin command adds to a key's item: the id of its API Gateway key; during `migrate`, the id
# of the API Gateway key registered before usage identifiers (its value is the bearer key) until it is gone.
APIGW_KEY_ATTRIBUTE = "apigw_key_id"
LEGACY_APIGW_KEY_ATTRIBUTE = "legacy_apigw_key_id"
LIST_FIELDS = ("key_id", "owner", "plan", "status", "created_at", "revoked_at")
USAGE_FIELDS = ("key_id", "owner", "plan", "status", "tokens_this_month", "tokens_today", "cost_this_month_usd")
_MONTH = re.compile(r"^(20\d\d)-(0[1-9]|1[0-2])$")
# Keys of one BatchGetItem call (DynamoDB's limit).
_BATCH = 100


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
        check_stage(stage)
        self.stage = stage
        self.clients = clients

    def _parameter(self, relative: str, what: str) -> str:
        return stage_parameter(self.clients.ssm, self.stage, relative,
                               f"{what} not found at {{name}}: is the {self.stage} API deployed?")  # fmt: skip

    def plans(self) -> dict[str, str]:
        path = parameters.parameter_name(self.stage, parameters.USAGE_PLANS)
        found = self.clients.ssm.get_parameters_by_path(Path=path)["Parameters"]
        return {p["Name"].rsplit("/", 1)[1]: p["Value"] for p in found}

    def create(self, owner: str, plan: str) -> tuple[str, str]:
        """Register a new key; returns (key_id, key). The key is shown once and never stored."""
        if not _OWNER.match(owner):
            raise ToolError("--owner must be 1-128 letters, digits or ._@+- (it identifies the caller in logs).")
        table = self._parameter(parameters.KEY_TABLE, "The key table")
        plans = self.plans()
        if plan not in plans:
            raise ToolError(f"--plan must be one of {', '.join(sorted(plans)) or '(none deployed)'} (got {plan!r}).")
        key = new_key()
        key_id = new_key_id()
        usage_identifier = new_usage_identifier()
        record = KeyRecord(key_id=key_id, owner=owner, plan=plan, status=ACTIVE, usage_identifier=usage_identifier)
        with self._registered(key_id, owner, plan, plans[plan], usage_identifier) as apigw_key:
            self.clients.dynamodb.put_item(
                TableName=table,
                Item={
                    **record_item(key_hash(key), record),
                    APIGW_KEY_ATTRIBUTE: {"S": apigw_key},
                    "created_at": {"S": _now()},
                },
                ConditionExpression=f"attribute_not_exists({HASH_ATTRIBUTE})",
            )
        return key_id, key

    @contextlib.contextmanager
    def _registered(self, key_id: str, owner: str, plan: str, plan_id: str, usage_identifier: str) -> Iterator[str]:
        """An API Gateway key of value ``usage_identifier`` in the usage plan, deleted again if the body fails."""
        api_key = self.clients.apigateway.create_api_key(
            name=f"{APP_NAME}-{self.stage}-{key_id}",
            description=f"owner {owner}, plan {plan}",
            enabled=True,
            value=usage_identifier,
        )
        try:
            self.clients.apigateway.create_usage_plan_key(usagePlanId=plan_id, keyId=api_key["id"], keyType="API_KEY")
            yield str(api_key["id"])
        except (ClientError, BotoCoreError):
            # Leave nothing half-registered behind.
            self._delete_api_key(api_key["id"])
            raise

    def _delete_api_key(self, apigw_key: str) -> None:
        try:
            self.clients.apigateway.delete_api_key(apiKey=apigw_key)
        except ClientError as error:
            if error_code(error) != "NotFoundException":
                raise

    def _scan(self, table: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for page in self.clients.dynamodb.get_paginator("scan").paginate(TableName=table, **kwargs):
            yield from page["Items"]

    def list(self) -> list[dict[str, str]]:
        """Every key's id, owner, plan, status and dates (a paginated scan: listing reads the whole table)."""
        table = self._parameter(parameters.KEY_TABLE, "The key table")
        items = self._scan(table, ProjectionExpression=", ".join(f"#{f}" for f in LIST_FIELDS),
                           ExpressionAttributeNames={f"#{f}": f for f in LIST_FIELDS})  # fmt: skip
        rows = [{f: item.get(f, {}).get("S", "") for f in LIST_FIELDS} for item in items]
        return sorted(rows, key=lambda r: r["created_at"])

    def _hashes_of(self, table: str, key_id: str, command: str) -> Sequence[str]:
        """The table keys of the item(s) of ``key_id``, found through the table's index of key ids."""
        if not KEY_ID.fullmatch(key_id):
            raise ToolError(f"--key-id must look like key_0123456789abcdef (got {key_id!r}).")
        pages = self.clients.dynamodb.get_paginator("query").paginate(
            TableName=table,
            IndexName=KEY_ID_INDEX,
            KeyConditionExpression="#id = :id",
            ExpressionAttributeNames={"#id": KEY_ID_ATTRIBUTE},
            ExpressionAttributeValues={":id": {"S": key_id}},
        )
        hashes = [item[HASH_ATTRIBUTE]["S"] for page in pages for item in page["Items"]]
        if not hashes:
            raise ToolError(f"No key {key_id} in the {self.stage} key table (a key made seconds ago may not "
                            f"be indexed yet: run {command} again).")  # fmt: skip
        return hashes

    def revoke(self, key_id: str) -> None:
        """Mark the key revoked (found by id through the table's index) and delete its API Gateway key."""
        table = self._parameter(parameters.KEY_TABLE, "The key table")
        for hashed in self._hashes_of(table, key_id, "revoke"):
            try:
                item = self.clients.dynamodb.update_item(
                    TableName=table,
                    Key=item_key(hashed),
                    UpdateExpression="SET #s = :revoked, revoked_at = :now",
                    ConditionExpression=f"attribute_exists({HASH_ATTRIBUTE})",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":revoked": {"S": REVOKED}, ":now": {"S": _now()}},
                    ReturnValues="ALL_NEW",
                )["Attributes"]
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    continue  # deleted since the index was read
                raise
            for attribute in (APIGW_KEY_ATTRIBUTE, LEGACY_APIGW_KEY_ATTRIBUTE):
                apigw_key = item.get(attribute, {}).get("S")
                if apigw_key:
                    self._delete_api_key(apigw_key)

    def set_limits(self, key_id: str, changes: dict[str, Any], *, clear: bool = False) -> dict[str, Any]:
        """Merge ``changes`` (limit field -> a number, or None for no limit) into the key's own limits, or drop them
        all (``clear``: the plan's apply again); returns the key's own limits now. Each update is conditional on the
        limits read, so two operators at once cannot lose one's change."""
        problem = s.limits_problem(changes)
        if problem:
            raise ToolError(f"The limits {problem}.")
        table = self._parameter(parameters.KEY_TABLE, "The key table")
        result: dict[str, Any] = {}
        for hashed in self._hashes_of(table, key_id, "limits"):
            item = self.clients.dynamodb.get_item(TableName=table, Key=item_key(hashed), ConsistentRead=True)["Item"]
            if item.get("status", {}).get("S") == REVOKED:
                raise ToolError(f"The key {key_id} is revoked: its limits no longer matter.")
            old = item.get(LIMITS_ATTRIBUTE, {}).get("S")
            result = {} if clear else {**s.overrides_from_json(old or ""), **changes}
            values: dict[str, Any] = {}
            update = "REMOVE #l"
            if result:
                update, values[":new"] = "SET #l = :new", {"S": json.dumps(result, sort_keys=True)}
            condition = "attribute_not_exists(#l)"
            if old is not None:
                condition, values[":old"] = "#l = :old", {"S": old}
            optional = {"ExpressionAttributeValues": values} if values else {}  # DynamoDB refuses an empty map
            try:
                self.clients.dynamodb.update_item(
                    TableName=table,
                    Key=item_key(hashed),
                    UpdateExpression=update,
                    ConditionExpression=f"attribute_exists(#h) AND {condition}",
                    ExpressionAttributeNames={"#l": LIMITS_ATTRIBUTE, "#h": HASH_ATTRIBUTE},
                    **optional,
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    raise ToolError(f"The key {key_id} changed while its limits were set: run limits again.") from None
                raise
        return result

    def usage(self, month: str | None = None) -> Sequence[dict[str, str]]:
        """Every key's tokens and cost in a UTC month (this month unless ``month`` is YYYY-MM), from the usage table;
        today's tokens for this month. Keys that used nothing show zeros."""
        now = dt.datetime.now(dt.UTC)
        this_month = f"{now.year:04d}-{now.month:02d}"
        if month is not None and not _MONTH.match(month):
            raise ToolError(f"--month must be a month as YYYY-MM, such as {this_month} (got {month!r}).")
        month = month or this_month
        keys = self.list()
        usage_table = self._parameter(parameters.USAGE_TABLE, "The usage table")
        counters: dict[str, dict[str, Any]] = {}
        principals = [s.key_principal(row["key_id"]) for row in keys]
        for start in range(0, len(principals), _BATCH):
            request = {usage_table: {"Keys": [{s.PRINCIPAL: {"S": p}, s.PERIOD: {"S": s.MONTH_PREFIX + month}}
                                              for p in principals[start:start + _BATCH]]}}  # fmt: skip
            while request:
                found = self.clients.dynamodb.batch_get_item(RequestItems=request)
                for item in found.get("Responses", {}).get(usage_table, []):
                    counters[item[s.PRINCIPAL]["S"]] = item
                request = found.get("UnprocessedKeys") or {}
        rows = []
        for row in keys:
            item = counters.get(s.key_principal(row["key_id"]), {})
            today = _count(item, f"{s.DAY_PREFIX}{now.day:02d}") if month == this_month else 0
            rows.append({**row, "tokens_this_month": str(_count(item, s.TOKENS)), "tokens_today": str(today),
                         "cost_this_month_usd": f"{_count(item, s.COST) / s.MICRO:.6f}"})  # fmt: skip
        return sorted(rows, key=lambda r: -float(r["cost_this_month_usd"]))

    def migrate(self) -> dict[str, int]:
        """Give every key issued before usage identifiers existed one, and delete its old API Gateway key.

        Per key, in an order that is safe to interrupt and re-run: register a new API Gateway key (a fresh
        usage identifier) in the key's plan; record it in the item together with the old key's id, on
        condition that the item is still active and unmigrated (otherwise the new key is deleted again);
        delete the old API Gateway key (whose value is the bearer key); remove the old id from the item.
        A re-run finds keys without a usage identifier and keys whose old API Gateway key is still recorded.
        Revoked keys get no usage identifier; their old API Gateway key is deleted.
        """
        table = self._parameter(parameters.KEY_TABLE, "The key table")
        plans = self.plans()
        counts = {"migrated": 0, "cleaned": 0, "revoked": 0, "skipped": 0}
        pending = self._scan(
            table,
            FilterExpression="attribute_not_exists(#u) OR attribute_exists(#legacy)",
            ExpressionAttributeNames={"#u": USAGE_ATTRIBUTE, "#legacy": LEGACY_APIGW_KEY_ATTRIBUTE},
        )
        for item in pending:
            hashed = item[HASH_ATTRIBUTE]["S"]
            old_key = item.get(APIGW_KEY_ATTRIBUTE, {}).get("S", "")
            if USAGE_ATTRIBUTE in item:
                # Interrupted after recording: only the old API Gateway key is left to delete.
                self._drop_legacy_key(table, hashed, item[LEGACY_APIGW_KEY_ATTRIBUTE]["S"])
                counts["cleaned"] += 1
            elif item.get("status", {}).get("S") != ACTIVE:
                if old_key:
                    self._delete_api_key(old_key)
                counts["revoked"] += 1
            elif self._migrate_one(table, item, plans, old_key):
                if old_key:
                    self._drop_legacy_key(table, hashed, old_key)
                counts["migrated"] += 1
            else:
                counts["skipped"] += 1
        return counts

    def _migrate_one(self, table: str, item: dict[str, Any], plans: dict[str, str], old_key: str) -> bool:
        """Register and record a usage identifier for one unmigrated active key; False if it changed meanwhile."""
        key_id, plan, owner = (item.get(f, {}).get("S", "") for f in ("key_id", "plan", "owner"))
        if plan not in plans:
            raise ToolError(f"Key {key_id} is on plan {plan!r}, which the {self.stage} API does not deploy.")
        usage_identifier = new_usage_identifier()
        try:
            with self._registered(key_id, owner, plan, plans[plan], usage_identifier) as apigw_key:
                legacy = f", {LEGACY_APIGW_KEY_ATTRIBUTE} = :old" if old_key else ""
                self.clients.dynamodb.update_item(
                    TableName=table,
                    Key=item_key(item[HASH_ATTRIBUTE]["S"]),
                    UpdateExpression=f"SET #u = :u, {APIGW_KEY_ATTRIBUTE} = :new{legacy}",
                    ConditionExpression="attribute_exists(#h) AND attribute_not_exists(#u) AND #s = :active",
                    ExpressionAttributeNames={"#u": USAGE_ATTRIBUTE, "#h": HASH_ATTRIBUTE, "#s": "status"},
                    ExpressionAttributeValues={
                        ":u": {"S": usage_identifier},
                        ":new": {"S": apigw_key},
                        ":active": {"S": ACTIVE},
                        **({":old": {"S": old_key}} if old_key else {}),
                    },
                )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False  # revoked, deleted or migrated by someone else since the scan; the new key is gone
            raise
        return True

    def _drop_legacy_key(self, table: str, hashed: str, old_key: str) -> None:
        """Delete the API Gateway key whose value is the bearer key, then forget its id."""
        self._delete_api_key(old_key)
        self.clients.dynamodb.update_item(
            TableName=table,
            Key=item_key(hashed),
            UpdateExpression=f"REMOVE {LEGACY_APIGW_KEY_ATTRIBUTE}",
            ConditionExpression=f"{LEGACY_APIGW_KEY_ATTRIBUTE} = :old",
            ExpressionAttributeValues={":old": {"S": old_key}},
        )


def _count(item: dict[str, Any], name: str) -> int:
    """A counter of a usage table item (0 when the period has none)."""
    return int(item.get(name, {}).get("N", "0"))


# A limit the operator did not give (None is `none`: no limit).
_UNSET: Any = object()


def _limit_value(text: str) -> float | int | None:
    if text.strip().lower() == "none":
        return None
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or none (got {text!r})") from None
    return int(number) if number.is_integer() and "." not in text else number


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
    migrate = commands.add_parser("migrate", help="give keys issued before usage identifiers one (idempotent)")
    migrate.add_argument("--stage", required=True)
    limits = commands.add_parser("limits", help="set a key's own token and cost limits over its plan's")
    limits.add_argument("--stage", required=True)
    limits.add_argument("--key-id", required=True)
    for field in s.LIMIT_FIELDS:
        limits.add_argument(f"--{field.replace('_', '-')}", dest=field, type=_limit_value, default=_UNSET,
                            help="a number, or 'none' for no limit (default: unchanged)")  # fmt: skip
    limits.add_argument("--clear", action="store_true", help="drop the key's own limits: its plan's apply")
    usage = commands.add_parser("usage", help="every key's tokens and cost this month (UTC)")
    usage.add_argument("--stage", required=True)
    usage.add_argument("--month", help="a past month as YYYY-MM (kept 13 months)")
    args = parser.parse_args(argv)

    def command() -> int:
        admin = KeyAdmin(args.stage, clients or Clients.default(args.region))
        if args.command == "create":
            key_id, key = admin.create(args.owner, args.plan)
            print(f"key id: {key_id}\nAPI key (shown once, store it now): {key}")
        elif args.command == "list":
            for row in admin.list():
                print("\t".join(row[f] for f in LIST_FIELDS))
        elif args.command == "migrate":
            counts = admin.migrate()
            print(", ".join(f"{what}: {n}" for what, n in counts.items()))
        elif args.command == "limits":
            changes = {f: getattr(args, f) for f in s.LIMIT_FIELDS if getattr(args, f) is not _UNSET}
            if bool(changes) == args.clear:
                raise ToolError("Give --clear, or at least one of --" + ", --".join(
                    f.replace("_", "-") for f in s.LIMIT_FIELDS) + " (a number, or none).")  # fmt: skip
            own = admin.set_limits(args.key_id, changes, clear=args.clear)
            print(f"{args.key_id}: own limits {json.dumps(own, sort_keys=True) if own else 'none (its plan applies)'}"
                  "; effective within the stage's authorizer cache TTL")  # fmt: skip
        elif args.command == "usage":
            print("\t".join(USAGE_FIELDS))
            for row in admin.usage(args.month):
                print("\t".join(row[f] for f in USAGE_FIELDS))
        else:
            admin.revoke(args.key_id)
            print(f"revoked {args.key_id} (cached authorizations expire within the stage's authorizer cache TTL)")
        return 0

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main())
