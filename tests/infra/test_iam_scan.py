"""IAM scan (tools/gates/iam_scan.py) over every policy in every synthesized template: no `*` or `service:*` actions
and no Resource `*`, except what quality/iam-allowlist.json allows with a reason."""

from __future__ import annotations

import json

from tests.infra.conftest import Synth
from tools.gates.iam_scan import ALLOWLIST, policy_documents, violations


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


# IAM's limit on a customer-managed policy document (whitespace excluded); CDK splits no managed policy.
MANAGED_POLICY_MAX_CHARS = 6_144


def test_every_managed_policy_fits_iams_size_limit(variants: dict[str, Synth]):
    """Grants all land in one managed policy per function: it must stay deployable. The template form
    (Fn::Join of ARNs) is longer than the resolved document, so this errs on the safe side."""
    for synth in variants.values():
        for stack, template in synth.templates.items():
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] == "AWS::IAM::ManagedPolicy":
                    size = len(json.dumps(resource["Properties"]["PolicyDocument"], separators=(",", ":")))
                    assert size < MANAGED_POLICY_MAX_CHARS, f"{stack}/{logical_id}: {size} characters"
