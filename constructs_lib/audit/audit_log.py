"""The inference audit log: Firehose -> Parquet in an Object-Locked bucket, a Glue table with partition
projection, an Athena workgroup with enforced settings and named queries, and an auditor policy."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from constructs import Construct

from constructs_lib.foundation.logs import encrypted_log_group
from constructs_lib.foundation.nag import acknowledge, nag_ref
from constructs_lib.foundation.secure_bucket import SecureBucket
from lambda_src.contracts.audit import AUDIT_COLUMNS, PARTITION_KEY, session_key
from lambda_src.contracts.naming import APP_NAME

DATA_PREFIX = "data/"
ERROR_PREFIX = "errors/"

_KEY = "REPLACE-WITH-KEY-ID"
NAMED_QUERIES: dict[str, tuple[str, str]] = {
    "inferences-per-user-per-day": (
        "Inference requests per user and day",
        "SELECT dt, user_id, count(*) AS inferences, sum(CASE WHEN status_code = 200 THEN 1 ELSE 0 END) AS ok\n"
        "FROM {table}\nWHERE phase = 'complete'\nGROUP BY dt, user_id\nORDER BY dt DESC, inferences DESC",
    ),
    "tokens-per-key-per-day": (
        "Prompt and completion tokens per API key and day",
        "SELECT dt, api_key_id, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens\n"
        "FROM {table}\nWHERE phase = 'complete'\nGROUP BY dt, api_key_id\nORDER BY dt DESC, completion_tokens DESC",
    ),
    "errors-last-24-hours": (
        "Failed inferences in the last 24 hours",
        "SELECT timestamp, request_id, api_key_id, user_id, status_code, error_type, model_id\nFROM {table}\n"
        "WHERE dt >= date_format(current_date - interval '1' day, '%Y-%m-%d')\n"
        "  AND timestamp >= current_timestamp - interval '24' hour AND status_code >= 400\n"
        "  AND phase = 'complete'\nORDER BY timestamp DESC",
    ),
    # Sessions are named by their callers: one is only ever the pair (key, session id) (contracts/audit.py).
    "session-transcript": (
        "One session of one API key, in order (replace the key id and the session id)",
        "SELECT timestamp, user_id, input_text, output_text, status_code, disconnected\nFROM {table}\n"
        f"WHERE phase = 'complete' AND api_key_id = '{_KEY}'\n"
        f"  AND session_id = '{session_key(_KEY, 'REPLACE-WITH-SESSION-ID')}'\n"
        "ORDER BY timestamp",
    ),
}


@dataclass(frozen=True, kw_only=True)
class AuditLogProps:
    stage_name: str
    data: SecureBucket
    results: SecureBucket
    buffer_seconds: int
    bytes_scanned_cutoff: int
    log_retention_days: int
    retain_logs: bool


class AuditLog(Construct):
    """Attributes: ``stream`` (DeliveryStream), ``database_name``, ``table_name``, ``workgroup_name``,
    ``auditor_policy`` (ManagedPolicy to attach to auditors' roles)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: AuditLogProps) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        bucket, key = props.data.bucket, props.data.key
        self.database_name = f"{APP_NAME.replace('-', '_')}_{props.stage_name}_audit"
        self.table_name = "inferences"

        database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description="LLM platform inference audit log"
            ),
        )
        location = f"s3://{bucket.bucket_name}/{DATA_PREFIX}"
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=self.table_name,
                description="One row per inference attempt",
                table_type="EXTERNAL_TABLE",
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=PARTITION_KEY[0], type=PARTITION_KEY[1], comment=PARTITION_KEY[2])
                ],
                parameters={
                    "classification": "parquet",
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": "2025-01-01,NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "storage.location.template": f"{location}dt=${{dt}}/",
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    columns=[glue.CfnTable.ColumnProperty(name=n, type=t, comment=c) for n, t, c in AUDIT_COLUMNS],
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                ),
            ),
        )
        self.table.add_dependency(database)

        delivery_logs = encrypted_log_group(
            self, "DeliveryLogs", key=key, retention_days=props.log_retention_days, retain=props.retain_logs
        )
        delivery_role = self._delivery_role(stack, props, delivery_logs.log_group_arn)
        self.stream = firehose.DeliveryStream(
            self,
            "Stream",
            encryption=firehose.StreamEncryption.customer_managed_key(key),
            # The exact policy below replaces the wildcard grants the L2 would add to its own roles.
            role=delivery_role,
            destination=firehose.S3Bucket(
                bucket,
                role=delivery_role,
                encryption_key=key,
                data_output_prefix=f"{DATA_PREFIX}dt=!{{timestamp:yyyy-MM-dd}}/",
                error_output_prefix=f"{ERROR_PREFIX}!{{firehose:error-output-type}}/dt=!{{timestamp:yyyy-MM-dd}}/",
                buffering_interval=cdk.Duration.seconds(props.buffer_seconds),
                # Record format conversion needs a buffer of at least 64 MiB.
                buffering_size=cdk.Size.mebibytes(64),
                logging_config=firehose.EnableLogging(delivery_logs),
                data_format_conversion=firehose.DataFormatConversionProps(
                    schema_configuration=firehose.SchemaConfiguration.from_cfn_table(self.table),
                    input_format=firehose.OpenXJsonInputFormat(),
                    output_format=firehose.ParquetOutputFormat(),
                ),
            ),
        )

        # The role's policy must exist before Firehose checks it can write and read the schema.
        self.stream.node.add_dependency(self.delivery_policy)

        workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=f"{APP_NAME}-{props.stage_name}-audit",
            description="Queries over the inference audit log",
            recursive_delete_option=not props.retain_logs,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=props.bytes_scanned_cutoff,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{props.results.bucket.bucket_name}/results/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=props.results.key.key_arn
                    ),
                ),
            ),
        )
        self.workgroup_name = workgroup.name
        qualified = f'"{self.database_name}"."{self.table_name}"'
        for query_id, (description, sql) in NAMED_QUERIES.items():
            named = athena.CfnNamedQuery(
                self,
                f"Query{query_id.title().replace('-', '')}",
                name=query_id,
                description=description,
                database=self.database_name,
                work_group=workgroup.ref,
                query_string=sql.format(table=qualified),
            )
            named.add_dependency(workgroup)

        self.auditor_policy = iam.ManagedPolicy(
            self,
            "AuditorPolicy",
            description="Run the audit workgroup's queries and read the audit data; nothing more",
            statements=self._auditor_statements(stack, props, workgroup),
        )
        acknowledge(
            self.auditor_policy,
            "Auditors read the Parquet files Firehose writes under data/ and Athena's result files under "
            "results/; their names are made at run time, so the ARNs end in those prefixes and nothing wider.",
            [
                f"AwsSolutions-IAM5[Resource::{nag_ref(bucket)}/{DATA_PREFIX}*]",
                f"AwsSolutions-IAM5[Resource::{nag_ref(props.results.bucket)}/results/*]",
            ],
        )

    def _delivery_role(self, stack: cdk.Stack, props: AuditLogProps, log_group_arn: str) -> iam.IRole:
        bucket, key = props.data.bucket, props.data.key
        role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="Firehose delivery of audit records into the audit bucket",
        )
        policy = iam.ManagedPolicy(
            self,
            "DeliveryPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="WriteRecords",
                    actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                    resources=[bucket.arn_for_objects(f"{DATA_PREFIX}*"), bucket.arn_for_objects(f"{ERROR_PREFIX}*")],
                ),
                iam.PolicyStatement(
                    sid="ListBucket",
                    actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    resources=[bucket.bucket_arn],
                ),
                iam.PolicyStatement(
                    sid="UseKey",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": [
                                f"s3.{stack.region}.amazonaws.com",
                                f"firehose.{stack.region}.amazonaws.com",
                            ]
                        }
                    },
                ),
                iam.PolicyStatement(
                    sid="ReadSchema",
                    actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                    resources=self._glue_arns(stack),
                ),
                iam.PolicyStatement(sid="WriteDeliveryLogs", actions=["logs:PutLogEvents"], resources=[log_group_arn]),
            ],
        )
        acknowledge(
            policy,
            "Firehose names each Parquet file at delivery time under the data/ and errors/ prefixes; the "
            "object ARNs end in those prefix wildcards and nothing wider.",
            [
                f"AwsSolutions-IAM5[Resource::{nag_ref(bucket)}/{DATA_PREFIX}*]",
                f"AwsSolutions-IAM5[Resource::{nag_ref(bucket)}/{ERROR_PREFIX}*]",
            ],
        )
        self.delivery_policy = policy
        return role.without_policy_updates()

    def _glue_arns(self, stack: cdk.Stack) -> list[str]:
        return [
            stack.format_arn(service="glue", resource="catalog"),
            stack.format_arn(service="glue", resource="database", resource_name=self.database_name),
            stack.format_arn(service="glue", resource="table", resource_name=f"{self.database_name}/{self.table_name}"),
        ]

    def _auditor_statements(
        self, stack: cdk.Stack, props: AuditLogProps, workgroup: athena.CfnWorkGroup
    ) -> list[iam.PolicyStatement]:
        data, results = props.data, props.results
        region = stack.region
        workgroup_arn = stack.format_arn(service="athena", resource="workgroup", resource_name=workgroup.ref)
        glue_arns = self._glue_arns(stack)
        return [
            iam.PolicyStatement(
                sid="RunAuditQueries",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                    "athena:GetWorkGroup",
                    "athena:ListNamedQueries",
                    "athena:GetNamedQuery",
                    "athena:BatchGetNamedQuery",
                    "athena:ListQueryExecutions",
                ],
                resources=[workgroup_arn],
            ),
            iam.PolicyStatement(
                sid="ReadAuditTable",
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                resources=glue_arns,
            ),
            iam.PolicyStatement(
                sid="ReadAuditData",
                actions=["s3:GetObject"],
                resources=[data.bucket.arn_for_objects(f"{DATA_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="ListAuditData",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[data.bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="QueryResults",
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListBucket",
                    "s3:GetBucketLocation",
                    "s3:ListMultipartUploadParts",
                ],
                resources=[results.bucket.bucket_arn, results.bucket.arn_for_objects("results/*")],
            ),
            iam.PolicyStatement(
                sid="DecryptAuditData",
                actions=["kms:Decrypt"],
                resources=[data.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="EncryptQueryResults",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[results.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            ),
        ]

    def grant_write(self, grantee: iam.IGrantable) -> iam.Grant:
        """What a function that records inferences needs: put records on this one stream."""
        return self.stream.grant_put_records(grantee)
