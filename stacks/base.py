"""What every stack of the platform shares: its description and the stage's termination protection."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from stacks.stages import StageConfig


class PlatformStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, stage: StageConfig, purpose: str, env: cdk.Environment | None
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=f"LLM platform ({stage.name}): {purpose}",
            termination_protection=stage.termination_protection,
        )
