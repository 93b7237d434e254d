"""The knowledge base's vectors: an S3 Vectors bucket and one index, encrypted with a customer-managed key.

S3 Vectors bills storage and queries only (no idle cost, unlike OpenSearch Serverless or a database in a
VPC). The index's name, dimension and metric are immutable, so the name carries the version and the
dimension (lambda_src/contracts/knowledge.py): a change creates a new index instead of failing an update.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3vectors as s3vectors
from constructs import Construct

from constructs_lib.foundation.keys import removal_policy
from lambda_src.contracts.knowledge import DATA_TYPE, DISTANCE_METRIC, NON_FILTERABLE_METADATA, index_name

# What writing and reading the index take (QueryVectors with metadata or a filter needs GetVectors too).
WRITE_ACTIONS = ("s3vectors:PutVectors", "s3vectors:DeleteVectors")
READ_ACTIONS = ("s3vectors:QueryVectors", "s3vectors:GetVectors")
# The service principal S3 Vectors uses to maintain an index encrypted with a customer-managed key.
INDEXING_PRINCIPAL = "indexing.s3vectors.amazonaws.com"


@dataclass(frozen=True, kw_only=True)
class VectorStoreProps:
    key: kms.Key
    dimension: int
    index_version: int
    retain: bool


class VectorStore(Construct):
    """Attributes: ``bucket`` (CfnVectorBucket), ``index`` (CfnIndex), ``index_arn``, ``index_name``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: VectorStoreProps) -> None:
        super().__init__(scope, construct_id)
        self._key = props.key
        self.bucket = s3vectors.CfnVectorBucket(
            self,
            "Bucket",
            encryption_configuration=s3vectors.CfnVectorBucket.EncryptionConfigurationProperty(
                sse_type="aws:kms", kms_key_arn=props.key.key_arn
            ),
        )
        self.index_name = index_name(props.index_version, props.dimension)
        self.index = s3vectors.CfnIndex(
            self,
            "Index",
            vector_bucket_arn=self.bucket.attr_vector_bucket_arn,
            index_name=self.index_name,
            data_type=DATA_TYPE,
            dimension=props.dimension,
            distance_metric=DISTANCE_METRIC,
            encryption_configuration=s3vectors.CfnIndex.EncryptionConfigurationProperty(
                sse_type="aws:kms", kms_key_arn=props.key.key_arn
            ),
            metadata_configuration=s3vectors.CfnIndex.MetadataConfigurationProperty(
                non_filterable_metadata_keys=list(NON_FILTERABLE_METADATA)
            ),
        )
        for resource in (self.bucket, self.index):
            resource.apply_removal_policy(removal_policy(props.retain))
        self.index_arn = self.index.attr_index_arn
        stack = cdk.Stack.of(self)
        props.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3VectorsIndexingOfThisBucket",
                principals=[iam.ServicePrincipal(INDEXING_PRINCIPAL)],
                actions=["kms:Decrypt"],
                resources=["*"],
                # Not the bucket's own ARN: the bucket is encrypted with this key, so naming it here would be a
                # circular dependency. This account's vector buckets in this region, through S3 Vectors only.
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(service="s3vectors", resource="bucket", resource_name="*")
                    },
                },
            )
        )

    def grant_write(self, grantee: iam.IGrantable) -> iam.Grant:
        return self._grant(grantee, WRITE_ACTIONS, ("kms:GenerateDataKey", "kms:Decrypt"))

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        return self._grant(grantee, READ_ACTIONS, ("kms:Decrypt",))

    def _grant(self, grantee: iam.IGrantable, actions: tuple[str, ...], key_actions: tuple[str, ...]) -> iam.Grant:
        region = cdk.Stack.of(self).region
        grant = iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[self.index_arn])
        return grant.combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=list(key_actions),
                resource_arns=[self._key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3vectors.{region}.amazonaws.com"}},
            )
        )
