"""Each function's environment, as a typed contract: the stack renders it, the handler reads it back.

A field ``audit_mode`` is the variable ``AUDIT_MODE``. ``variables()`` gives the strings Lambda stores
(CDK tokens pass through as they are); ``from_environment()`` parses them, so a missing or malformed
variable fails the function's init with a sentence naming it instead of a KeyError deep in a request.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self


class EnvironmentContract:
    """Base of the frozen dataclasses below. Field types: str, int or tuple[str, ...] (stored as JSON)."""

    def variables(self) -> dict[str, str]:
        out = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            out[field.name.upper()] = json.dumps(list(value)) if isinstance(value, tuple) else str(value)
        return out

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Self:
        source = os.environ if environ is None else environ
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            name = field.name.upper()
            if name not in source:
                raise ValueError(f"The function's environment variable {name} is missing.")
            raw = source[name]
            try:
                values[field.name] = _parse(raw, hints[field.name])
            except ValueError:
                raise ValueError(f"The function's environment variable {name} is malformed.") from None
        return cls(**values)


def _parse(raw: str, kind: Any) -> Any:
    if kind is int:
        return int(raw)
    if kind is str:
        return raw
    items = json.loads(raw)
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(raw)
    return tuple(items)


@dataclass(frozen=True)
class InferenceEnvironment(EnvironmentContract):
    model_parameter_path: str
    upstream_api_key_parameter: str
    # How long parameters stay cached before Parameter Store is read again.
    config_cache_seconds: int
    max_body_bytes: int
    cors_allowed_origins: tuple[str, ...]
    # Empty: no audit log (local unit tests only; every deployed stage has one).
    audit_stream_name: str
    audit_mode: str
    audit_content: str
    stage: str


@dataclass(frozen=True)
class AuthorizerEnvironment(EnvironmentContract):
    key_table_name: str
