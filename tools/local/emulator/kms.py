"""KMS: CloudFormation's tag shape ({Key, Value}) -> the one moto's KMS backend takes ({TagKey, TagValue})."""

from __future__ import annotations

from moto.kms import models

from tools.local.emulator.cloudformation import convert_tags


def install() -> None:
    convert_tags(models.Key, lambda tags: [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tags])
