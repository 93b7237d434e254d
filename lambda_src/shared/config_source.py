"""Model settings read from Parameter Store at run time, cached with a TTL (Powertools parameters).

A changed model id or temperature takes effect within the cache TTL, without a deploy. Names and bounds
come from lambda_src/contracts/parameters.py, the same ones ModelConfig checks at synth.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Protocol

from aws_lambda_powertools.utilities import parameters

from lambda_src.contracts import guardrail
from lambda_src.contracts.parameters import (
    MAX_OUTPUT_TOKENS,
    MODEL_LEAVES,
    PLACEHOLDER_PREFIX,
    PROVIDERS,
    REQUEST_TIMEOUT_SECONDS,
    TEMPERATURE,
    TOP_P,
    upstream_url_allowed,
)
from lambda_src.contracts.spend import Price, prices_from_json
from lambda_src.shared.errors import server_error
from lambda_src.shared.models import GuardrailRef


class ModelTarget(NamedTuple):
    """One model of the stage's list: which adapter, which model, and where (openai-compatible)."""

    provider: str
    model_id: str
    upstream_base_url: str


class ModelSettings(NamedTuple):
    provider: str
    model_id: str
    temperature: float
    top_p: float
    max_output_tokens: int
    request_timeout_seconds: int
    system_prompt: str
    upstream_base_url: str
    # The models after model_id, in the order they are tried when the one before is throttled or fails.
    fallbacks: tuple[ModelTarget, ...] = ()
    # USD per million tokens by model id (budgets count cost from it).
    prices: dict[str, Price] = {}  # noqa: RUF012 - a NamedTuple default, never mutated
    # The stage's guardrail (None: the stage has none; lambda_src/contracts/guardrail.py).
    guardrail: GuardrailRef | None = None

    def targets(self) -> tuple[ModelTarget, ...]:
        """The stage's models in the order they are tried: model_id first, then the fallbacks."""
        return (ModelTarget(self.provider, self.model_id, self.upstream_base_url), *self.fallbacks)

    @classmethod
    def parse(cls, raw: dict[str, str]) -> ModelSettings:
        """From the leaf names under the model path; a broken parameter is a server error, not a client one."""
        try:
            # The fields of this class: what serving needs (the learning rate is for training jobs).
            values = {name: raw[MODEL_LEAVES[name]] for name in cls._fields if name in MODEL_LEAVES}
            settings = cls(
                provider=values["provider"],
                model_id=values["model_id"],
                temperature=float(values["temperature"]),
                top_p=float(values["top_p"]),
                max_output_tokens=int(values["max_output_tokens"]),
                request_timeout_seconds=int(values["request_timeout_seconds"]),
                system_prompt=values["system_prompt"],
                upstream_base_url=values["upstream_base_url"].rstrip("/"),
                fallbacks=_fallbacks(values["fallbacks"]),
                prices=prices_from_json(values["prices"]),
                guardrail=_guardrail(raw),
            )
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise server_error("The model configuration is incomplete or invalid.") from error
        if not (
            settings.provider in PROVIDERS
            and TEMPERATURE.contains(settings.temperature)
            and TOP_P.contains(settings.top_p)
            and MAX_OUTPUT_TOKENS.contains(settings.max_output_tokens)
            and REQUEST_TIMEOUT_SECONDS.contains(settings.request_timeout_seconds)
        ):
            raise server_error("The model configuration is incomplete or invalid.")
        return settings


def _guardrail(raw: dict[str, str]) -> GuardrailRef | None:
    """The guardrail's leaves: all three or none; a numbered version only (the DRAFT changes under the API)."""
    if guardrail.ID_LEAF not in raw:
        return None
    ref = GuardrailRef(raw[guardrail.ID_LEAF], raw[guardrail.VERSION_LEAF], raw[guardrail.STREAM_PROCESSING_LEAF])
    if not (ref.identifier and ref.version.isdigit() and ref.stream_processing in guardrail.STREAM_PROCESSING_MODES):
        raise ValueError("guardrail")
    return ref


def _fallbacks(raw: str) -> tuple[ModelTarget, ...]:
    entries = json.loads(raw)
    if not isinstance(entries, list):
        raise ValueError("fallbacks")
    targets = tuple(ModelTarget(str(e["provider"]), str(e["model_id"]),
                                str(e.get("upstream_base_url") or "").rstrip("/")) for e in entries)  # fmt: skip
    for target in targets:
        if target.provider not in PROVIDERS or not target.model_id or (
                target.provider != "bedrock" and not upstream_url_allowed(target.upstream_base_url)):  # fmt: skip
            raise ValueError("fallbacks")
    return targets


class SettingsSource(Protocol):
    """Where an operation reads the model's settings (ConfigSource, or a test's stand-in)."""

    def settings(self) -> ModelSettings: ...


class LeavesSource(Protocol):
    """Where an operation reads the parameters of one settings path by leaf name (ConfigSource.leaves)."""

    def leaves(self) -> dict[str, str]: ...


class ConfigSource:
    """Reads one settings path of the stage (the model's, or the embeddings') and the upstream key; values live
    in Powertools' TTL cache."""

    def __init__(self, settings_path: str, api_key_name: str, max_age: int, provider: Any = None) -> None:
        self.settings_path = settings_path
        self.api_key_name = api_key_name
        self.max_age = max_age
        self._provider = provider or parameters.SSMProvider()

    @staticmethod
    def ssm_provider(ssm_client: Any) -> Any:
        """Powertools' SSM provider on the function's own client (a second boto3 session costs ~50 ms)."""
        return parameters.SSMProvider(boto3_client=ssm_client)

    def settings(self) -> ModelSettings:
        return ModelSettings.parse(self.leaves())

    def leaves(self) -> dict[str, str]:
        """The parameters under the settings path by leaf name (``provider``, ``model-id`` ...)."""
        raw = self._provider.get_multiple(self.settings_path, max_age=self.max_age)
        return {str(k).rsplit("/", 1)[-1]: str(v) for k, v in raw.items()}

    def upstream_api_key(self) -> str:
        value = str(self._provider.get(self.api_key_name, decrypt=True, max_age=self.max_age))
        if value.startswith(PLACEHOLDER_PREFIX):
            raise server_error("The upstream API key has not been set; an operator must set it in Parameter Store.")
        return value
