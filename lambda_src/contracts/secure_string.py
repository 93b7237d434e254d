"""The SecureString custom resource: its type and the properties the construct sends and the provider reads.

Only names and settings travel through CloudFormation; the value is made inside the provider function.
"""

from __future__ import annotations

from typing import Any

RESOURCE_TYPE = "Custom::SecureStringParameter"
# "generated": a random 256-bit value made at creation; "placeholder": an operator replaces it.
VALUE_KINDS = ("generated", "placeholder")

PARAMETER_NAME = "ParameterName"
KEY_ID = "KeyId"
VALUE_KIND = "ValueKind"
DESCRIPTION = "Description"
RETAIN_ON_DELETE = "RetainOnDelete"


def resource_properties(
    *, parameter_name: str, key_id: str, value_kind: str, description: str, retain_on_delete: bool
) -> dict[str, Any]:
    return {
        PARAMETER_NAME: parameter_name,
        KEY_ID: key_id,
        VALUE_KIND: value_kind,
        DESCRIPTION: description,
        RETAIN_ON_DELETE: retain_on_delete,
    }
