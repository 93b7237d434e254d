"""API keys: their format, how they are made and how they are stored (a SHA-256 hash, never the key).

API Gateway checks the Authorization header against AUTHORIZATION_HEADER_REGEX before the authorizer
runs; the authorizer and the admin command use the same definitions, so a key the admin command makes is
always one the gateway lets through.

API Gateway applies a usage plan to the API key whose value the authorizer names (``usageIdentifierKey``).
That value is a usage identifier of its own, random and of another shape than a key (it can never pass
the header rule), kept in the key's item: API Gateway (and anyone with ``apigateway:GET``) never sees the
bearer key, which exists nowhere but as its hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any, NamedTuple

KEY_PREFIX = "sk-llm-"
# secrets.token_urlsafe(32): 256 random bits as 43 URL-safe base64 characters.
_KEY_BYTES = 32
KEY_BODY = "[A-Za-z0-9_-]{43}"
KEY = re.compile(re.escape(KEY_PREFIX) + KEY_BODY)
BEARER = "Bearer "
# The same rule for API Gateway (Java regex); the prefix has no character that needs escaping.
AUTHORIZATION_HEADER_REGEX = f"^{BEARER}{KEY_PREFIX}{KEY_BODY}$"
KEY_ID = re.compile("key_[0-9a-f]{16}")


def new_key() -> str:
    """A new API key: the prefix and 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)


def new_key_id() -> str:
    """The public id of a key, shown in logs and the audit log instead of the key."""
    return "key_" + secrets.token_hex(8)


# A value API Gateway accepts for an API key (20-128 characters); hex, so no character can surprise it.
USAGE_IDENTIFIER_PREFIX = "usage"
USAGE_IDENTIFIER = re.compile(USAGE_IDENTIFIER_PREFIX + "[0-9a-f]{64}")


def new_usage_identifier() -> str:
    """The value of a key's API Gateway API key: 256 random bits, unrelated to the key."""
    return USAGE_IDENTIFIER_PREFIX + secrets.token_hex(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_from_header(value: object) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` value, or None when it has any other shape."""
    if not isinstance(value, str) or not value.startswith(BEARER):
        return None
    key = value[len(BEARER) :]
    return key if KEY.fullmatch(key) else None


# The key table: one item per key, addressed by the SHA-256 of the key (HASH_ATTRIBUTE), never the key,
# and found by its id through a global secondary index (KEY_ID_INDEX, projecting only the table key).
HASH_ATTRIBUTE = "key_hash"
KEY_ID_ATTRIBUTE = "key_id"
KEY_ID_INDEX = "by-key-id"
USAGE_ATTRIBUTE = "usage_identifier"
# A key's own budget limits (KeyRecord.limits), set by `python -m tools.keys limits`.
LIMITS_ATTRIBUTE = "limits"
ACTIVE = "active"
REVOKED = "revoked"


class KeyRecord(NamedTuple):
    """What the table knows of a key (each field is a string attribute of its item).

    An item without a usage identifier (a key issued before there was one) is no KeyRecord: such a key is
    refused until ``python -m tools.keys migrate`` gives it one.
    """

    key_id: str
    owner: str
    plan: str
    status: str
    usage_identifier: str
    # The key's own budget limits (JSON, lambda_src/contracts/spend.py), set by `python -m tools.keys limits`;
    # empty: its plan's.
    limits: str = ""


def item_key(hashed: str) -> dict[str, dict[str, str]]:
    """The DynamoDB key (low-level attribute-value form) of the item of the key with this hash."""
    return {HASH_ATTRIBUTE: {"S": hashed}}


def record_item(hashed: str, record: KeyRecord) -> dict[str, dict[str, str]]:
    """The item the admin command writes for a key (it may add attributes of its own)."""
    return {**item_key(hashed), **{field: {"S": value} for field, value in record._asdict().items() if value}}


_OPTIONAL = frozenset(KeyRecord._field_defaults)


def record_from_item(item: dict[str, Any] | None) -> KeyRecord | None:
    """A DynamoDB item as a KeyRecord; None when there is none or it is malformed."""
    if not item:
        return None
    try:
        return KeyRecord(**{field: item[field]["S"] for field in KeyRecord._fields
                            if field in item or field not in _OPTIONAL})  # fmt: skip
    except (KeyError, TypeError):
        return None
