"""The manifest: one DynamoDB table holding an item per ingested document and one per pipeline run
(layout: lambda_src/contracts/knowledge.py), encrypted with a customer-managed key, with PITR."""

from __future__ import annotations

from constructs_lib.foundation.tables import EncryptedTable
from lambda_src.contracts.knowledge import PARTITION_KEY, SORT_KEY


class ManifestTable(EncryptedTable):
    PARTITION_KEY = PARTITION_KEY
    SORT_KEY = SORT_KEY
    BACKUP_REASON = ("Point-in-time recovery keeps 35 days of continuous backups, and the whole manifest can be "
                     "rebuilt by one pipeline run over the sources, so an AWS Backup plan would add cost without a "
                     "better recovery.")  # fmt: skip
