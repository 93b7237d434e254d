"""IAM scan: no `*` or `service:*` actions and no Resource `*`, except what quality/iam-allowlist.json allows
with a reason. Deny statements are not checked. Used on synthesized templates (make test) and on the
policies read back from the local emulator (make local)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ALLOWLIST: list[dict[str, Any]] = json.loads(
    (Path(__file__).resolve().parents[2] / "quality" / "iam-allowlist.json").read_text()
)


def listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(logical id, resource type, policy document) for every policy a template holds."""
    for logical_id, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy",
                    "AWS::SNS::TopicPolicy"):  # fmt: skip
            yield logical_id, kind, props["PolicyDocument"]
        elif kind == "AWS::KMS::Key":
            yield logical_id, kind, props["KeyPolicy"]
        elif kind == "AWS::IAM::Role":
            for inline in props.get("Policies", []):
                yield logical_id, kind, inline["PolicyDocument"]


def _is_account_root(principal: Any) -> bool:
    text = json.dumps(principal)
    prefix = '{"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}'
    return text.startswith(prefix) and text.endswith(':root"]]}}')


def _allowed(kind: str, statement: dict[str, Any], action: str, resource_star: bool) -> bool:
    wildcard_action = action == "*" or action.endswith(":*")
    for entry in ALLOWLIST:
        if entry["resource_type"] not in ("*", kind):
            continue
        # A wildcard action must be listed literally; "*" in an entry only lets any action use Resource '*'.
        if action not in entry["actions"] and (wildcard_action or "*" not in entry["actions"]):
            continue
        if entry.get("principal_is_account_root") and not _is_account_root(statement.get("Principal")):
            continue
        if resource_star and not entry.get("resource_star"):
            continue
        return True
    return False


def document_violations(kind: str, document: dict[str, Any]) -> list[str]:
    """'statement N (sid): what action' for each statement of one policy document that is too wide."""
    found = []
    for index, statement in enumerate(listify(document.get("Statement", []))):
        if statement.get("Effect") != "Allow":
            continue
        actions = [a for a in listify(statement.get("Action", [])) if isinstance(a, str)]
        resource_star = "*" in listify(statement.get("Resource", []))
        for action in actions:
            wildcard_action = action == "*" or action.endswith(":*")
            if (wildcard_action or resource_star) and not _allowed(kind, statement, action, resource_star):
                what = "wildcard action" if wildcard_action else "Resource '*'"
                found.append(f"statement {index} ({statement.get('Sid', '-')}): {what} {action}")
    return found


def violations(stack: str, template: dict[str, Any]) -> list[str]:
    """Every too-wide statement of a template, as 'stack/logical id statement N (sid): what action'."""
    return [
        f"{stack}/{logical_id} {problem}"
        for logical_id, kind, document in policy_documents(template)
        for problem in document_violations(kind, document)
    ]
