"""Create, update and delete one SecureString parameter; plain Python around an injected SSM client.

Rules: a value is generated here and never leaves this module except to SSM; an existing value is never
overwritten (operators replace placeholders with `aws ssm put-parameter --overwrite`); every failure
becomes a ProviderError whose message is safe to show in CloudFormation events (no values).
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_src.contracts import secure_string
from lambda_src.contracts.parameters import PLACEHOLDER_PREFIX

LOGGER = logging.getLogger(__name__)

# Physical id CloudFormation gets when a create fails, so the rollback's delete touches nothing.
CREATE_FAILED_MARKER = "secure-parameter-create-failed"
_NAME = re.compile(r"^/[A-Za-z0-9_.\-/]{1,1010}$")
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")


class ProviderError(Exception):
    """A failure to report to CloudFormation; the message never contains a parameter value."""


@dataclass(frozen=True)
class Properties:
    name: str
    key_id: str
    kind: str
    description: str
    retain_on_delete: bool

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> Properties:
        raw = raw or {}
        name = str(raw.get(secure_string.PARAMETER_NAME, ""))
        key_id = str(raw.get(secure_string.KEY_ID, ""))
        kind = str(raw.get(secure_string.VALUE_KIND, ""))
        if not _NAME.match(name) or "//" in name:
            raise ProviderError(f"ParameterName must be an absolute SSM parameter name, got {name!r}.")
        if not _KEY_ARN.match(key_id):
            raise ProviderError(f"KeyId must be a KMS key ARN, got {key_id!r}.")
        if kind not in secure_string.VALUE_KINDS:
            raise ProviderError(f"ValueKind must be one of {', '.join(secure_string.VALUE_KINDS)}, got {kind!r}.")
        # CloudFormation hands every scalar property to the function as a string.
        retain = str(raw.get(secure_string.RETAIN_ON_DELETE, "false")).lower()
        if retain not in ("true", "false"):
            raise ProviderError(
                f"RetainOnDelete must be true or false, got {raw.get(secure_string.RETAIN_ON_DELETE)!r}."
            )
        description = str(raw.get(secure_string.DESCRIPTION, ""))[:1024]
        return cls(name=name, key_id=key_id, kind=kind, description=description, retain_on_delete=retain == "true")


@dataclass(frozen=True)
class Outcome:
    physical_id: str
    data: dict[str, str]


def new_value(kind: str) -> str:
    """256 random bits for a generated secret; an unguessable, recognizable placeholder otherwise."""
    if kind == "generated":
        return secrets.token_urlsafe(32)
    return PLACEHOLDER_PREFIX + secrets.token_hex(16)


def handle(event: dict[str, Any], ssm: Any) -> Outcome:
    """Apply one CloudFormation request (Create, Update or Delete) and say what happened."""
    request = event.get("RequestType")
    physical_id = str(event.get("PhysicalResourceId", ""))
    try:
        if request == "Create":
            return _create(ssm, Properties.parse(event.get("ResourceProperties")))
        if request == "Update":
            return _update(ssm, Properties.parse(event.get("ResourceProperties")),
                           Properties.parse(event.get("OldResourceProperties")))  # fmt: skip
        if request == "Delete":
            return _delete(ssm, event.get("ResourceProperties"), physical_id)
    except (ClientError, BotoCoreError) as error:
        raise ProviderError(f"{request} failed: {_describe(error)}") from None
    raise ProviderError(f"Unknown RequestType {request!r}.")


def _create(ssm: Any, props: Properties) -> Outcome:
    try:
        ssm.put_parameter(
            Name=props.name,
            Description=props.description,
            Value=new_value(props.kind),
            Type="SecureString",
            KeyId=props.key_id,
            Overwrite=False,
            Tier="Standard",
        )
        LOGGER.info("Created SecureString %s with a %s value", props.name, props.kind)
    except ClientError as error:
        if _code(error) != "ParameterAlreadyExists":
            raise
        _check_existing(ssm, props)
        LOGGER.info("SecureString %s already exists; its value is kept", props.name)
    return _outcome(props)


def _update(ssm: Any, props: Properties, old: Properties) -> Outcome:
    if props.name != old.name:
        # A new physical id: CloudFormation deletes the old parameter (per its RetainOnDelete) afterwards.
        return _create(ssm, props)
    if props.key_id != old.key_id:
        raise ProviderError(
            f"Changing the KMS key of {props.name} would need the old key to re-encrypt it; "
            "keep the key, or give the parameter a new name and move the value."
        )
    try:
        ssm.get_parameter(Name=props.name, WithDecryption=False)
    except ClientError as error:
        if _code(error) != "ParameterNotFound":
            raise
        LOGGER.warning("SecureString %s was deleted outside CloudFormation; creating it again", props.name)
        return _create(ssm, props)
    LOGGER.info("SecureString %s unchanged; its value is kept", props.name)
    return _outcome(props)


def _delete(ssm: Any, raw_props: dict[str, Any] | None, physical_id: str) -> Outcome:
    if physical_id == CREATE_FAILED_MARKER or not _NAME.match(physical_id):
        LOGGER.info("Nothing to delete for physical id %r", physical_id)
        return Outcome(physical_id=physical_id, data={})
    try:
        props = Properties.parse(raw_props)
    except ProviderError:
        props = None
    if props is not None and props.retain_on_delete:
        LOGGER.info("SecureString %s retained (RetainOnDelete)", physical_id)
        return Outcome(physical_id=physical_id, data={secure_string.PARAMETER_NAME: physical_id})
    try:
        ssm.delete_parameter(Name=physical_id)
        LOGGER.info("Deleted SecureString %s", physical_id)
    except ClientError as error:
        if _code(error) != "ParameterNotFound":
            raise
        LOGGER.info("SecureString %s was already gone", physical_id)
    return Outcome(physical_id=physical_id, data={secure_string.PARAMETER_NAME: physical_id})


def _check_existing(ssm: Any, props: Properties) -> None:
    """An existing parameter is adopted only if it is a SecureString this key can decrypt."""
    try:
        found = ssm.get_parameter(Name=props.name, WithDecryption=True)["Parameter"]
    except ClientError as error:
        raise ProviderError(
            f"{props.name} already exists but cannot be decrypted with the stack's key "
            f"({_describe(error)}); delete it or move its value to a new name."
        ) from None
    if found.get("Type") != "SecureString":
        raise ProviderError(
            f"{props.name} already exists as a {found.get('Type')} parameter; refusing to replace it with a "
            "SecureString. Delete it first if it is not needed."
        )


def _outcome(props: Properties) -> Outcome:
    return Outcome(physical_id=props.name, data={secure_string.PARAMETER_NAME: props.name})


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        message = error.response.get("Error", {}).get("Message", "")
        return f"{_code(error)}: {message}"[:500]
    return f"{type(error).__name__}: {error}"[:500]
