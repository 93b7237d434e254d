"""Deployment stages modelled in code: everything that differs between dev and prod lives here.

Values are plain Python (no CDK types) so they can be validated and tested without synthesizing;
stacks translate them into CDK settings. Validation runs in ``__post_init__`` and raises
:class:`ConfigError` with one sentence naming the stage, the field and the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

APP_NAME = "llm-platform"

# CloudWatch Logs only accepts these retention periods (days).
VALID_LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_SERVICE_PRINCIPAL = re.compile(r"^[a-z0-9][a-z0-9.-]*\.amazonaws\.com$")
# An S3 key prefix for the dataset: relative, slash-terminated, no traversal or wildcards.
_DATASET_PREFIX = re.compile(r"^(?:[A-Za-z0-9!_.'()-]+/)+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")


class ConfigError(ValueError):
    """Bad stage configuration or context; the message is one sentence meant for the user."""


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
            and all(isinstance(p, str) and _SERVICE_PRINCIPAL.match(p) for p in self.reader_service_principals),
            "reader_service_principals",
            "must be a non-empty tuple of AWS service principals such as 'sagemaker.amazonaws.com'",
        )
        self._check(
            self.dataset_source_dir is None
            or (isinstance(self.dataset_source_dir, str) and self.dataset_source_dir.strip() != ""),
            "dataset_source_dir",
            "must be None or the path of a local folder",
        )

    def _check(self, ok: bool, field_name: str, rule: str) -> None:
        if not ok:
            self._fail(field_name, rule)

    def _fail(self, field_name: str, rule: str) -> None:
        value = getattr(self, field_name, None)
        raise ConfigError(f"Stage '{self.name}': {field_name} {rule} (got {value!r}).")

    def stack_name(self, component: str) -> str:
        """CloudFormation stack name for one component, e.g. ``llm-platform-dev-data``."""
        return f"{APP_NAME}-{self.name}-{component}"


def _positive_int(value: Any, maximum: int, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum


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
