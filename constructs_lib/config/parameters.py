"""Plain (String and StringList) SSM parameters under one path, with an exact read grant."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from constructs_lib.config.secure_parameter import parameter_arn

_PATH = re.compile(r"^(?:/[A-Za-z0-9_.\-]+)+$")
_LEAF = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True, kw_only=True)
class ConfigParametersProps:
    # Absolute path the parameters live under, e.g. "/llm-platform/dev/model".
    path: str
    # Leaf name -> value; names are lowercase-with-dashes.
    strings: Mapping[str, str]
    string_lists: Mapping[str, Sequence[str]] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _PATH.match(self.path):
            raise ValueError(
                f"ConfigParametersProps.path must be an absolute path like '/app/stage/model', got {self.path!r}."
            )
        for leaf in [*self.strings, *self.string_lists]:
            if not _LEAF.match(leaf):
                raise ValueError(
                    f"ConfigParametersProps: parameter name {leaf!r} must be lowercase letters, digits and '-'."
                )
        if set(self.strings) & set(self.string_lists):
            raise ValueError("ConfigParametersProps: a name cannot be both a String and a StringList.")
        for leaf, value in self.strings.items():
            if not value:
                raise ValueError(f"ConfigParametersProps: {leaf} must not be empty (SSM rejects empty values).")


class ConfigParameters(Construct):
    """Attributes: ``path``, ``parameters`` (leaf name -> ssm.StringParameter/StringListParameter)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ConfigParametersProps) -> None:
        super().__init__(scope, construct_id)
        self.path = props.path
        self.parameters: dict[str, ssm.StringParameter | ssm.StringListParameter] = {}
        for leaf, value in props.strings.items():
            self.parameters[leaf] = ssm.StringParameter(
                self,
                _construct_id(leaf),
                parameter_name=f"{props.path}/{leaf}",
                string_value=value,
                description=props.descriptions.get(leaf),
                tier=ssm.ParameterTier.STANDARD,
            )
        for leaf, values in props.string_lists.items():
            self.parameters[leaf] = ssm.StringListParameter(
                self,
                _construct_id(leaf),
                parameter_name=f"{props.path}/{leaf}",
                string_list_value=list(values),
                description=props.descriptions.get(leaf),
                tier=ssm.ParameterTier.STANDARD,
            )

    def parameter_name(self, leaf: str) -> str:
        return f"{self.path}/{leaf}"

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """``ssm:GetParameter(s)`` on exactly these parameters, ``ssm:GetParametersByPath`` on the path."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["ssm:GetParameter", "ssm:GetParameters"],
            resource_arns=[p.parameter_arn for p in self.parameters.values()],
        )
        return grant.combine(self.grant_read_by_path(grantee))

    def grant_read_by_path(self, grantee: iam.IGrantable) -> iam.Grant:
        """``ssm:GetParametersByPath`` on the path only: what a reader of the whole tree at once needs (Powertools'
        ``get_multiple``). Parameter Store authorizes that call against the path, not the parameters it returns, so
        such a reader needs no ``ssm:GetParameter`` on each (ps-retrieval-authorization in AWS's guide)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["ssm:GetParametersByPath"], resource_arns=[parameter_arn(self, self.path)]
        )


def _construct_id(leaf: str) -> str:
    return "".join(part.capitalize() for part in leaf.split("-"))
