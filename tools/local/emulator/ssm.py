"""SSM: CloudFormation's tag shape for parameters (a map) -> the list moto's SSM backend takes; and a
parameter moto's CloudFormation creates a second time in one stack (it makes the resources again once the
stack's custom resources have answered) is the same one, not a ParameterAlreadyExists error. A parameter
of the same name with another value still fails, as in AWS."""

from __future__ import annotations

from typing import Any

from moto.ssm import models
from moto.ssm.exceptions import ParameterAlreadyExists

from tools.local.emulator.cloudformation import convert_tags


def install() -> None:
    convert_tags(models.Parameter, lambda tags: [{"Key": k, "Value": v} for k, v in tags.items()])
    create = models.Parameter.create_from_cloudformation_json.__func__

    def create_once(cls: Any, /, name: str, cfn: dict[str, Any], account: str, region: str, **kw: Any) -> Any:
        try:
            return create(cls, name, cfn, account, region, **kw)
        except ParameterAlreadyExists:
            properties = cfn.get("Properties", {})
            existing = models.ssm_backends[account][region].get_parameter(properties.get("Name"))
            if existing is None or existing.value != properties.get("Value"):
                raise
            return existing

    models.Parameter.create_from_cloudformation_json = classmethod(create_once)
