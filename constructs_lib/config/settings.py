"""The model settings the stage writes to Parameter Store (CDK-free); names and bounds are the contract's
(lambda_src/contracts/parameters.py), the ones the inference function checks again at run time."""

from __future__ import annotations

import re
from dataclasses import dataclass

from constructs_lib.foundation.settings import Check, Settings
from lambda_src.contracts.parameters import (
    LEARNING_RATE,
    MAX_OUTPUT_TOKENS,
    MAX_SYSTEM_PROMPT_CHARS,
    PROVIDERS,
    REQUEST_TIMEOUT_SECONDS,
    TEMPERATURE,
    TOP_P,
    UPSTREAM_URL_RULE,
    upstream_url_allowed,
)

_BEDROCK_GEO = r"(?:us|eu|apac|us-gov|jp|au|ca|global)"
BEDROCK_MODEL_ID = re.compile(
    # Foundation model or cross-region inference profile id, e.g. "us.anthropic.claude-3-5-haiku-20241022-v1:0" ...
    rf"^(?:{_BEDROCK_GEO}\.)?[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9._-]*(?::\d+(?::[0-9a-z]+)?)?$"
    # ... or the ARN of an inference profile or provisioned model.
    r"|^arn:aws(?:-[a-z]+)*:bedrock:[a-z0-9-]+:\d{12}:"
    r"(?:inference-profile|application-inference-profile|provisioned-model)/[A-Za-z0-9.:_-]+$"
)
# A cross-region inference profile id: the geography, then the foundation model it routes to.
GEO_PROFILE = re.compile(rf"^{_BEDROCK_GEO}\.(?P<model>[a-z][a-z0-9-]*\..+)$")
_OPENAI_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


@dataclass(frozen=True)
class ModelConfig(Settings):
    """What the inference API reads from Parameter Store; validated as part of its StageConfig."""

    provider: str = "bedrock"
    # Bedrock model id, inference-profile id or ARN; for openai-compatible, the upstream's model name.
    model_id: str = "anthropic.claude-3-haiku-20240307-v1:0"
    temperature: float = 0.2
    top_p: float = 0.9
    max_output_tokens: int = 1024
    request_timeout_seconds: int = 25
    system_prompt: str = "You are a helpful assistant. Answer concisely and say when you do not know."
    # The seed's training hyperparameter, kept beside the serving settings.
    learning_rate: float = 0.01
    # Base URL of the openai-compatible upstream (its API key is a SecureString); unused with bedrock.
    upstream_base_url: str = "https://api.openai.com/v1"
    # Other Bedrock model ids the API may be switched to in Parameter Store without a deploy (IAM allows
    # exactly model_id and these).
    additional_model_ids: tuple[str, ...] = ()

    def checks(self) -> list[Check]:
        checks: list[Check] = [
            (self.provider in PROVIDERS, "provider", f"must be one of {', '.join(PROVIDERS)}"),
            (TEMPERATURE.contains(self.temperature), "temperature", f"must be {TEMPERATURE.describe()}"),
            (TOP_P.contains(self.top_p), "top_p", f"must be {TOP_P.describe()}"),
            (MAX_OUTPUT_TOKENS.contains(self.max_output_tokens), "max_output_tokens",
             f"must be {MAX_OUTPUT_TOKENS.describe()}"),
            (REQUEST_TIMEOUT_SECONDS.contains(self.request_timeout_seconds), "request_timeout_seconds",
             f"must be {REQUEST_TIMEOUT_SECONDS.describe('seconds')} (below API Gateway's 29-second integration "
             "timeout)"),
            (isinstance(self.system_prompt, str) and len(self.system_prompt.strip()) > 0
             and len(self.system_prompt) <= MAX_SYSTEM_PROMPT_CHARS, "system_prompt",
             f"must be non-empty text of at most {MAX_SYSTEM_PROMPT_CHARS} characters"),
            (LEARNING_RATE.contains(self.learning_rate), "learning_rate", f"must be {LEARNING_RATE.describe()}"),
            (upstream_url_allowed(self.upstream_base_url), "upstream_base_url", UPSTREAM_URL_RULE),
        ]  # fmt: skip
        if self.provider == "bedrock":
            checks.append((isinstance(self.model_id, str) and bool(BEDROCK_MODEL_ID.match(self.model_id)),
                           "model_id", "must be a Bedrock model id, inference-profile id or ARN such as "
                           "'anthropic.claude-3-haiku-20240307-v1:0' or 'us.amazon.nova-lite-v1:0'"))  # fmt: skip
        else:
            checks.append((isinstance(self.model_id, str) and bool(_OPENAI_MODEL_ID.match(self.model_id)),
                           "model_id", "must be the upstream's model name of 1-128 letters, digits or ._:/-"))  # fmt: skip  # noqa: E501
        checks.append((isinstance(self.additional_model_ids, tuple) and all(
            isinstance(m, str) and BEDROCK_MODEL_ID.match(m) for m in self.additional_model_ids),
            "additional_model_ids", "must be a tuple of Bedrock model ids, inference-profile ids or ARNs"))  # fmt: skip
        return checks

    def bedrock_model_ids(self) -> list[str]:
        """The Bedrock models the API may call: model_id (when it is a Bedrock id) and additional_model_ids."""
        ids = [self.model_id] if BEDROCK_MODEL_ID.match(self.model_id) else []
        return ids + [m for m in self.additional_model_ids if m not in ids]

    def parameter_values(self) -> dict[str, str]:
        """Field name -> the String parameter's value, as the inference function parses it back."""
        return {
            "provider": self.provider,
            "model_id": self.model_id,
            "temperature": str(self.temperature),
            "top_p": str(self.top_p),
            "max_output_tokens": str(self.max_output_tokens),
            "request_timeout_seconds": str(self.request_timeout_seconds),
            "system_prompt": self.system_prompt,
            "learning_rate": str(self.learning_rate),
            "upstream_base_url": self.upstream_base_url,
        }
