"""Deployment stages modelled in code: everything that differs between dev and prod lives here.

Values are plain Python (no CDK types) so they can be validated and tested without synthesizing;
stacks translate them into CDK settings. Validation runs in ``__post_init__`` and raises
:class:`ConfigError` with one sentence naming the stage, the field and the rule.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from constructs_lib.aws_names import SERVICE_PRINCIPAL

APP_NAME = "llm-platform"

# CloudWatch Logs only accepts these retention periods (days).
VALID_LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# An S3 key prefix for the dataset: relative, slash-terminated, no traversal or wildcards.
_DATASET_PREFIX = re.compile(r"^(?:[A-Za-z0-9!_.'()-]+/)+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")


class ConfigError(ValueError):
    """Bad stage configuration or context; the message is one sentence meant for the user."""


PROVIDERS = ("bedrock", "openai-compatible")
MAX_OUTPUT_TOKENS_LIMIT = 65_536
# The model call must finish before API Gateway's 29-second integration timeout.
MAX_REQUEST_TIMEOUT_SECONDS = 28
# SSM Standard-tier parameters hold at most 4 KB.
MAX_SYSTEM_PROMPT_CHARS = 4_000

_BEDROCK_GEO = r"(?:us|eu|apac|us-gov|jp|au|ca|global)"
_BEDROCK_MODEL_ID = re.compile(
    # Foundation model or cross-region inference profile id, e.g. "us.anthropic.claude-3-5-haiku-20241022-v1:0" ...
    rf"^(?:{_BEDROCK_GEO}\.)?[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9._-]*(?::\d+(?::[0-9a-z]+)?)?$"
    # ... or the ARN of an inference profile or provisioned model.
    r"|^arn:aws(?:-[a-z]+)*:bedrock:[a-z0-9-]+:\d{12}:"
    r"(?:inference-profile|application-inference-profile|provisioned-model)/[A-Za-z0-9.:_-]+$"
)
_OPENAI_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
_BASE_URL = re.compile(
    r"^https://[A-Za-z0-9.-]+(?::\d+)?(?:/[^\s]*)?$|^http://(?:127\.0\.0\.1|localhost)(?::\d+)?(?:/[^\s]*)?$"
)


@dataclass(frozen=True)
class ModelConfig:
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

    def problem(self) -> tuple[str, str] | None:
        """The first invalid field as (field, rule), or None when the config is valid."""
        checks: list[tuple[bool, str, str]] = [
            (self.provider in PROVIDERS, "provider", f"must be one of {', '.join(PROVIDERS)}"),
            (_number(self.temperature) and 0 <= self.temperature <= 1, "temperature", "must be between 0 and 1"),
            (_number(self.top_p) and 0 < self.top_p <= 1, "top_p", "must be greater than 0 and at most 1"),
            (_positive_int(self.max_output_tokens, MAX_OUTPUT_TOKENS_LIMIT), "max_output_tokens",
             f"must be a whole number from 1 to {MAX_OUTPUT_TOKENS_LIMIT}"),
            (_positive_int(self.request_timeout_seconds, MAX_REQUEST_TIMEOUT_SECONDS), "request_timeout_seconds",
             f"must be a whole number of seconds from 1 to {MAX_REQUEST_TIMEOUT_SECONDS} "
             "(below API Gateway's 29-second integration timeout)"),
            (isinstance(self.system_prompt, str) and len(self.system_prompt.strip()) > 0
             and len(self.system_prompt) <= MAX_SYSTEM_PROMPT_CHARS, "system_prompt",
             f"must be non-empty text of at most {MAX_SYSTEM_PROMPT_CHARS} characters"),
            (_number(self.learning_rate) and 0 < self.learning_rate <= 1, "learning_rate",
             "must be greater than 0 and at most 1"),
            (isinstance(self.upstream_base_url, str) and bool(_BASE_URL.match(self.upstream_base_url)),
             "upstream_base_url", "must be an https:// URL (or http:// on 127.0.0.1 or localhost)"),
        ]  # fmt: skip
        if self.provider == "bedrock":
            checks.append((isinstance(self.model_id, str) and bool(_BEDROCK_MODEL_ID.match(self.model_id)),
                           "model_id", "must be a Bedrock model id, inference-profile id or ARN such as "
                           "'anthropic.claude-3-haiku-20240307-v1:0' or 'us.amazon.nova-lite-v1:0'"))  # fmt: skip
        else:
            checks.append((isinstance(self.model_id, str) and bool(_OPENAI_MODEL_ID.match(self.model_id)),
                           "model_id", "must be the upstream's model name of 1-128 letters, digits or ._:/-"))  # fmt: skip  # noqa: E501
        checks.append((isinstance(self.additional_model_ids, tuple) and all(
            isinstance(m, str) and _BEDROCK_MODEL_ID.match(m) for m in self.additional_model_ids),
            "additional_model_ids", "must be a tuple of Bedrock model ids, inference-profile ids or ARNs"))  # fmt: skip
        for ok, field_name, rule in checks:
            if not ok:
                return field_name, rule
        return None

    def bedrock_model_ids(self) -> list[str]:
        """The Bedrock models the API may call: model_id (when it is a Bedrock id) and additional_model_ids."""
        ids = [self.model_id] if _BEDROCK_MODEL_ID.match(self.model_id) else []
        return ids + [m for m in self.additional_model_ids if m not in ids]


_PLAN_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
_ORIGIN = re.compile(r"^https://[A-Za-z0-9.-]+(?::\d+)?$|^http://(?:localhost|127\.0\.0\.1)(?::\d+)?$")


@dataclass(frozen=True)
class UsagePlanConfig:
    """API Gateway usage plan: per-key steady rate (requests/s), burst, and requests per day."""

    name: str
    rate_limit: float
    burst_limit: int
    daily_quota: int


@dataclass(frozen=True)
class ApiConfig:
    """The REST API's limits and hardening; validated as part of its StageConfig."""

    usage_plans: tuple[UsagePlanConfig, ...] = (
        UsagePlanConfig("standard", rate_limit=2, burst_limit=5, daily_quota=2_000),
        UsagePlanConfig("premium", rate_limit=10, burst_limit=20, daily_quota=20_000),
    )
    # Stage-wide throttling that applies before any usage plan.
    throttle_rate_limit: float = 50
    throttle_burst_limit: int = 100
    authorizer_cache_seconds: int = 300
    # How long the inference function keeps parameters before reading Parameter Store again.
    config_cache_seconds: int = 60
    cors_allowed_origins: tuple[str, ...] = ()
    waf_enabled: bool = False
    # Requests per 5 minutes from one IP before the WAF rate-based rule blocks it.
    waf_rate_limit: int = 1_000
    reserved_concurrency: int = 10
    # Largest request body the API accepts (bytes); API Gateway itself stops at 10 MB.
    max_body_bytes: int = 256 * 1024

    def problem(self) -> tuple[str, str] | None:
        names = [p.name for p in self.usage_plans] if isinstance(self.usage_plans, tuple) else []
        plans_ok = bool(names) and len(set(names)) == len(names) and all(
            isinstance(p, UsagePlanConfig) and _PLAN_NAME.match(p.name) and _number(p.rate_limit)
            and 0 < p.rate_limit <= 10_000 and _positive_int(p.burst_limit, 5_000)
            and _positive_int(p.daily_quota, 100_000_000) for p in self.usage_plans
        )  # fmt: skip
        checks: list[tuple[bool, str, str]] = [
            (plans_ok, "usage_plans", "must be a non-empty tuple of UsagePlanConfig with unique lowercase names, "
             "rate 0-10000/s, burst 1-5000 and a daily quota 1-100000000"),
            (_number(self.throttle_rate_limit) and 0 < self.throttle_rate_limit <= 10_000, "throttle_rate_limit",
             "must be greater than 0 and at most 10000 requests per second"),
            (_positive_int(self.throttle_burst_limit, 5_000), "throttle_burst_limit", "must be from 1 to 5000"),
            (_positive_int(self.authorizer_cache_seconds, 3_600, minimum=0), "authorizer_cache_seconds",
             "must be a whole number of seconds from 0 to 3600"),
            (_positive_int(self.config_cache_seconds, 3_600, minimum=0), "config_cache_seconds",
             "must be a whole number of seconds from 0 to 3600"),
            (isinstance(self.cors_allowed_origins, tuple) and all(
                isinstance(o, str) and _ORIGIN.match(o) for o in self.cors_allowed_origins),
             "cors_allowed_origins", "must be a tuple of origins such as 'https://app.example.com' (no '*')"),
            (isinstance(self.waf_enabled, bool), "waf_enabled", "must be True or False"),
            (_positive_int(self.waf_rate_limit, 2_000_000_000, minimum=10), "waf_rate_limit",
             "must be a whole number of requests per 5 minutes, at least 10"),
            (_positive_int(self.reserved_concurrency, 1_000), "reserved_concurrency", "must be from 1 to 1000"),
            (_positive_int(self.max_body_bytes, 6 * 1024 * 1024, minimum=1024), "max_body_bytes",
             "must be from 1024 bytes to 6 MB (the Lambda payload limit)"),
        ]  # fmt: skip
        for ok, field_name, rule in checks:
            if not ok:
                return field_name, rule
        return None


