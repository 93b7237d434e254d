"""Deployment stages modelled in code: everything that differs between dev and prod lives here.

A StageConfig is the stage-wide lifecycle settings plus one section per capability, each owned by its
capability (constructs_lib/<capability>/settings.py). Values are plain Python (no CDK types) so they are
validated and tested without synthesizing; a bad one raises ConfigError with one sentence naming the
stage, the field and the rule.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from dataclasses import dataclass, field

from constructs_lib.audit.settings import AuditConfig
from constructs_lib.chat.settings import ChatConfig
from constructs_lib.config.settings import ModelConfig
from constructs_lib.dataset.settings import DatasetConfig
from constructs_lib.foundation.settings import VALID_LOG_RETENTION_DAYS, ConfigError, Settings, whole
from constructs_lib.guardrails.settings import GuardrailConfig, RegexFilter
from constructs_lib.inference.settings import ApiConfig, UsagePlanConfig
from constructs_lib.knowledge.settings import KnowledgeConfig
from constructs_lib.observability.settings import ObservabilityConfig
from constructs_lib.web.settings import WebConfig
from lambda_src.contracts.naming import parameter_root, stack_name
from lambda_src.contracts.spend import Limits


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
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    web: WebConfig = field(default_factory=WebConfig)
    guardrails: GuardrailConfig = field(default_factory=GuardrailConfig)
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)

    def __post_init__(self) -> None:
        self._check(bool(re.fullmatch(r"[a-z][a-z0-9]{1,11}", self.name)), "name",
                    "must be 2-12 lowercase letters or digits, starting with a letter")  # fmt: skip
        if self.retain_data and self.auto_delete_objects:
            self._fail("auto_delete_objects", "must be False when retain_data is True (retained data is never emptied)")
        self._check(self.log_retention_days in VALID_LOG_RETENTION_DAYS, "log_retention_days",
                    f"must be one of CloudWatch Logs' retention periods {VALID_LOG_RETENTION_DAYS}")  # fmt: skip
        for name in ("access_log_retention_days", "noncurrent_version_expiration_days",
                     "abort_incomplete_multipart_upload_days"):  # fmt: skip
            self._check(whole(getattr(self, name), 3650), name, "must be a whole number of days from 1 to 3650")
        self._check(whole(self.intelligent_tiering_transition_days, 3650, minimum=0),
                    "intelligent_tiering_transition_days", "must be a whole number of days from 0 to 3650")  # fmt: skip
        self._check(whole(self.kms_pending_window_days, 30, minimum=7), "kms_pending_window_days",
                    "must be a whole number of days from 7 to 30")  # fmt: skip
        # Each capability's section: the right type, then its own rules.
        for section, kind in _sections().items():
            part = getattr(self, section)
            self._check(isinstance(part, kind), section, f"must be a {kind.__name__}")
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
        return stack_name(self.name, component)

    @property
    def parameter_path(self) -> str:
        """Root of this stage's Parameter Store hierarchy, e.g. ``/llm-platform/dev``."""
        return parameter_root(self.name)


@functools.cache
def _sections() -> dict[str, type[Settings]]:
    """The StageConfig fields that are a capability's settings, by name."""
    hints = typing.get_type_hints(StageConfig)
    return {
        field.name: hints[field.name]
        for field in dataclasses.fields(StageConfig)
        if isinstance(hints[field.name], type) and issubclass(hints[field.name], Settings)
    }


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
    chat=ChatConfig(mfa="optional", history_retention_days=30, callback_urls=("http://localhost:3000/",)),
    # Within dev's $10 a month at idle (bench/idle_cost.py): no dashboard, and only the API's 5xx rate, the API
    # functions' errors and the knowledge pipeline's failed and late runs ($0.90 a month); no subscriber.
    observability=ObservabilityConfig(
        dashboard=False,
        api_p99_latency_ms=None,
        function_throttles=None,
        audit_delivery_success_percent=None,
        audit_conversion_failures=None,
        budget_exhausted_percent=None,
        guardrail_interventions=None,
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

# `make local` has no Bedrock: its knowledge base is embedded by all-MiniLM-L6-v2 on the laptop
# (tools/local/embedding_server.py), which answers in 384 dimensions and reads 256 word pieces per text. The index
# dimension is fixed at deploy, so the local deployment sizes it (and the chunks) for that model. tools/local/deploy.py
# asks for this variant with `-c local=true`; everything it does not name is the stage as it deploys to AWS.
LOCAL_EMBEDDING_MODEL = "all-minilm-l6-v2"
LOCAL_EMBEDDING_DIMENSION = 384
# A plan whose keys run out of tokens within a few questions to the local model (make e2e shows the 429).
TRIAL_PLAN = UsagePlanConfig(
    "trial",
    rate_limit=2,
    burst_limit=5,
    daily_quota=1_000,
    budget=Limits(tokens_per_minute=5_000, tokens_per_day=1_200, tokens_per_month=5_000),
)
# Seconds the functions cache the model settings locally: a model switched in Parameter Store applies at once.
LOCAL_CONFIG_CACHE_SECONDS = 2
# What the local guardrail blocks and masks beside the stage's own policies (the emulator's stand-in assesses words,
# regexes and a few PII types: `make e2e` shows a blocked request through the openai SDK and in the chat app).
LOCAL_BLOCKED_PHRASE = "project bluebird"
LOCAL_MASKED_ID = RegexFilter("employee-id", r"EMP-\d{6}", "ANONYMIZE", "Employee numbers")


def with_local_models(stage: StageConfig) -> StageConfig:
    """The stage as `make local` deploys it: the knowledge base sized for the local embedding model, a trial plan
    with a tiny daily token budget beside the stage's plans, a short model settings cache, and a blocked phrase and
    a masked pattern in the guardrail."""
    knowledge = dataclasses.replace(stage.knowledge, embedding_provider="openai-compatible",
                                    embedding_model_id=LOCAL_EMBEDDING_MODEL, dimension=LOCAL_EMBEDDING_DIMENSION,
                                    chunk_tokens=200, chunk_overlap_tokens=30)  # fmt: skip
    api = dataclasses.replace(stage.api, usage_plans=(*stage.api.usage_plans, TRIAL_PLAN),
                              config_cache_seconds=LOCAL_CONFIG_CACHE_SECONDS)  # fmt: skip
    guardrails = dataclasses.replace(stage.guardrails, words=(*stage.guardrails.words, LOCAL_BLOCKED_PHRASE),
                                     regexes=(*stage.guardrails.regexes, LOCAL_MASKED_ID))  # fmt: skip
    return dataclasses.replace(stage, knowledge=knowledge, api=api, guardrails=guardrails)


def with_local_web_origin(stage: StageConfig, origin: str) -> StageConfig:
    """The stage with ``origin`` (where `make local` serves the web app) among the API's CORS origins."""
    if origin in stage.api.cors_allowed_origins:
        return stage
    api = dataclasses.replace(stage.api, cors_allowed_origins=(*stage.api.cors_allowed_origins, origin))
    return dataclasses.replace(stage, api=api)
