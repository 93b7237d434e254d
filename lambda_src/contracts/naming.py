"""How the platform names what it deploys: stacks and the root of each stage's parameter tree."""

from __future__ import annotations

APP_NAME = "llm-platform"


def stack_name(stage: str, component: str) -> str:
    """CloudFormation stack name of one component, e.g. ``llm-platform-dev-data``."""
    return f"{APP_NAME}-{stage}-{component}"


def account_stack_name() -> str:
    """The one stack per account and region that every stage shares: ``llm-platform-account``."""
    return f"{APP_NAME}-account"


def parameter_root(stage: str) -> str:
    """Root of a stage's Parameter Store hierarchy, e.g. ``/llm-platform/dev``."""
    return f"/{APP_NAME}/{stage}"


def resource_name(stage: str, name: str) -> str:
    """The physical name of a stage's resource that is found by name, e.g. ``llm-platform-dev-api`` (the REST API,
    the ApiName of its CloudWatch metrics) or ``llm-platform-dev-alarms`` (the alarm topic): unique per stage, so
    two stages in one account never share it."""
    return f"{APP_NAME}-{stage}-{name}"
