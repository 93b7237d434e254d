"""The conversations' history: one DynamoDB table (layout: lambda_src/contracts/chat.py), every item under its
user's partition, a customer-managed key, PITR, and a time to live from the stage's retention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from constructs_lib.foundation.tables import encrypted_table, grant_table
from lambda_src.contracts.chat import EXPIRES_AT, PARTITION_KEY, SORT_KEY


@dataclass(frozen=True, kw_only=True)
class HistoryTableProps:
    key: kms.IKey
    retain: bool


class HistoryTable(Construct):
    """Attribute: ``table``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: HistoryTableProps) -> None:
        super().__init__(scope, construct_id)
        self._key = props.key
        self.table = encrypted_table(
            self,
            "Table",
            key=props.key,
            retain=props.retain,
            partition_key=PARTITION_KEY,
            sort_key=SORT_KEY,
            time_to_live=EXPIRES_AT,
            backup_reason="Point-in-time recovery keeps 35 days of continuous backups of the conversations, which "
            "expire by the stage's retention anyway; an AWS Backup plan would keep deleted conversations longer "
            "than users were told.",
        )

    def grant(self, grantee: iam.IGrantable, actions: Sequence[str]) -> iam.Grant:
        """Exactly ``actions`` on the table, its key only through DynamoDB."""
        return grant_table(grantee, self.table, self._key, actions)
