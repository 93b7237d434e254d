"""Numeric bounds, stated once and rendered three ways: a check, a sentence and a JSON-schema fragment."""

from __future__ import annotations

import math
from typing import Any, NamedTuple


# Contract records are NamedTuples: immutable like frozen dataclasses, and about a tenth of the cost to define,
# which every function pays at each cold start.
class Range(NamedTuple):
    """``low..high``; ``integer`` ranges hold whole numbers only (never booleans)."""

    low: float
    high: float
    low_inclusive: bool = True
    integer: bool = False

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        above = value >= self.low if self.low_inclusive else value > self.low
        return above and value <= self.high

    def describe(self, unit: str = "") -> str:
        """The rule as words: "between 0 and 1", "greater than 0 and at most 1", "a whole number from 1 to 28"."""
        if self.integer:
            of = f" of {unit}" if unit else ""
            return f"a whole number{of} from {self.low:g} to {self.high:g}"
        if self.low_inclusive:
            return f"between {self.low:g} and {self.high:g}"
        return f"greater than {self.low:g} and at most {self.high:g}"

    def json_schema(self, *, nullable: bool = False) -> dict[str, Any]:
        """The same rule as a JSON-schema draft 4 fragment (API Gateway models and the handlers' validation)."""
        kind = "integer" if self.integer else "number"
        schema: dict[str, Any] = {"type": [kind, "null"] if nullable else kind, "minimum": _plain(self.low),
                                  "maximum": _plain(self.high)}  # fmt: skip
        if not self.low_inclusive:
            schema["exclusiveMinimum"] = True
        return schema


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