AUDIT_MODES = ("required", "best_effort")
AUDIT_CONTENTS = ("full", "redacted", "metadata_only")


@dataclass(frozen=True)
class AuditConfig:
    """The inference audit log; validated as part of its StageConfig."""

    # required: no record, no model output released (5xx); best_effort: log, count and continue.
    mode: str = "required"
    # full | redacted (personal data and secrets masked) | metadata_only (no text).
    content: str = "full"
    # S3 Object Lock (governance mode) retention of every record.
    object_lock_days: int = 365
    # Records move to Glacier Instant Retrieval after this many days.
    cold_transition_days: int = 90
    # Firehose buffers this long before writing a Parquet file (60-900 s).
    buffer_seconds: int = 300
    # Athena stops a query that would scan more than this (bytes).
    athena_bytes_scanned_cutoff: int = 10 * 1024**3

    def problem(self) -> tuple[str, str] | None:
        checks: list[tuple[bool, str, str]] = [
            (self.mode in AUDIT_MODES, "mode", f"must be one of {', '.join(AUDIT_MODES)}"),
            (self.content in AUDIT_CONTENTS, "content", f"must be one of {', '.join(AUDIT_CONTENTS)}"),
            (_positive_int(self.object_lock_days, 36_500), "object_lock_days", "must be a whole number of days from 1"),
            (_positive_int(self.cold_transition_days, 3_650), "cold_transition_days",
             "must be a whole number of days from 1 to 3650"),
            (_positive_int(self.buffer_seconds, 900, minimum=60), "buffer_seconds", "must be from 60 to 900 seconds"),
            (_positive_int(self.athena_bytes_scanned_cutoff, 2**50, minimum=10 * 1024**2),
             "athena_bytes_scanned_cutoff", "must be at least 10 MB (Athena's minimum)"),
        ]  # fmt: skip
        for ok, field_name, rule in checks:
            if not ok:
                return field_name, rule
        return None


