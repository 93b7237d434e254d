"""SSM: CloudFormation's tag shape for parameters (a map) -> the list moto's SSM backend takes."""

from __future__ import annotations

from moto.ssm import models

from tools.local.emulator.cloudformation import convert_tags


def install() -> None:
    convert_tags(models.Parameter, lambda tags: [{"Key": k, "Value": v} for k, v in tags.items()])
