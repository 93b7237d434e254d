"""Model settings read from Parameter Store at run time, cached with a TTL (Powertools parameters).

A changed model id or temperature takes effect within the cache TTL, without a deploy.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities import parameters

from .errors import server_error

PLACEHOLDER_PREFIX = "UNSET-REPLACE-ME-"


@dataclass(frozen=True)
class ModelSettings:
    provider: str
    model_id: str
    temperature: float
    top_p: float
    max_output_tokens: int
    request_timeout_seconds: int
    system_prompt: str
    upstream_base_url: str

    @classmethod
    def parse(cls, raw: dict[str, str]) -> ModelSettings:
        """From the leaf names under the model path; a broken parameter is a server error, not a client one."""
        try:
            settings = cls(
                provider=raw["provider"],
                model_id=raw["id"],
                temperature=float(raw["temperature"]),
                top_p=float(raw["top-p"]),
                max_output_tokens=int(raw["max-output-tokens"]),
                request_timeout_seconds=int(raw["request-timeout-seconds"]),
                system_prompt=raw["system-prompt"],
                upstream_base_url=raw["upstream-base-url"].rstrip("/"),
            )
        except (KeyError, ValueError) as error:
            raise server_error("The model configuration is incomplete or invalid.") from error
        if (
            settings.provider not in ("bedrock", "openai-compatible")
            or not (math.isfinite(settings.temperature) and 0 <= settings.temperature <= 1)
            or not (math.isfinite(settings.top_p) and 0 < settings.top_p <= 1)
            or not 0 < settings.max_output_tokens <= 65_536
            or not 0 < settings.request_timeout_seconds <= 28
        ):
            raise server_error("The model configuration is incomplete or invalid.")
        return settings


class ConfigSource:
    """Reads the stage's model parameters and the upstream key; values live in Powertools' TTL cache."""

    def __init__(self, model_path: str, api_key_name: str, max_age: int, provider: Any = None) -> None:
        self.model_path = model_path
        self.api_key_name = api_key_name
        self.max_age = max_age
        self._provider = provider or parameters.SSMProvider()

    @classmethod
    def from_environment(cls, ssm_client: Any = None) -> ConfigSource:
        return cls(
            model_path=os.environ["MODEL_PARAMETER_PATH"],
            api_key_name=os.environ["UPSTREAM_API_KEY_PARAMETER"],
            max_age=int(os.environ.get("CONFIG_CACHE_SECONDS", "60")),
            provider=parameters.SSMProvider(boto3_client=ssm_client) if ssm_client is not None else None,
        )

    def settings(self) -> ModelSettings:
        raw = self._provider.get_multiple(self.model_path, max_age=self.max_age)
        return ModelSettings.parse({str(k).rsplit("/", 1)[-1]: str(v) for k, v in raw.items()})

    def upstream_api_key(self) -> str:
        value = str(self._provider.get(self.api_key_name, decrypt=True, max_age=self.max_age))
        if value.startswith(PLACEHOLDER_PREFIX):
            raise server_error("The upstream API key has not been set; an operator must set it in Parameter Store.")
        return value
