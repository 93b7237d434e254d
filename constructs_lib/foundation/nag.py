"""cdk-nag v3 wiring: the five rule packs and the one way this project acknowledges a finding."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aws_cdk as cdk
from cdk_nag import (
    AwsSolutionsChecks,
    HIPAASecurityChecks,
    NIST80053R5Checks,
    PCIDSS321Checks,
    ServerlessChecks,
)
from constructs import Construct, IConstruct

# Pack name as cdk-nag reports it -> rule-id prefix of its findings.
NAG_PACKS: dict[str, str] = {
    "AwsSolutions": "AwsSolutions-",
    "NIST.800.53.R5": "NIST.800.53.R5-",
    "HIPAA.Security": "HIPAA.Security-",
    "PCI.DSS.321": "PCI.DSS.321-",
    "Serverless": "Serverless-",
}

# Rules every Lambda of the platform meets by design, not by configuration (see each acknowledgment's reason).
LAMBDA_DLQ_RULES = ("NIST.800.53.R5-LambdaDLQ", "HIPAA.Security-LambdaDLQ", "Serverless-LambdaDLQ")
LAMBDA_VPC_RULES = ("NIST.800.53.R5-LambdaInsideVPC", "HIPAA.Security-LambdaInsideVPC", "PCI.DSS.321-LambdaInsideVPC")

ACK_METADATA_TYPE = "aws:cdk:acknowledged-rules"
# Where acknowledge() records what it would have acknowledged while acknowledgments are disabled.
_DISABLED_ACK_METADATA_TYPE = "llm-platform:acknowledgment-disabled"
_MIN_REASON_WORDS = 8
_state = {"enabled": True}


def apply_nag_packs(app: cdk.App) -> None:
    """All five packs on the whole app; any unacknowledged finding fails synth."""
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app),
        NIST80053R5Checks(app),
        HIPAASecurityChecks(app),
        PCIDSS321Checks(app),
        ServerlessChecks(app),
    )


def acknowledge(scope: IConstruct, reason: str, rule_ids: Iterable[str]) -> None:
    """Acknowledge exact findings on one construct (and its children), with a real reason.

    ``rule_ids`` are full finding ids, e.g. ``AwsSolutions-IAM5[Resource::<Bucket.Arn>/datasets/*]``.
    """
    ids = list(rule_ids)
    if not ids:
        raise ValueError("acknowledge() needs at least one rule id.")
    if len(reason.split()) < _MIN_REASON_WORDS:
        raise ValueError(f"Acknowledgment of {ids} needs a reason of at least {_MIN_REASON_WORDS} words.")
    for rule_id in ids:
        if not rule_id.startswith(tuple(NAG_PACKS.values())):
            raise ValueError(f"Acknowledgment id {rule_id!r} does not belong to any applied nag pack.")
        if _state["enabled"]:
            cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))
        else:
            scope.node.add_metadata(_DISABLED_ACK_METADATA_TYPE, {rule_id: reason})


@contextmanager
def acknowledgments_disabled() -> Iterator[None]:
    """Build constructs without applying acknowledgments, so a synth shows what each one hides.

    Tests use it to prove every acknowledgment matches a real finding (no stale or speculative ones);
    ``collect_acknowledgments(root, disabled=True)`` returns what would have been acknowledged.
    """
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = True


def nag_ref(resource: IConstruct, attribute: str | None = "Arn") -> str:
    """How cdk-nag renders a reference to ``resource`` in a finding id: ``<DatasetBucket5A07B7EE.Arn>`` for an
    attribute, ``<DatasetBucket5A07B7EE>`` for a ``Ref`` (``attribute=None``).

    ``resource`` is an L2 construct (its default child is used) or an L1 CfnResource.
    """
    name = logical_id(resource)
    return f"<{name}>" if attribute is None else f"<{name}.{attribute}>"


def logical_id(resource: IConstruct) -> str:
    """The logical id of ``resource`` (an L2 construct's default child, or an L1 CfnResource)."""
    cfn = resource.node.default_child or resource
    if not isinstance(cfn, cdk.CfnResource):
        raise ValueError(f"{resource.node.path} is not a CloudFormation resource defined in this app.")
    stack = cdk.Stack.of(cfn)
    return str(stack.resolve(stack.get_logical_id(cfn)))


@dataclass(frozen=True)
class AcknowledgedFinding:
    """One acknowledgment as recorded in the construct tree."""

    stack: str
    path: str
    rule_id: str
    reason: str

    @property
    def pack(self) -> str:
        for pack, prefix in NAG_PACKS.items():
            if self.rule_id.startswith(prefix):
                return pack
        return "unknown"


def collect_acknowledgments(root: Construct, *, disabled: bool = False) -> list[AcknowledgedFinding]:
    """Every acknowledgment recorded under ``root``, read back from construct metadata."""
    wanted = _DISABLED_ACK_METADATA_TYPE if disabled else ACK_METADATA_TYPE
    found: list[AcknowledgedFinding] = []
    for node in root.node.find_all():
        stack = _stack_name(node)
        for entry in node.node.metadata:
            if entry.type != wanted:
                continue
            for key, reason in dict(entry.data).items():
                found.append(AcknowledgedFinding(stack, node.node.path, rule_id_of(str(key)), str(reason)))
    return found


def rule_id_of(key: str) -> str:
    """cdk records acknowledgment keys as "<source>::<rule id>", e.g. "Annotation::AwsSolutions-S1"."""
    return key if key.startswith(tuple(NAG_PACKS.values())) else key.split("::", 1)[-1]


def _stack_name(node: IConstruct) -> str:
    try:
        return cdk.Stack.of(node).stack_name
    except RuntimeError:
        return "(app)"
