"""Secrets Manager: `AWS::SecretsManager::Secret`, which moto's CloudFormation does not model, created in
moto's backend with its value generated as CloudFormation's GenerateSecretString does (the template's JSON
with a random string under GenerateStringKey), so a secret's value never appears in the template."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from moto.secretsmanager.models import secretsmanager_backends

from tools.local.emulator.cloudformation import register_model

_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def generated_value(spec: dict[str, Any]) -> str:
    """A value as GenerateSecretString makes it (length, exclusions, template and key)."""
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += _PUNCTUATION
    excluded = set(spec.get("ExcludeCharacters", ""))
    alphabet = "".join(c for c in alphabet if c not in excluded)
    random = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    template = spec.get("SecretStringTemplate")
    if template is None:
        return random
    value = json.loads(template)
    value[spec["GenerateStringKey"]] = random
    return json.dumps(value)


def _secret(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    backend = secretsmanager_backends[account][region]
    secret_name = properties.get("Name") or f"{name}-{secrets.token_hex(6)}"
    value = properties.get("SecretString")
    if value is None:
        value = generated_value(properties.get("GenerateSecretString") or {})
    backend.create_secret(name=secret_name, secret_string=value, secret_binary=None,
                          description=properties.get("Description"), tags=properties.get("Tags") or [],
                          kms_key_id=properties.get("KmsKeyId"), client_request_token=None, replica_regions=[],
                          force_overwrite=False)  # fmt: skip
    arn = backend.describe_secret(secret_name).arn
    return arn, {"Id": arn}


def install() -> None:
    register_model("AWS::SecretsManager::Secret", "secretsmanager", _secret)
