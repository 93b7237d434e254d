"""IAM scan over every policy in every synthesized template: no `*` or `service:*` actions and no
Resource `*`, except what quality/iam-allowlist.json allows with a reason. Deny statements are not checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.infra.conftest import ROOT, Synth

ALLOWLIST: list[dict[str, Any]] = json.loads((ROOT / "quality" / "iam-allowlist.json").read_text())


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


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


def violations(stack: str, template: dict[str, Any]) -> list[str]:
    found = []
    for logical_id, kind, document in policy_documents(template):
        for index, statement in enumerate(_listify(document.get("Statement", []))):
            if statement.get("Effect") != "Allow":
                continue
            actions = [a for a in _listify(statement.get("Action", [])) if isinstance(a, str)]
            resource_star = "*" in _listify(statement.get("Resource", []))
            for action in actions:
                wildcard_action = action == "*" or action.endswith(":*")
                if (wildcard_action or resource_star) and not _allowed(kind, statement, action, resource_star):
                    what = "wildcard action" if wildcard_action else "Resource '*'"
                    found.append(
                        f"{stack}/{logical_id} statement {index} ({statement.get('Sid', '-')}): {what} {action}"
                    )
    return found


def test_no_policy_grants_wildcard_actions_or_resources(variants: dict[str, Synth]):
    scanned = [d for synth in variants.values() for t in synth.templates.values() for d in policy_documents(t)]
    assert len(scanned) > 50  # every variant's roles, managed policies, bucket and key policies
    problems = [v for synth in variants.values() for stack, t in synth.templates.items() for v in violations(stack, t)]
    assert problems == [], "\n".join(problems)


USER = "arn:aws:iam::111122223333:user/x"


def test_the_scan_finds_what_it_should():
    template = {"Resources": {
        "Bad": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"},
            {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"},
            {"Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*"},
        ]}}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*", "Principal": {"AWS": USER}},
        ]}}},
    }}  # fmt: skip
    found = violations("s", template)
    assert found == [
        "s/Bad statement 0 (-): wildcard action s3:*",
        "s/Bad statement 1 (-): Resource '*' dynamodb:GetItem",
        "s/Key statement 0 (-): wildcard action kms:*",
    ]


def test_every_allowlist_entry_has_a_reason():
    for entry in ALLOWLIST:
        assert len(entry["reason"].split()) >= 8, entry
