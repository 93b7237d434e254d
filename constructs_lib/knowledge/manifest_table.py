"""The manifest: one DynamoDB table holding an item per ingested document and one per pipeline run
(layout: lambda_src/contracts/knowledge.py), encrypted with a customer-managed key, with PITR."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from constructs_lib.foundation.tables import encrypted_table, grant_table
from lambda_src.contracts.knowledge import PARTITION_KEY, SORT_KEY


@dataclass(frozen=True, kw_only=True)
class ManifestTableProps:
    key: kms.IKey
    retain: bool


class ManifestTable(Construct):
    """Attribute: ``table``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ManifestTableProps) -> None:
        super().__init__(scope, construct_id)
        self._key = props.key
        self.table = encrypted_table(
            self,
            "Table",
            key=props.key,
            retain=props.retain,
            partition_key=PARTITION_KEY,
            sort_key=SORT_KEY,
            backup_reason="Point-in-time recovery keeps 35 days of continuous backups, and the whole manifest can be "
            "rebuilt by one pipeline run over the sources, so an AWS Backup plan would add cost without a better "
            "recovery.",
        )

    def grant(self, grantee: iam.IGrantable, actions: Sequence[str]) -> iam.Grant:
        """Exactly ``actions`` (``dynamodb:Query`` ...) on the table, its key only through DynamoDB."""
        return grant_table(grantee, self.table, self._key, actions)
