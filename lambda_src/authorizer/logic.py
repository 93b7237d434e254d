"""How a token is judged: only an active key passes (its format and hash come from lambda_src/contracts/keys.py).

The authorizer returns the key's usage identifier (never the key) as ``usageIdentifierKey``, so API Gateway
applies the key's usage plan (throttle and daily quota) to the API key of that value, and the key's id and
owner as context for the API and its audit log. A key without a usage identifier is refused: its API
Gateway key would be the bearer key itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambda_src.contracts.api import CONTEXT_KEY_ID, CONTEXT_LIMITS, CONTEXT_OWNER, CONTEXT_PLAN
from lambda_src.contracts.keys import ACTIVE, USAGE_IDENTIFIER, KeyRecord, key_from_header, key_hash


class UnauthorizedError(Exception):
    """API Gateway answers 401 when a TOKEN authorizer raises with exactly this message."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def authorize(token: Any, method_arn: Any, lookup: Callable[[str], KeyRecord | None]) -> dict[str, Any]:
    """An Allow policy for the whole API stage, or UnauthorizedError for anything but an active key."""
    key = key_from_header(token)
    if key is None or not isinstance(method_arn, str):
        raise UnauthorizedError()
    record = lookup(key_hash(key))
    if record is None or record.status != ACTIVE or not USAGE_IDENTIFIER.fullmatch(record.usage_identifier):
        raise UnauthorizedError()
    return {
        "principalId": record.key_id,
        "policyDocument": {
            "Version": "2012-10-17",
            # The whole stage: API Gateway caches this answer per token and reuses it for every route.
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": stage_arn(method_arn)}],
        },
        "usageIdentifierKey": record.usage_identifier,
        # The key's own limits travel with the cached answer: a change applies within the authorizer cache's TTL.
        "context": {
            CONTEXT_KEY_ID: record.key_id,
            CONTEXT_OWNER: record.owner,
            CONTEXT_PLAN: record.plan,
            CONTEXT_LIMITS: record.limits,
        },
    }


def stage_arn(method_arn: str) -> str:
    """arn:aws:execute-api:region:account:api-id/stage/METHOD/path -> .../api-id/stage/*/*"""
    prefix, _, rest = method_arn.partition(":execute-api:")
    parts = rest.split("/")
    if not prefix.startswith("arn:") or len(parts) < 2 or not parts[0] or not parts[1]:
        raise UnauthorizedError()
    return f"{prefix}:execute-api:{parts[0]}/{parts[1]}/*/*"
