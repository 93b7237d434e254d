"""AuditStack template assertions: object lock, encryption, Firehose -> Parquet tied to the Glue table,
partition projection, Athena enforcement and named queries, exact IAM."""

from __future__ import annotations

import json

import pytest

from lambda_src.contracts.audit import AUDIT_COLUMNS
from stacks.stages import DEV, PROD
from tests.infra.conftest import arn_of, ref
from tests.infra.templates import by_type, only

# Construct paths in the audit stack.
DATA_BUCKET = "AuditData/Bucket"
DATA_KEY = "AuditData/Key"
RESULTS_BUCKET = "QueryResults/Bucket"
RESULTS_KEY = "QueryResults/Key"
TABLE = "AuditLog/Table"
STAGES = {"dev": DEV, "prod": PROD}


@pytest.mark.parametrize(("variant", "days"), [("dev", 1), ("prod", 365)])
def test_audit_bucket_object_lock_governance_retention_per_stage(variant, days, variants):
    bucket = variants[variant].resource("audit", DATA_BUCKET)
    props = bucket["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": days}},
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    # Locked audit data is never deleted with the stack, in any stage.
    assert bucket["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_audit_data_moves_to_a_colder_class(variant, variants):
    rules = variants[variant].properties("audit", DATA_BUCKET)["LifecycleConfiguration"]["Rules"]
    cold = next(r for r in rules if r["Id"] == "to-glacier-instant-retrieval")
    assert cold["Transitions"] == [
        {"StorageClass": "GLACIER_IR", "TransitionInDays": STAGES[variant].audit.cold_transition_days}
    ]


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_everything_is_encrypted_with_customer_managed_keys(variant, variants):
    synth = variants[variant]
    template = synth.raw("audit")
    for bucket, key in ((DATA_BUCKET, DATA_KEY), (RESULTS_BUCKET, RESULTS_KEY)):
        encryption = synth.properties("audit", bucket)["BucketEncryption"]
        assert encryption["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": arn_of(synth, "audit", key),
        }
    stream = only(template, "AWS::KinesisFirehose::DeliveryStream")
    assert stream["DeliveryStreamEncryptionConfigurationInput"] == {
        "KeyARN": arn_of(synth, "audit", DATA_KEY),
        "KeyType": "CUSTOMER_MANAGED_CMK",
    }
    destination = stream["ExtendedS3DestinationConfiguration"]
    assert destination["EncryptionConfiguration"] == {
        "KMSEncryptionConfig": {"AWSKMSKeyARN": arn_of(synth, "audit", DATA_KEY)}
    }
    for group in by_type(template, "AWS::Logs::LogGroup").values():
        assert "KmsKeyId" in group["Properties"]


@pytest.mark.parametrize(("variant", "buffer"), [("dev", 60), ("prod", 300)])
def test_firehose_converts_to_parquet_with_the_glue_table_and_partitions_by_day(variant, buffer, variants):
    synth = variants[variant]
    stream = only(synth.raw("audit"), "AWS::KinesisFirehose::DeliveryStream")
    assert stream["DeliveryStreamType"] == "DirectPut"
    destination = stream["ExtendedS3DestinationConfiguration"]
    assert destination["BucketARN"] == arn_of(synth, "audit", DATA_BUCKET)
    assert destination["Prefix"] == "data/dt=!{timestamp:yyyy-MM-dd}/"
    assert destination["ErrorOutputPrefix"] == "errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
    assert destination["BufferingHints"] == {"IntervalInSeconds": buffer, "SizeInMBs": 64}
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert conversion["InputFormatConfiguration"] == {"Deserializer": {"OpenXJsonSerDe": {}}}
    assert conversion["OutputFormatConfiguration"] == {"Serializer": {"ParquetSerDe": {}}}
    schema = conversion["SchemaConfiguration"]
    assert schema["DatabaseName"] == f"llm_platform_{variant}_audit"
    assert schema["TableName"] == ref(synth, "audit", TABLE)
    assert schema["VersionId"] == "LATEST"


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_glue_table_columns_are_the_writer_schema_with_partition_projection(variant, variants):
    table = variants[variant].properties("audit", TABLE)["TableInput"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == [(name, glue_type) for name, glue_type, _doc in AUDIT_COLUMNS]
    assert table["PartitionKeys"][0]["Name"] == "dt" and table["PartitionKeys"][0]["Type"] == "string"
    params = table["Parameters"]
    assert {k: v for k, v in params.items() if k.startswith("projection.")} == {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2025-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
    }
    assert "/data/dt=${dt}/" in json.dumps(params["storage.location.template"])
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_athena_workgroup_is_enforced_encrypted_and_capped(variant, variants):
    synth = variants[variant]
    workgroup = only(synth.raw("audit"), "AWS::Athena::WorkGroup")
    config = workgroup["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == STAGES[variant].audit.athena_bytes_scanned_cutoff
    result = config["ResultConfiguration"]
    assert result["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": arn_of(synth, "audit", RESULTS_KEY),
    }
    assert synth.logical_id("audit", RESULTS_BUCKET) in json.dumps(result["OutputLocation"])


def test_named_queries_exist(dev):
    queries = {
        q["Properties"]["Name"]: q["Properties"] for q in by_type(dev.raw("audit"), "AWS::Athena::NamedQuery").values()
    }
    assert set(queries) == {"inferences-per-user-per-day", "tokens-per-key-per-day", "errors-last-24-hours",
                            "session-transcript"}  # fmt: skip
    for query in queries.values():
        assert query["Database"] == "llm_platform_dev_audit"
        assert '"llm_platform_dev_audit"."inferences"' in query["QueryString"]
    transcript = queries["session-transcript"]["QueryString"]
    assert "ORDER BY timestamp" in transcript
    # A session is only ever one key's: the query names the key and the namespaced session id.
    assert "api_key_id = 'REPLACE-WITH-KEY-ID'\n  AND session_id = 'REPLACE-WITH-KEY-ID:REPLACE-WITH-SESSION-ID'" in (
        transcript
    )
    # One row per request: a streamed answer's advance REQUEST record is not counted twice.
    assert all("phase = 'complete'" in query["QueryString"] for query in queries.values())


def test_auditor_policy_is_exact(dev):
    policy = dev.properties("audit", "AuditLog/AuditorPolicy")
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {"RunAuditQueries", "ReadAuditTable", "ReadAuditData", "ListAuditData", "QueryResults",
                               "DecryptAuditData", "EncryptQueryResults"}  # fmt: skip
    assert "athena:StartQueryExecution" in statements["RunAuditQueries"]["Action"]
    assert "workgroup/" in json.dumps(statements["RunAuditQueries"]["Resource"])
    assert statements["ReadAuditTable"]["Action"] == ["glue:GetDatabase", "glue:GetPartitions", "glue:GetTable"]
    assert statements["ReadAuditData"]["Action"] == "s3:GetObject"
    assert statements["ReadAuditData"]["Resource"] == {"Fn::Join": ["", [arn_of(dev, "audit", DATA_BUCKET), "/data/*"]]}
    assert statements["DecryptAuditData"]["Action"] == "kms:Decrypt"
    assert statements["DecryptAuditData"]["Resource"] == arn_of(dev, "audit", DATA_KEY)
    everything = json.dumps(policy)
    assert "s3:PutObject" not in json.dumps(statements["ReadAuditData"]) and "Delete" not in everything
    assert '"*"' not in everything


def test_firehose_delivery_policy_is_exact(dev):
    template = dev.raw("audit")
    policy = dev.properties("audit", "AuditLog/DeliveryPolicy")
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {"WriteRecords", "ListBucket", "UseKey", "ReadSchema", "WriteDeliveryLogs"}
    assert statements["WriteRecords"]["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    assert "Delete" not in json.dumps(policy)
    role = dev.properties("audit", "AuditLog/DeliveryRole")
    assert policy["Roles"] == [ref(dev, "audit", "AuditLog/DeliveryRole")]
    assert "Policies" not in role and "ManagedPolicyArns" not in role
    assert by_type(template, "AWS::IAM::Policy") == {}  # no inline policies anywhere in the stack


@pytest.mark.parametrize(
    ("variant", "mode", "content"), [("dev", "best_effort", "full"), ("prod", "required", "redacted")]
)
def test_inference_function_writes_to_this_stream_with_the_stage_privacy_settings(variant, mode, content, variants):
    env = variants[variant].properties("api", "Inference/Function")["Environment"]["Variables"]
    assert env["AUDIT_MODE"] == mode and env["AUDIT_CONTENT"] == content and env["STAGE"] == variant
    assert env["AUDIT_STREAM_NAME"]["Fn::ImportValue"].startswith(f"llm-platform-{variant}-audit:")
