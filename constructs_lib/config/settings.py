"""The model settings the stage writes to Parameter Store (CDK-free); names and bounds are the contract's
(lambda_src/contracts/parameters.py), the ones the inference function checks again at run time."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from constructs_lib.foundation.settings import Check, Settings
from lambda_src.contracts.parameters import (
    BEDROCK_GEO,
    LEARNING_RATE,
    MAX_OUTPUT_TOKENS,
    MAX_PARAMETER_CHARS,
    MAX_SYSTEM_PROMPT_CHARS,
    PROVIDERS,
    REQUEST_TIMEOUT_SECONDS,
    TEMPERATURE,
    TOP_P,
    UPSTREAM_URL_RULE,
    upstream_url_allowed,
)
from lambda_src.contracts.spend import Price, price_of, price_problem

BEDROCK_MODEL_ID = re.compile(
    # Foundation model or cross-region inference profile id, e.g. "us.anthropic.claude-3-5-haiku-20241022-v1:0" ...
    rf"^(?:{BEDROCK_GEO}\.)?[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9._-]*(?::\d+(?::[0-9a-z]+)?)?$"
    # ... or the ARN of an inference profile or provisioned model.
    r"|^arn:aws(?:-[a-z]+)*:bedrock:[a-z0-9-]+:\d{12}:"
    r"(?:inference-profile|application-inference-profile|provisioned-model)/[A-Za-z0-9.:_-]+$"
)
_OPENAI_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
_DATE = re.compile(r"^20\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])$")
MAX_FALLBACKS = 4


@dataclass(frozen=True)
class FallbackModel:
    """A model tried, in order, when the one before it is throttled, times out or fails with a 5xx."""

    model_id: str
    provider: str = "bedrock"
    # For openai-compatible: the upstream's base URL (its key is the stage's upstream key).
    upstream_base_url: str = ""

    def problem(self) -> str | None:
        if self.provider == "bedrock":
            ok = isinstance(self.model_id, str) and bool(BEDROCK_MODEL_ID.match(self.model_id))
            return None if ok else f"{self.model_id!r} must be a Bedrock model id, inference-profile id or ARN"
        if self.provider != "openai-compatible":
            return f"{self.model_id!r}: provider must be one of {', '.join(PROVIDERS)}"
        if not (isinstance(self.model_id, str) and _OPENAI_MODEL_ID.match(self.model_id)):
            return f"{self.model_id!r} must be an upstream model name of 1-128 letters, digits or ._:/-"
        if not upstream_url_allowed(self.upstream_base_url):
            return f"{self.model_id!r}: upstream_base_url {UPSTREAM_URL_RULE}"
        return None


@dataclass(frozen=True)
class ModelPrice:
    """What one model costs per million tokens, with where and when the figure was read."""

    model_id: str
    input_usd_per_million: float
    output_usd_per_million: float
    source: str
    as_of: str  # YYYY-MM-DD

    def problem(self) -> str | None:
        found = price_problem({"input": self.input_usd_per_million, "output": self.output_usd_per_million})
        if found:
            return f"{self.model_id!r}: {found}"
        if not (isinstance(self.source, str) and self.source.startswith("https://")):
            return f"{self.model_id!r}: source must be the https:// page the price was read from"
        if not (isinstance(self.as_of, str) and _DATE.match(self.as_of)):
            return f"{self.model_id!r}: as_of must be the date the price was read, as YYYY-MM-DD"
        return None


# Bedrock's on-demand prices (USD per million input and output tokens) of common models, with the page each figure
# was read from and when. AWS publishes them on https://aws.amazon.com/bedrock/pricing/, which this project could not
# read when the table was written: check it before relying on a ceiling. A cross-region inference profile costs what
# its foundation model costs (spend.price_of), so profiles need no entry of their own.
_NOVA = "https://pristren.com/blog/amazon-nova-micro-ultra-fast"
_CLAUDE = "https://deploybase.ai/articles/amazon-bedrock-pricing"
DEFAULT_PRICES: tuple[ModelPrice, ...] = (
    ModelPrice("anthropic.claude-3-haiku-20240307-v1:0", 0.25, 1.25, _NOVA, "2026-12-07"),
    ModelPrice("anthropic.claude-3-5-haiku-20241022-v1:0", 0.80, 4.00, _CLAUDE, "2026-12-07"),
    ModelPrice("anthropic.claude-3-7-sonnet-20250219-v1:0", 3.00, 15.00, _CLAUDE, "2026-12-07"),
    ModelPrice("amazon.nova-micro-v1:0", 0.035, 0.14, _NOVA, "2026-12-07"),
    ModelPrice("amazon.nova-lite-v1:0", 0.06, 0.24, _NOVA, "2026-12-07"),
    ModelPrice("amazon.nova-pro-v1:0", 0.80, 3.20, _NOVA, "2026-12-07"),
)


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
    # Tried in order when the model before is throttled, times out or fails with a 5xx (never on a 4xx), while
    # the request's time budget allows; IAM allows exactly model_id, these and additional_model_ids.
    fallbacks: tuple[FallbackModel, ...] = ()
    # What each model costs (budgets count USD from it): every model above must have a price.
    prices: tuple[ModelPrice, ...] = DEFAULT_PRICES

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
        checks.append(self._fallbacks_check())
        checks.append(self._prices_check())
        return checks

    def _fallbacks_check(self) -> Check:
        if not isinstance(self.fallbacks, tuple) or not all(isinstance(f, FallbackModel) for f in self.fallbacks):
            return False, "fallbacks", "must be a tuple of FallbackModel"
        if len(self.fallbacks) > MAX_FALLBACKS:
            return False, "fallbacks", f"must list at most {MAX_FALLBACKS} models"
        problems = [p for f in self.fallbacks if (p := f.problem())]
        if problems:
            return False, "fallbacks", f"entry {problems[0]}"
        ids = [self.model_id, *(f.model_id for f in self.fallbacks)]
        return len(set(ids)) == len(ids), "fallbacks", "must not repeat a model of the list (model_id first)"

    def _prices_check(self) -> Check:
        if not isinstance(self.prices, tuple) or not all(isinstance(p, ModelPrice) for p in self.prices):
            return False, "prices", "must be a tuple of ModelPrice"
        problems = [p for price in self.prices if (p := price.problem())]
        if problems:
            return False, "prices", f"entry {problems[0]}"
        if len({price.model_id for price in self.prices}) != len(self.prices):
            return False, "prices", "must price each model once"
        if len(json.dumps(self.price_table(), sort_keys=True)) > MAX_PARAMETER_CHARS:
            return False, "prices", f"must fit a {MAX_PARAMETER_CHARS}-character parameter as JSON"
        table = {p.model_id: Price(p.input_usd_per_million, p.output_usd_per_million) for p in self.prices}
        missing = [m for m in (self.model_id, *self.fallback_ids(), *self.additional_model_ids)
                   if price_of(table, m) is None]  # fmt: skip
        return not missing, "prices", f"must price every model the API may call: {', '.join(missing)} has no price"

    def fallback_ids(self) -> list[str]:
        return [f.model_id for f in self.fallbacks if isinstance(f, FallbackModel)]

    def price_table(self) -> dict[str, dict[str, float]]:
        """The prices as the functions read them (the model parameters' ``prices`` leaf)."""
        return {p.model_id: {"input": p.input_usd_per_million, "output": p.output_usd_per_million}
                for p in self.prices}  # fmt: skip

    def bedrock_model_ids(self) -> list[str]:
        """The Bedrock models the API may call: model_id (when it is a Bedrock id), the Bedrock fallbacks and
        additional_model_ids."""
        ids = [self.model_id] if self.provider == "bedrock" and BEDROCK_MODEL_ID.match(self.model_id) else []
        ids += [f.model_id for f in self.fallbacks if isinstance(f, FallbackModel) and f.provider == "bedrock"]
        return list(dict.fromkeys(ids + list(self.additional_model_ids)))

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
            "fallbacks": json.dumps(
                [
                    {"model_id": f.model_id, "provider": f.provider, "upstream_base_url": f.upstream_base_url}
                    for f in self.fallbacks
                ]
            ),
            "prices": json.dumps(self.price_table(), sort_keys=True),
        }