@dataclass(frozen=True)
class StageConfig:
    """Everything that differs between stages. Frozen: build a variant with ``dataclasses.replace``."""

    name: str
    # Stateful resources (buckets, keys): True keeps them when the stack is deleted.
    retain_data: bool
    termination_protection: bool
    # Empty and delete buckets on stack deletion (only meaningful when retain_data is False).
    auto_delete_objects: bool
    log_retention_days: int
    # Days S3 server access logs are kept in the log bucket.
    access_log_retention_days: int
    noncurrent_version_expiration_days: int
    intelligent_tiering_transition_days: int
    abort_incomplete_multipart_upload_days: int
    # KMS waits this long before deleting a key scheduled for deletion (7-30 days).
    kms_pending_window_days: int
    dataset_prefix: str = "datasets/"
    reader_service_principals: tuple[str, ...] = (
        "sagemaker.amazonaws.com",
        "bedrock.amazonaws.com",
    )
    # A local folder uploaded under dataset_prefix at deploy time; None uploads nothing.
    dataset_source_dir: str | None = None
    model: ModelConfig = ModelConfig()
    api: ApiConfig = ApiConfig()
    audit: AuditConfig = AuditConfig()

    def __post_init__(self) -> None:
        self._check(
            bool(re.fullmatch(r"[a-z][a-z0-9]{1,11}", self.name)),
            "name",
            "must be 2-12 lowercase letters or digits, starting with a letter",
        )
        if self.retain_data and self.auto_delete_objects:
            self._fail("auto_delete_objects", "must be False when retain_data is True (retained data is never emptied)")
        self._check(
            self.log_retention_days in VALID_LOG_RETENTION_DAYS,
            "log_retention_days",
            f"must be one of CloudWatch Logs' retention periods {VALID_LOG_RETENTION_DAYS}",
        )
        for name in (
            "access_log_retention_days",
            "noncurrent_version_expiration_days",
            "abort_incomplete_multipart_upload_days",
        ):
            self._check(_positive_int(getattr(self, name), 3650), name, "must be a whole number of days from 1 to 3650")
        self._check(
            _positive_int(self.intelligent_tiering_transition_days, 3650, minimum=0),
            "intelligent_tiering_transition_days",
            "must be a whole number of days from 0 to 3650",
        )
        self._check(
            _positive_int(self.kms_pending_window_days, 30, minimum=7),
            "kms_pending_window_days",
            "must be a whole number of days from 7 to 30",
        )
        self._check(
            isinstance(self.dataset_prefix, str)
            and bool(_DATASET_PREFIX.match(self.dataset_prefix))
            and ".." not in self.dataset_prefix.split("/"),
            "dataset_prefix",
            "must be a relative S3 key prefix ending in '/', such as 'datasets/'",
        )
        self._check(
            isinstance(self.reader_service_principals, tuple)
            and len(self.reader_service_principals) > 0
            and all(isinstance(p, str) and SERVICE_PRINCIPAL.match(p) for p in self.reader_service_principals),
            "reader_service_principals",
            "must be a non-empty tuple of AWS service principals such as 'sagemaker.amazonaws.com'",
        )
        self._check(
            self.dataset_source_dir is None
            or (isinstance(self.dataset_source_dir, str) and self.dataset_source_dir.strip() != ""),
            "dataset_source_dir",
            "must be None or the path of a local folder",
        )

        self._check(isinstance(self.model, ModelConfig), "model", "must be a ModelConfig")
        self._check(isinstance(self.api, ApiConfig), "api", "must be an ApiConfig")
        self._check(isinstance(self.audit, AuditConfig), "audit", "must be an AuditConfig")
        for section in ("model", "api", "audit"):
            part = getattr(self, section)
            found = part.problem()
            if found is not None:
                field_name, rule = found
                value = getattr(part, field_name, None)
                raise ConfigError(f"Stage '{self.name}': {section}.{field_name} {rule} (got {value!r}).")

    def _check(self, ok: bool, field_name: str, rule: str) -> None:
        if not ok:
            self._fail(field_name, rule)

    def _fail(self, field_name: str, rule: str) -> None:
        value = getattr(self, field_name, None)
        raise ConfigError(f"Stage '{self.name}': {field_name} {rule} (got {value!r}).")

    def stack_name(self, component: str) -> str:
        """CloudFormation stack name for one component, e.g. ``llm-platform-dev-data``."""
        return f"{APP_NAME}-{self.name}-{component}"

    @property
    def parameter_path(self) -> str:
        """Root of this stage's Parameter Store hierarchy, e.g. ``/llm-platform/dev``."""
        return f"/{APP_NAME}/{self.name}"


