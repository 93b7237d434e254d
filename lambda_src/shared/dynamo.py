"""What the functions' DynamoDB adapters share: items as plain JSON values, and a failed condition."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    """DynamoDB's Decimals as int or float, in nested maps and lists too (for JSON and the state machine)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def condition_failed(error: Exception) -> bool:
    """A ClientError for a write whose ConditionExpression did not hold."""
    response = getattr(error, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
