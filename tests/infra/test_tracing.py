"""X-Ray (issue 18): every project function traces actively (Lambda makes the invocation's segment), and each
role holds exactly the two X-Ray actions that the segment and the functions' own subsegments need, no more."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.infra.templates import by_type

ROOT = Path(__file__).resolve().parents[2]
XRAY = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def _actions(statement: dict[str, Any]) -> list[str]:
    found = statement["Action"]
    return sorted([found] if isinstance(found, str) else found)


def _project_functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    functions = by_type(template, "AWS::Lambda::Function").items()
    return {logical_id: resource["Properties"] for logical_id, resource in functions
            if resource["Properties"].get("Handler", "").startswith("lambda_src.")}  # fmt: skip


def _role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every statement of the managed and inline policies attached to the role (logical id) in its template."""
    found: list[dict[str, Any]] = []
    for kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
        for policy in by_type(template, kind).values():
            if {"Ref": role} in policy["Properties"].get("Roles", []):
                found += policy["Properties"]["PolicyDocument"]["Statement"]
    for inline in template["Resources"][role]["Properties"].get("Policies", []):
        found += inline["PolicyDocument"]["Statement"]
    return found


def test_the_functions_that_instrument_their_aws_calls():
    """The functions whose handler registers the X-Ray hooks (lambda_src/shared/tracing.py) before its clients."""
    instrumented = {path.parent.name for path in (ROOT / "lambda_src").glob("*/handler.py")
                    if re.search(r"^instrument\(", path.read_text(), re.MULTILINE)}  # fmt: skip
    assert instrumented == {"inference", "chat", "retrieval", "knowledge"}


def test_every_function_traces_actively_with_exactly_the_two_x_ray_actions(dev):
    handlers = set()
    for template in dev.templates.values():
        for properties in _project_functions(template).values():
            handlers.add(properties["Handler"])
            assert properties["TracingConfig"] == {"Mode": "Active"}, properties["Handler"]
            xray = [s for s in _role_statements(template, properties["Role"]["Fn::GetAtt"][0])
                    if any(a.startswith("xray:") for a in _actions(s))]  # fmt: skip
            assert [(s["Effect"], _actions(s), s["Resource"]) for s in xray] == [("Allow", XRAY, "*")], properties
    traced = {f"lambda_src.{name}.handler.{entry}" for name, entry in (
        ("inference", "lambda_handler"), ("chat", "lambda_handler"), ("retrieval", "lambda_handler"),
        ("knowledge", "discover"), ("knowledge", "ingest"), ("knowledge", "report"))}  # fmt: skip
    assert traced <= handlers


def _service(template: dict[str, Any], role: dict[str, str]) -> str:
    """The service principal a role (a Ref to it in this template) is for."""
    document = template["Resources"][role["Ref"]]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = document["Statement"]
    return str(statement["Principal"]["Service"])


def test_no_function_role_is_granted_any_other_x_ray_action(dev):
    """Sampling is Lambda's (the trace header's Sampled flag), so no function needs xray:GetSampling* or a wildcard,
    and no AWS-managed policy (AWSXRayDaemonWriteAccess) stands in for the two actions. (The knowledge pipeline's
    state machine samples for itself: Step Functions' role holds xray:GetSampling* for that.)"""
    checked = 0
    for template in dev.templates.values():
        for kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            for policy in by_type(template, kind).values():
                roles = policy["Properties"].get("Roles", [])
                if not roles or {_service(template, r) for r in roles} != {"lambda.amazonaws.com"}:
                    continue
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    actions = _actions(statement)
                    if any(a.startswith("xray:") or a == "*" for a in actions):
                        assert (actions, statement["Resource"]) == (XRAY, "*"), statement
                        checked += 1
        for role in by_type(template, "AWS::IAM::Role").values():
            assert "XRay" not in str(role["Properties"].get("ManagedPolicyArns", "")), role
    assert checked >= 6
