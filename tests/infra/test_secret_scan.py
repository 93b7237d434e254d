"""Secret scan over the cloud assembly: no private keys, no AWS access keys, no high-entropy strings in
parameter values or environment variables, no default passwords."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from tests.infra.conftest import Synth
from tests.infra.templates import by_type

PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
ACCESS_KEY = re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
DEFAULT_PASSWORDS = {"password", "passw0rd", "changeme", "change-me", "admin", "admin123", "secret", "123456",
                     "12345678", "letmein", "default", "root", "test", "qwerty"}  # fmt: skip
# Random base64 material: 4.5+ bits per character and mixed case with digits; ids, paths and URLs are not.
ENTROPY_LIMIT = 4.3
MIN_LENGTH = 24


def entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_secret(value: str) -> bool:
    mixed = any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)
    return value.lower() in DEFAULT_PASSWORDS or (
        len(value) >= MIN_LENGTH and " " not in value and mixed and entropy(value) > ENTROPY_LIMIT
    )


def configured_values(template: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Literal strings set as SSM parameter values and Lambda environment variables."""
    for logical_id, resource in by_type(template, "AWS::SSM::Parameter").items():
        value = resource["Properties"].get("Value")
        if isinstance(value, str):
            yield f"{logical_id}.Value", value
    for logical_id, resource in by_type(template, "AWS::Lambda::Function").items():
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        for name, value in variables.items():
            if isinstance(value, str):
                yield f"{logical_id}.Environment.{name}", value


def test_no_private_or_aws_keys_anywhere_in_the_cloud_assembly(variants: dict[str, Synth]):
    hits = []
    for synth in variants.values():
        for path in synth.outdir.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                hits += [f"{path.name}: private key" for _ in PRIVATE_KEY.finditer(content)]
                hits += [f"{path.name}: {m.group().decode()}" for m in ACCESS_KEY.finditer(content)]
    assert hits == []


def test_no_secret_looking_parameter_values_or_environment_variables(variants: dict[str, Synth]):
    checked, hits = 0, []
    for synth in variants.values():
        for stack, template in synth.templates.items():
            for where, value in configured_values(template):
                checked += 1
                if looks_secret(value):
                    hits.append(f"{stack}/{where} = {value[:12]}... (entropy {entropy(value):.2f})")
    assert checked > 30
    assert hits == [], "\n".join(hits)


def test_the_detectors_fire_on_real_secrets():
    assert looks_secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert looks_secret("q7Vd2XkP9sLm4Rt8Yw1Zb6Nc3Hf5Jg0Ua-Ee_Ii2Oo9")
    assert looks_secret("ChangeMe")
    assert not looks_secret("anthropic.claude-3-haiku-20240307-v1:0")
    assert not looks_secret("/llm-platform/prod/secrets/upstream-api-key")
    assert ACCESS_KEY.search(b'"Value": "AKIAIOSFODNN7EXAMPLE"')
    assert PRIVATE_KEY.search(b"-----BEGIN RSA PRIVATE KEY-----\nMIIE")
