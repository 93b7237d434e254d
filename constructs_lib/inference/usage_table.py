"""The budgets' usage table: integer token and cost counters per principal (an API key or a signed-in user) and
period, laid out by lambda_src/contracts/spend.py; minute items expire an hour after their minute, month items
after 13 months (DynamoDB's time to live)."""

from __future__ import annotations

from constructs_lib.foundation.tables import EncryptedTable
from lambda_src.contracts.spend import EXPIRES_AT, PERIOD, PRINCIPAL

# What the functions do with it: a reservation and a settlement are each one TransactWriteItems of two
# updates (authorized as UpdateItem), GET /usage reads both items of the caller in one BatchGetItem.
SPEND_ACTIONS = ("dynamodb:UpdateItem", "dynamodb:BatchGetItem")


class UsageTable(EncryptedTable):
    PARTITION_KEY = PRINCIPAL
    SORT_KEY = PERIOD
    TIME_TO_LIVE = EXPIRES_AT
    BACKUP_REASON = (
        "Point-in-time recovery keeps 35 days of continuous backups of the counters; they control spending and "
        "the audit log is the record of every request's tokens, so an AWS Backup plan would add cost and no record."
    )
