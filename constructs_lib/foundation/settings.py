"""What every capability's settings share (CDK-free): the error type, the validation protocol and checks.

A capability's ``settings.py`` holds a frozen dataclass deriving from ``Settings`` whose ``checks()``
lists ``(ok, field, rule)``; StageConfig reports the first failing one as
``Stage 'dev': <section>.<field> <rule> (got <value>).``
"""

from __future__ import annotations

import math
from typing import Any

# CloudWatch Logs only accepts these retention periods (days).
VALID_LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

Check = tuple[bool, str, str]


class ConfigError(ValueError):
    """Bad stage configuration or context; the message is one sentence meant for the user."""


class Settings:
    """Base of a capability's settings dataclass."""

    def checks(self) -> list[Check]:
        """(ok, field, rule) for every rule, in the order they are reported."""
        raise NotImplementedError

    def problem(self) -> tuple[str, str] | None:
        """The first invalid field as (field, rule), or None when the settings are valid."""
        for ok, field_name, rule in self.checks():
            if not ok:
                return field_name, rule
        return None


def whole(value: Any, maximum: int, minimum: int = 1) -> bool:
    """A whole number (not a bool) from ``minimum`` to ``maximum``."""
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum


def number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
