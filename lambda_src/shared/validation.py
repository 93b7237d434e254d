"""Request bodies checked against their JSON schema (lambda_src/contracts/schemas.py), the one API Gateway
models are made from, with answers in the API's error shape.

A small draft-4 validator for the keywords those schemas use; a schema using any other keyword is refused
when the validator is built, so it can never silently skip a rule the gateway enforces. Hand-written
rather than a library, measured in instructions at a cold start (Lambda compiles source each time):
fastjsonschema generates and compiles code per schema, +148M for these two schemas against +18M for this
module, most of the cold-start budget (docs/PERFORMANCE.md); jsonschema needs compiled extensions
(rpds-py) the x86_64 build machine cannot package for arm64 Lambda. tests/lambda/test_validation.py checks
this validator against jsonschema's Draft4Validator on generated documents.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from lambda_src.shared.errors import ApiError, invalid_request

_ANNOTATIONS = {"$schema", "title", "description"}
_KEYWORDS = {"type", "properties", "required", "items", "enum", "minimum", "maximum", "exclusiveMinimum",
             "minLength", "maxLength", "minItems", "maxItems"} | _ANNOTATIONS  # fmt: skip
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_ARTICLE = {"object": "an object", "array": "a list", "string": "a string", "integer": "a whole number",
            "number": "a number", "boolean": "true or false", "null": "null"}  # fmt: skip


class Violation(NamedTuple):
    """The first rule a document breaks: where (``messages[0].role``), which keyword, and a sentence."""

    path: str
    keyword: str
    message: str
    # The types the schema allows at that place.
    expected: tuple[str, ...] = ()


class Schema:
    """A checked draft-4 schema; ``first_violation(document)`` is None for a valid document."""

    def __init__(self, schema: dict[str, Any]) -> None:
        _check_keywords(schema, "#")
        self._schema = schema

    def first_violation(self, document: Any) -> Violation | None:
        return _violation(self._schema, document, "")


def _check_keywords(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise ValueError(f"{where}: a schema must be an object.")
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise ValueError(f"{where}: keywords {sorted(unknown)} are not supported by lambda_src/shared/validation.py.")
    types = schema.get("type", [])
    for kind in types if isinstance(types, list) else [types]:
        if kind not in _TYPES:
            raise ValueError(f"{where}: unknown type {kind!r}.")
    if not all(isinstance(value, str) for value in schema.get("enum", [])):
        raise ValueError(f"{where}: enum values must be strings.")
    for name, child in schema.get("properties", {}).items():
        _check_keywords(child, f"{where}/properties/{name}")
    if "items" in schema:
        _check_keywords(schema["items"], f"{where}/items")


def _violation(schema: dict[str, Any], value: Any, path: str) -> Violation | None:  # noqa: PLR0911, PLR0912
    name = f"'{path or 'body'}'"
    types = schema.get("type")
    if types is not None:
        allowed = types if isinstance(types, list) else [types]
        if not any(_TYPES[kind](value) for kind in allowed):
            message = f"{name} must be {' or '.join(_ARTICLE[kind] for kind in allowed)}."
            return Violation(path, "type", message, tuple(allowed))
    if "enum" in schema and not (isinstance(value, str) and value in schema["enum"]):
        return Violation(path, "enum", f"{name} must be one of {', '.join(schema['enum'])}.")
    if _TYPES["number"](value):
        if "minimum" in schema:
            low = schema["minimum"]
            if value < low or (schema.get("exclusiveMinimum") and value == low):
                bound = "greater than" if schema.get("exclusiveMinimum") else "at least"
                return Violation(path, "minimum", f"{name} must be {bound} {low:g}.")
        if "maximum" in schema and value > schema["maximum"]:
            return Violation(path, "maximum", f"{name} must be at most {schema['maximum']:g}.")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return Violation(path, "minLength", f"{name} must hold at least {schema['minLength']} character(s).")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return Violation(path, "maxLength", f"{name} must hold at most {schema['maxLength']} characters.")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return Violation(path, "minItems", f"{name} must hold at least {schema['minItems']} item(s).")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return Violation(path, "maxItems", f"{name} must hold at most {schema['maxItems']} items.")
        if "items" in schema:
            for index, item in enumerate(value):
                found = _violation(schema["items"], item, f"{path}[{index}]")
                if found is not None:
                    return found
    if isinstance(value, dict):
        for required in schema.get("required", []):
            if required not in value:
                where = f"{path}.{required}" if path else required
                return Violation(where, "required", f"'{where}' is required.")
        for key, child in schema.get("properties", {}).items():
            if key in value:
                found = _violation(child, value[key], f"{path}.{key}" if path else key)
                if found is not None:
                    return found
    return None


def request_error(violation: Violation) -> ApiError:
    """A 400 in the API's error shape; the code says what kind of fault it is."""
    numeric = {"number", "integer"} & set(violation.expected)
    if violation.path.startswith("messages"):
        code = "invalid_messages"
    elif violation.keyword in ("minimum", "maximum") or (violation.keyword == "type" and numeric):
        code = "value_out_of_range"
    else:
        code = "invalid_request"
    return invalid_request(violation.message, code)
