"""The conversations' history: one DynamoDB table (layout: lambda_src/contracts/chat.py), every item under its
user's partition, a customer-managed key, PITR, and a time to live from the stage's retention."""

from __future__ import annotations

from constructs_lib.foundation.tables import EncryptedTable
from lambda_src.contracts.chat import EXPIRES_AT, PARTITION_KEY, SORT_KEY


class HistoryTable(EncryptedTable):
    PARTITION_KEY = PARTITION_KEY
    SORT_KEY = SORT_KEY
    TIME_TO_LIVE = EXPIRES_AT
    BACKUP_REASON = ("Point-in-time recovery keeps 35 days of continuous backups of the conversations, which "
                     "expire by the stage's retention anyway; an AWS Backup plan would keep deleted conversations "
                     "longer than users were told.")  # fmt: skip
