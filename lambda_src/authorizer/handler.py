"""Lambda entry point of the TOKEN authorizer. Logs the outcome and key id, never the token."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config

from lambda_src.authorizer.logic import UnauthorizedError, authorize
from lambda_src.contracts.environment import AuthorizerEnvironment
from lambda_src.contracts.keys import KeyRecord, item_key, record_from_item

ENV = AuthorizerEnvironment.from_environment()
LOGGER = Logger()
TABLE = ENV.key_table_name
# The authorizer runs before every uncached request: fail fast rather than hold the caller.
DYNAMODB = boto3.client(
    "dynamodb", config=Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2})
)


def lookup(hashed: str) -> KeyRecord | None:
    item = DYNAMODB.get_item(TableName=TABLE, Key=item_key(hashed)).get("Item")
    return record_from_item(item)


@LOGGER.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        answer = authorize(event.get("authorizationToken"), event.get("methodArn"), lookup)
    except UnauthorizedError:
        LOGGER.info("denied")
        raise
    LOGGER.info("allowed", extra={"key_id": answer["principalId"]})
    return answer
