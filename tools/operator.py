"""What the operator commands (`python -m tools.keys`, `tools.knowledge`, `tools.users`) share: the error an
operator is shown in one sentence, the stage check, the lookup of a stage's parameter and the exit codes (2: a
problem of the operator's input or deployment, 1: AWS refused a call)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_src.contracts import parameters
from stacks.stages import STAGES


class ToolError(Exception):
    """A problem to report to the operator in one sentence."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise ToolError(f"--stage must be one of {', '.join(sorted(STAGES))} (got {stage!r}).")


def stage_parameter(ssm: Any, stage: str, relative: str, missing: str) -> str:
    """The value of the stage's parameter ``relative``; ``missing`` (formatted with the parameter's ``name``) as
    the error when the parameter does not exist, which means the stack that writes it is not deployed here."""
    name = parameters.parameter_name(stage, relative)
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as error:
        if error_code(error) == "ParameterNotFound":
            raise ToolError(missing.format(name=name)) from None
        raise


def run_command(command: Callable[[], int]) -> int:
    """Run a command's body; its exit code, or the error printed on stderr and 2 (ours) or 1 (AWS's)."""
    try:
        return command()
    except ToolError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"Error: AWS refused the call: {error}", file=sys.stderr)
        return 1
