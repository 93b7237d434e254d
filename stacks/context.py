"""What app.py reads from CDK context, resolved into a Deployment (CDK-free, validated).

cdk synth -c stage=prod [-c account=123456789012 -c region=eu-west-1] [-c cfn_validation=true]
          [-c account_stack=false] [-c local=true] [-c local_web_origin=http://127.0.0.1:3000]
          [-c alarm_emails=ops@example.org,oncall@example.org]
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from constructs_lib.foundation.settings import ConfigError
from constructs_lib.observability.settings import MAX_EMAILS, valid_emails
from stacks.stages import STAGES, StageConfig, with_local_models, with_local_web_origin

CONTEXT_KEYS = ("stage", "account", "region", "cfn_validation", "account_stack", "local", "local_web_origin",
                "alarm_emails")  # fmt: skip
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")
_LOCAL_ORIGIN = re.compile(r"^http://(?:127\.0\.0\.1|localhost):\d{2,5}$")


@dataclass(frozen=True)
class Deployment:
    """What app.py resolved from context: the stage plus an optional target environment."""

    stage: StageConfig
    account: str | None = None
    region: str | None = None
    # `-c cfn_validation=true`: also run aws-cdk-lib's built-in CloudFormation validation (slow).
    cfn_validation: bool = False
    # `-c account_stack=false`: the account's API Gateway CloudWatch role is managed outside this app, so
    # the account-wide stack (stacks/account_stack.py) is left out and the api stack does not wait for it.
    account_stack: bool = True
    # `-c local=true` (make local only): the stage as the laptop runs it: the knowledge base sized for the local
    # embedding model, a trial plan with a tiny token budget, a short settings cache (stacks/stages.py,
    # with_local_models).
    local: bool = False
    # `-c local_web_origin=http://127.0.0.1:3000` (make local only): where the local edge serves the web app, an
    # origin the API's CORS allows beside the stage's own (stacks/stages.py, with_local_web_origin).
    local_web_origin: str | None = None
    # `-c alarm_emails=a@example.org,b@example.org`: who the stage's alarms mail, in place of the stage config's
    # observability.alarm_emails (None: the stage config's list).
    alarm_emails: tuple[str, ...] | None = None


def resolve_deployment(context: dict[str, Any]) -> Deployment:
    """Turn raw context values into a Deployment. Raises ConfigError naming the key and the valid values."""
    raw_stage = context.get("stage") or "dev"
    if not isinstance(raw_stage, str) or raw_stage not in STAGES:
        raise ConfigError(f"Context key 'stage' must be one of {', '.join(sorted(STAGES))} (got {raw_stage!r}).")
    account = _optional_context(context, "account", _ACCOUNT, "a 12-digit AWS account id")
    region = _optional_context(context, "region", _REGION, "an AWS region name such as 'eu-west-1'")
    local = _flag(context, "local", default=False)
    local_web_origin = _optional_context(context, "local_web_origin", _LOCAL_ORIGIN,
                                         "an http://127.0.0.1:<port> origin")  # fmt: skip
    stage = STAGES[raw_stage]
    if local:
        stage = with_local_models(stage)
    if local_web_origin:
        stage = with_local_web_origin(stage, local_web_origin)
    alarm_emails = _emails(context)
    if alarm_emails is not None:
        stage = dataclasses.replace(stage, observability=dataclasses.replace(stage.observability,
                                                                             alarm_emails=alarm_emails))  # fmt: skip
    return Deployment(
        stage=stage,
        account=account,
        region=region,
        cfn_validation=_flag(context, "cfn_validation", default=False),
        account_stack=_flag(context, "account_stack", default=True),
        local=local,
        local_web_origin=local_web_origin,
        alarm_emails=alarm_emails,
    )


def _flag(context: dict[str, Any], key: str, *, default: bool) -> bool:
    value = context.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, bool) and value not in ("true", "false"):
        raise ConfigError(f"Context key '{key}' must be true or false (got {value!r}).")
    return value in (True, "true")


def _optional_context(context: dict[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = context.get(key)
    if value is None or value == "":
        return None
    # `-c account=123...` arrives as a string, but cdk.json may hold a number.
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not pattern.match(text):
        raise ConfigError(f"Context key '{key}' must be {what} (got {value!r}).")
    return text


def _emails(context: dict[str, Any]) -> tuple[str, ...] | None:
    """``alarm_emails``: comma-separated on the command line, or a list in cdk.json; absent or empty: not given."""
    value = context.get("alarm_emails")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        emails = tuple(part.strip() for part in value.split(","))
    elif isinstance(value, list):
        emails = tuple(value)
    else:
        emails = ()
    if not emails or not valid_emails(emails):
        raise ConfigError(f"Context key 'alarm_emails' must be up to {MAX_EMAILS} distinct email addresses separated "
                          f"by commas, such as 'ops@example.org,oncall@example.org' (got {value!r}).")  # fmt: skip
    return emails
