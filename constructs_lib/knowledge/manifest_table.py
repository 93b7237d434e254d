"""The manifest: one DynamoDB table holding an item per ingested document and one per pipeline run
(layout: lambda_src/contracts/knowledge.py), encrypted with a customer-managed key, with PITR."""

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
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=props.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=props.retain,
            removal_policy=removal_policy(props.retain),
        )
        acknowledge(
            self.table,
            "Point-in-time recovery keeps 35 days of continuous backups, and the whole manifest can be rebuilt "
            "by one pipeline run over the sources, so an AWS Backup plan would add cost without a better recovery.",
            ["NIST.800.53.R5-DynamoDBInBackupPlan", "HIPAA.Security-DynamoDBInBackupPlan"],
        )

    def grant(self, grantee: iam.IGrantable, actions: Sequence[str]) -> iam.Grant:
        """Exactly ``actions`` (``dynamodb:Query`` ...) on the table, its key only through DynamoDB."""
        region = cdk.Stack.of(self).region
        grant = iam.Grant.add_to_principal(grantee=grantee, actions=list(actions),
                                           resource_arns=[self.table.table_arn])  # fmt: skip
        writes = any(not a.split(":")[1].startswith(("Get", "Query", "Scan", "Batch")) for a in actions)
        key_actions = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"] if writes else ["kms:Decrypt"]
        return grant.combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=key_actions,
                resource_arns=[self._key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
            )
        )
