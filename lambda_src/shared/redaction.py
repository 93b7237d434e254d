"""Personal data and secrets masked before an audit record leaves the function (audit content ``redacted``).

Its own module: the audit writer imports it (and compiles the patterns) only in stages that redact, so the
other stages' cold starts do not pay for it.
"""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[str, int, str], ...] = (
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S, "[PRIVATE_KEY]"),
    (r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA)[A-Z0-9]{16}\b", 0, "[AWS_ACCESS_KEY_ID]"),
    (r"(?i)(aws_secret_access_key|secret_access_key|secretaccesskey)(\s*[:=]\s*)[A-Za-z0-9/+=]{40}", 0,
     r"\1\2[AWS_SECRET_KEY]"),
    (r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}\b", 0, "[API_KEY]"),
    (r"\bgh[pousr]_[A-Za-z0-9]{36,}\b", 0, "[TOKEN]"),
    (r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b", 0, "[TOKEN]"),
    (r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b", 0, "[JWT]"),
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", 0, "[EMAIL]"),
    (r"\b\d(?:[ -]?\d){12,18}\b", 0, "[CARD_NUMBER]"),
    # Grouped like a phone number (separators between groups), so order numbers and ids are kept.
    (r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]\d{3,4}[ .-]\d{3,4}\b", 0, "[PHONE]"),
)  # fmt: skip


_REDACTIONS = tuple((re.compile(pattern, flags), replacement) for pattern, flags, replacement in _PATTERNS)


def redact(text: str) -> str:
    """Mask personal data and secrets; card-like digit runs are masked only when they pass the Luhn check."""
    for pattern, replacement in _REDACTIONS:
        if replacement == "[CARD_NUMBER]":
            text = pattern.sub(lambda m: "[CARD_NUMBER]" if _luhn(m.group()) else m.group(), text)
        else:
            text = pattern.sub(replacement, text)
    return text


def _luhn(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if index % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0
