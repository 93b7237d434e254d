"""Reading synthesized templates in tests (plain JSON, no CDK import): resources by type or by construct path."""

from __future__ import annotations

from typing import Any


def by_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Resources of one type, by logical id."""
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    """Properties of the one resource of this type (fails if there are more or none)."""
    (resource,) = by_type(template, resource_type).values()
    props: dict[str, Any] = resource["Properties"]
    return props


def logical_id_at(template: dict[str, Any], path: str) -> str:
    """Find a resource by its construct path (``aws:cdk:path`` metadata), never by its hashed logical id.

    ``path`` names the construct (``stack/Inference/Policy``): an L2 construct's CloudFormation resource is its
    ``Resource`` (or, for a CustomResource, ``Default``) child, an L1 construct is the resource itself.
    """
    found = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource.get("Metadata", {}).get("aws:cdk:path") in (path, f"{path}/Resource", f"{path}/Default")
    ]
    assert len(found) == 1, f"expected one resource at {path}, found {found}"
    return str(found[0])


def rendered(value: Any) -> str:
    """A template value as text: ``Fn::Join`` joined, an import as ``<import:NAME>``, a ``Ref`` as ``${NAME}``."""
    if isinstance(value, str):
        return value
    if "Fn::ImportValue" in value:
        return f"<import:{value['Fn::ImportValue']}>"
    if "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    separator, parts = value["Fn::Join"]
    return str(separator).join(rendered(part) for part in parts)
