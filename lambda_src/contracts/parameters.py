"""The stage's Parameter Store tree: names, meanings and bounds of the model settings, and where the
secrets and the API's tooling parameters live.

ConfigStack writes these parameters, ModelConfig validates the values at synth, the inference function
reads and re-checks them at run time, and the admin and local tools find the API's tables through them.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import urlsplit

from lambda_src.contracts.bounds import Range
from lambda_src.contracts.naming import parameter_root

PROVIDERS = ("bedrock", "openai-compatible")
TEMPERATURE = Range(0, 1)
TOP_P = Range(0, 1, low_inclusive=False)
MAX_OUTPUT_TOKENS = Range(1, 65_536, integer=True)
# A model call must finish before API Gateway's 29-second integration timeout.
REQUEST_TIMEOUT_SECONDS = Range(1, 28, integer=True)
LEARNING_RATE = Range(0, 1, low_inclusive=False)
# SSM Standard-tier parameters hold at most 4 KB.
MAX_SYSTEM_PROMPT_CHARS = 4_000

MODEL_PATH = "model"


class ModelParameter(NamedTuple):
    """One String parameter under ``<root>/model``: its leaf name, the settings field it holds, its meaning."""

    leaf: str
    field: str
    description: str


MODEL_PARAMETERS: tuple[ModelParameter, ...] = (
    ModelParameter("id", "model_id", "Bedrock model id or inference-profile id (or the upstream's model name)"),
    ModelParameter("provider", "provider", "bedrock or openai-compatible"),
    ModelParameter("temperature", "temperature", "Sampling temperature, 0 to 1"),
    ModelParameter("top-p", "top_p", "Nucleus sampling, greater than 0 and at most 1"),
    ModelParameter("max-output-tokens", "max_output_tokens", "Upper bound on generated tokens per request"),
    ModelParameter("request-timeout-seconds", "request_timeout_seconds", "Timeout of one model call"),
    ModelParameter("system-prompt", "system_prompt", "System prompt sent with every conversation"),
    ModelParameter("learning-rate", "learning_rate", "Training learning rate"),
    ModelParameter("upstream-base-url", "upstream_base_url", "Base URL of the openai-compatible upstream"),
    ModelParameter(
        "fallbacks",
        "fallbacks",
        "Models tried in order when the one before is throttled, times out or "
        "fails (JSON list of {model_id, provider, upstream_base_url})",
    ),
    ModelParameter("prices", "prices", "USD per million input and output tokens by model id (JSON)"),
)
# The geographies of Bedrock's cross-region inference profiles, and a profile id: the geography, then the foundation
# model it routes to (``us.anthropic.claude-3-haiku-20240307-v1:0``).
BEDROCK_GEO = r"(?:us|eu|apac|us-gov|jp|au|ca|global)"
GEO_PROFILE = re.compile(rf"^{BEDROCK_GEO}\.(?P<model>[a-z][a-z0-9-]*\..+)$")
# A String parameter's value in the Standard tier (the prices and fallbacks are JSON text).
MAX_PARAMETER_CHARS = 4_096

# Settings field -> leaf name, e.g. "top_p" -> "top-p".
MODEL_LEAVES = {parameter.field: parameter.leaf for parameter in MODEL_PARAMETERS}

# An openai-compatible upstream is reached over https, or over plain http on this machine only (local runs).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
UPSTREAM_URL_RULE = "must be an https:// URL (or http:// on 127.0.0.1 or localhost), without credentials or query"
# Letters of a DNS label (urlsplit lower-cases the host). A set, not a regex: compiled at no cold start.
_LABEL = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _dns_name(host: str) -> bool:
    labels = host.split(".")
    return 0 < len(host) <= 253 and all(
        0 < len(label) <= 63 and label[0] != "-" and label[-1] != "-" and set(label) <= _LABEL for label in labels
    )


def upstream_url_allowed(url: object) -> bool:
    """The one rule for the upstream base URL, at synth (ModelConfig) and before every call (the adapter).

    Parsed, not matched by prefix: ``http://localhost.attacker.example`` and ``http://localhost@evil`` are
    refused because the host must be exactly a loopback name for http, and userinfo is never allowed.
    """
    if not isinstance(url, str) or url != url.strip() or any(c.isspace() or ord(c) < 32 for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    host = parts.hostname or ""
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return False
    if parts.scheme == "https":
        return _dns_name(host)
    return parts.scheme == "http" and host in LOOPBACK_HOSTS


DATA_SOURCES = "data/sources"
UPSTREAM_API_KEY = "secrets/upstream-api-key"
DATABASE_PASSWORD = "secrets/database-password"  # noqa: S105 - a parameter's name, not a password
# A SecureString holding a placeholder reads as unset; the random tail keeps it unguessable.
PLACEHOLDER_PREFIX = "UNSET-REPLACE-ME-"

# Where the admin command finds the API's key table and usage plans.
KEY_TABLE = "api/key-table"
# The budgets' usage table (lambda_src/contracts/spend.py), for `python -m tools.keys usage`.
USAGE_TABLE = "api/usage-table"
USAGE_PLANS = "api/usage-plans"


def parameter_name(stage: str, relative: str) -> str:
    """Absolute name of a parameter of the stage, e.g. ``/llm-platform/dev/secrets/upstream-api-key``."""
    return f"{parameter_root(stage)}/{relative}"
