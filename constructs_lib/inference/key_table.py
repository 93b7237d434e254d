"""The API key registry: one DynamoDB item per key, addressed by the SHA-256 of the key (never the key)
and found by its id through a global secondary index (how `python -m tools.keys revoke` finds a key)."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.foundation.tables import EncryptedTable, TableProps
from lambda_src.contracts.keys import HASH_ATTRIBUTE, KEY_ID_ATTRIBUTE, KEY_ID_INDEX


class ApiKeyTable(EncryptedTable):
    """Items as lambda_src/contracts/keys.py lays them out (key hash as partition key)."""

    PARTITION_KEY = HASH_ATTRIBUTE
    BACKUP_REASON = (
        "Point-in-time recovery keeps 35 days of continuous backups; keys can be re-issued with the admin command, "
        "so an AWS Backup plan would add cost without a better recovery point."
    )

    def __init__(self, scope: Construct, construct_id: str, *, props: TableProps) -> None:
        super().__init__(scope, construct_id, props=props)
        # Adding an index is an in-place update (the table keeps its data); revoke reads the table key from
        # the index and the rest from the item it updates, so the index holds nothing else.
        self.table.add_global_secondary_index(
            index_name=KEY_ID_INDEX,
            partition_key=dynamodb.Attribute(name=KEY_ID_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )

    def grant_lookup(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read one item by key hash, decrypting through DynamoDB only (narrower than ``grant_read_data``)."""
        return self.grant(grantee, ["dynamodb:GetItem"])
