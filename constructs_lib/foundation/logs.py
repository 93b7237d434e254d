"""Encrypted log groups with a fixed retention (CloudWatch Logs retention in days -> the CDK enum)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from constructs_lib.foundation.keys import removal_policy
from constructs_lib.foundation.lazy import lazy_list

# jsii enums carry names, not day counts.
RETENTION_BY_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    try:
        return RETENTION_BY_DAYS[days]
    except KeyError:
        raise ValueError(f"Log retention must be one of {sorted(RETENTION_BY_DAYS)} days, got {days!r}.") from None


# What CloudWatch Logs passes to KMS with every request for a log group's data: the log group's ARN.
LOGS_ARN_CONTEXT = "kms:EncryptionContext:aws:logs:arn"
LOGS_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*")


class _LogsKeyUse(Construct):
    """The one key-policy statement letting CloudWatch Logs use a key, only for the log groups listed here.

    A child of the key (it adds no resource), so every log group encrypted with the key finds the same list.
    """

    CHILD_ID = "LogsKeyUse"

    def __init__(self, key: Construct, log_group_arns: list[str]) -> None:
        super().__init__(key, self.CHILD_ID)
        self.log_group_arns = log_group_arns

    @classmethod
    def of(cls, key: kms.IKey) -> _LogsKeyUse:
        found = key.node.try_find_child(cls.CHILD_ID)
        if isinstance(found, _LogsKeyUse):
            return found
        arns: list[str] = []
        region = cdk.Stack.of(key).region
        statement = iam.PolicyStatement(
            sid="CloudWatchLogsForTheseLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
            actions=list(LOGS_KEY_ACTIONS),
            resources=["*"],
            conditions={"ArnLike": {LOGS_ARN_CONTEXT: lazy_list(arns)}},
        )
        if not isinstance(key, Construct) or not key.add_to_resource_policy(statement).statement_added:
            raise ValueError(
                f"encrypted_log_group needs a KMS key defined in this app (its key policy names the log groups "
                f"that may use it); {key.node.path} is an imported key."
            )
        return cls(key, arns)


def log_group_arn_pattern(log_group: logs.LogGroup, log_group_name: str | None) -> str:
    """The ARN CloudWatch Logs names in its KMS encryption context for ``log_group``, built without referencing
    the log group (the key policy would depend on the log group, which depends on the key).

    A log group created with ``log_group_name`` gets its exact ARN. An unnamed one keeps the name CloudFormation
    generated for it, ``<stack name>-<logical id>-<random suffix>``, so its pattern ends in ``-*`` right after
    the logical id: naming the existing log groups now would replace them, and the retained ones would be left
    with data the new key policy no longer lets CloudWatch Logs decrypt.
    """
    stack = cdk.Stack.of(log_group)
    cfn = log_group.node.default_child
    if not isinstance(cfn, logs.CfnLogGroup):
        raise TypeError(f"{log_group.node.path} has no CloudFormation log group of its own.")
    name = log_group_name or f"{stack.stack_name}-{cfn.logical_id}-*"
    return stack.format_arn(
        service="logs", resource="log-group", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )


def encrypted_log_group(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey,
    retention_days: int,
    retain: bool,
    log_group_name: str | None = None,
) -> logs.LogGroup:
    """A log group encrypted with ``key`` and a fixed retention.

    The key's policy lets CloudWatch Logs use the key for the log groups made here with it and no other
    (the ``aws:logs:arn`` encryption context, one statement per key listing them all).
    """
    log_group = logs.LogGroup(
        scope,
        construct_id,
        encryption_key=key,
        retention=retention(retention_days),
        removal_policy=removal_policy(retain),
        log_group_name=log_group_name,
    )
    _LogsKeyUse.of(key).log_group_arns.append(log_group_arn_pattern(log_group, log_group_name))
    return log_group
