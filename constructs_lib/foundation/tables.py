"""DynamoDB tables the platform's way: on-demand, a customer-managed key, point-in-time recovery, deletion
protection and retention with the data they hold; and exact grants that reach the key through DynamoDB only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from constructs_lib.foundation.keys import removal_policy
from constructs_lib.foundation.nag import acknowledge

# Actions that only read: their grant needs kms:Decrypt alone.
_READS = ("dynamodb:Get", "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchGet", "dynamodb:Describe")


def encrypted_table(scope: Construct, construct_id: str, *, key: kms.IKey, retain: bool, partition_key: str,
                    sort_key: str | None = None, backup_reason: str,
                    time_to_live: str | None = None) -> dynamodb.Table:  # fmt: skip
    """A table with string keys; ``backup_reason`` says why PITR is enough without an AWS Backup plan;
    ``time_to_live`` names the attribute (epoch seconds) after which DynamoDB deletes an item."""
    # Table (not TableV2): TableV2's customer-managed key cannot render in an env-agnostic stack.
    table = dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING) if sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=retain,
        removal_policy=removal_policy(retain),
        time_to_live_attribute=time_to_live,
    )
    acknowledge(table, backup_reason, ["NIST.800.53.R5-DynamoDBInBackupPlan", "HIPAA.Security-DynamoDBInBackupPlan"])
    return table


def grant_table(grantee: iam.IGrantable, table: dynamodb.ITable, key: kms.IKey, actions: Sequence[str]) -> iam.Grant:
    """Exactly ``actions`` on the table (narrower than ``grant_read_data``), its key only through DynamoDB:
    ``kms:Decrypt`` for reads, also ``Encrypt`` and ``GenerateDataKey`` when an action writes."""
    region = cdk.Stack.of(table).region
    grant = iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[table.table_arn])
    writes = any(not action.startswith(_READS) for action in actions)
    key_actions = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"] if writes else ["kms:Decrypt"]
    return grant.combine(
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=key_actions,
            resource_arns=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
        )
    )


@dataclass(frozen=True, kw_only=True)
class TableProps:
    key: kms.IKey
    retain: bool


class EncryptedTable(Construct):
    """One ``encrypted_table`` (child "Table") and exact grants on it. A capability's table derives from it and
    states its layout: ``PARTITION_KEY``, ``SORT_KEY``, ``TIME_TO_LIVE``, ``BACKUP_REASON``.

    Attribute: ``table``."""

    PARTITION_KEY: str
    SORT_KEY: str | None = None
    TIME_TO_LIVE: str | None = None
    BACKUP_REASON: str

    def __init__(self, scope: Construct, construct_id: str, *, props: TableProps) -> None:
        super().__init__(scope, construct_id)
        self._key = props.key
        self.table = encrypted_table(self, "Table", key=props.key, retain=props.retain,
                                     partition_key=self.PARTITION_KEY, sort_key=self.SORT_KEY,
                                     time_to_live=self.TIME_TO_LIVE, backup_reason=self.BACKUP_REASON)  # fmt: skip

    def grant(self, grantee: iam.IGrantable, actions: Sequence[str]) -> iam.Grant:
        """Exactly ``actions`` (``dynamodb:Query`` ...) on the table, its key only through DynamoDB."""
        return grant_table(grantee, self.table, self._key, actions)