def _positive_int(value: Any, maximum: int, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


DEV = StageConfig(
    name="dev",
    retain_data=False,
    termination_protection=False,
    auto_delete_objects=True,
    log_retention_days=14,
    access_log_retention_days=30,
    noncurrent_version_expiration_days=7,
    intelligent_tiering_transition_days=0,
    abort_incomplete_multipart_upload_days=1,
    kms_pending_window_days=7,
    api=ApiConfig(cors_allowed_origins=("http://localhost:3000",), authorizer_cache_seconds=60, reserved_concurrency=5),
    audit=AuditConfig(
        mode="best_effort", content="full", object_lock_days=1, cold_transition_days=30, buffer_seconds=60
    ),
)

PROD = StageConfig(
    name="prod",
    retain_data=True,
    termination_protection=True,
    auto_delete_objects=False,
    log_retention_days=365,
    access_log_retention_days=365,
    noncurrent_version_expiration_days=90,
    intelligent_tiering_transition_days=30,
    abort_incomplete_multipart_upload_days=7,
    kms_pending_window_days=30,
    api=ApiConfig(waf_enabled=True, reserved_concurrency=50, throttle_rate_limit=100, throttle_burst_limit=200),
    audit=AuditConfig(mode="required", content="redacted", object_lock_days=365, cold_transition_days=90),
)

STAGES: dict[str, StageConfig] = {stage.name: stage for stage in (DEV, PROD)}


@dataclass(frozen=True)
class Deployment:
    """What app.py resolved from context: the stage plus an optional target environment."""

    stage: StageConfig
    account: str | None = None
    region: str | None = None
    # `-c cfn_validation=true`: also run aws-cdk-lib's built-in CloudFormation validation (slow).
    cfn_validation: bool = False


def resolve_deployment(context: dict[str, Any]) -> Deployment:
    """Turn raw context values (``-c stage=... -c account=... -c region=... -c cfn_validation=...``) into a Deployment.

    Raises ConfigError naming the key and the valid values.
    """
    raw_stage = context.get("stage") or "dev"
    if not isinstance(raw_stage, str) or raw_stage not in STAGES:
        raise ConfigError(f"Context key 'stage' must be one of {', '.join(sorted(STAGES))} (got {raw_stage!r}).")
    account = _optional_context(context, "account", _ACCOUNT, "a 12-digit AWS account id")
    region = _optional_context(context, "region", _REGION, "an AWS region name such as 'eu-west-1'")
    raw_validation = context.get("cfn_validation")
    if raw_validation not in (None, "", True, False, "true", "false"):
        raise ConfigError(f"Context key 'cfn_validation' must be true or false (got {raw_validation!r}).")
    cfn_validation = raw_validation in (True, "true")
    return Deployment(stage=STAGES[raw_stage], account=account, region=region, cfn_validation=cfn_validation)


def _optional_context(context: dict[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = context.get(key)
    if value is None or value == "":
        return None
    # `-c account=123...` arrives as a string, but cdk.json may hold a number.
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not pattern.match(text):
        raise ConfigError(f"Context key '{key}' must be {what} (got {value!r}).")
    return text
