"""AuditStack template assertions: object lock, encryption, Firehose -> Parquet tied to the Glue table,
partition projection, Athena enforcement and named queries, exact IAM."""

from __future__ import annotations

import json

import pytest

from lambda_src.inference.audit_schema import AUDIT_COLUMNS
from stacks.stages import DEV, PROD
from tests.infra.conftest import by_type, only

DATA_BUCKET = "AuditDataBucket264F43E0"
DATA_KEY = "AuditDataKeyCE29E278"
RESULTS_BUCKET = "QueryResultsBucket8914DAAE"
RESULTS_KEY = "QueryResultsKey7F20CA6B"
TABLE = "AuditLogTableC1B46C45"
STAGES = {"dev": DEV, "prod": PROD}


@pytest.mark.parametrize(("variant", "days"), [("dev", 1), ("prod", 365)])
def test_audit_bucket_object_lock_governance_retention_per_stage(variant, days, variants):
    bucket = variants[variant].raw("audit")["Resources"][DATA_BUCKET]
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
    rules = variants[variant].raw("audit")["Resources"][DATA_BUCKET]["Properties"]["LifecycleConfiguration"]["Rules"]
    cold = next(r for r in rules if r["Id"] == "to-glacier-instant-retrieval")
    assert cold["Transitions"] == [
        {"StorageClass": "GLACIER_IR", "TransitionInDays": STAGES[variant].audit.cold_transition_days}
    ]


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_everything_is_encrypted_with_customer_managed_keys(variant, variants):
    template = variants[variant].raw("audit")
    for bucket, key in ((DATA_BUCKET, DATA_KEY), (RESULTS_BUCKET, RESULTS_KEY)):
        encryption = template["Resources"][bucket]["Properties"]["BucketEncryption"]
        assert encryption["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": {"Fn::GetAtt": [key, "Arn"]},
        }
    stream = only(template, "AWS::KinesisFirehose::DeliveryStream")
    assert stream["DeliveryStreamEncryptionConfigurationInput"] == {
        "KeyARN": {"Fn::GetAtt": [DATA_KEY, "Arn"]},
        "KeyType": "CUSTOMER_MANAGED_CMK",
    }
    destination = stream["ExtendedS3DestinationConfiguration"]
    assert destination["EncryptionConfiguration"] == {
        "KMSEncryptionConfig": {"AWSKMSKeyARN": {"Fn::GetAtt": [DATA_KEY, "Arn"]}}
    }
    for group in by_type(template, "AWS::Logs::LogGroup").values():
        assert "KmsKeyId" in group["Properties"]


@pytest.mark.parametrize(("variant", "buffer"), [("dev", 60), ("prod", 300)])
def test_firehose_converts_to_parquet_with_the_glue_table_and_partitions_by_day(variant, buffer, variants):
    stream = only(variants[variant].raw("audit"), "AWS::KinesisFirehose::DeliveryStream")
    assert stream["DeliveryStreamType"] == "DirectPut"
    destination = stream["ExtendedS3DestinationConfiguration"]
    assert destination["BucketARN"] == {"Fn::GetAtt": [DATA_BUCKET, "Arn"]}
    assert destination["Prefix"] == "data/dt=!{timestamp:yyyy-MM-dd}/"
    assert destination["ErrorOutputPrefix"] == "errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
    assert destination["BufferingHints"] == {"IntervalInSeconds": buffer, "SizeInMBs": 64}
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert conversion["InputFormatConfiguration"] == {"Deserializer": {"OpenXJsonSerDe": {}}}
    assert conversion["OutputFormatConfiguration"] == {"Serializer": {"ParquetSerDe": {}}}
    schema = conversion["SchemaConfiguration"]
    assert schema["DatabaseName"] == f"llm_platform_{variant}_audit"
    assert schema["TableName"] == {"Ref": TABLE}
    assert schema["VersionId"] == "LATEST"


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_glue_table_columns_are_the_writer_schema_with_partition_projection(variant, variants):
    table = variants[variant].raw("audit")["Resources"][TABLE]["Properties"]["TableInput"]
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
    workgroup = only(variants[variant].raw("audit"), "AWS::Athena::WorkGroup")
    config = workgroup["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == STAGES[variant].audit.athena_bytes_scanned_cutoff
    result = config["ResultConfiguration"]
    assert result["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": {"Fn::GetAtt": [RESULTS_KEY, "Arn"]},
    }
    assert RESULTS_BUCKET in json.dumps(result["OutputLocation"])


def test_named_queries_exist(dev):
    queries = {
        q["Properties"]["Name"]: q["Properties"] for q in by_type(dev.raw("audit"), "AWS::Athena::NamedQuery").values()
    }
    assert set(queries) == {"inferences-per-user-per-day", "tokens-per-key-per-day", "errors-last-24-hours",
                            "session-transcript"}  # fmt: skip
    for query in queries.values():
        assert query["Database"] == "llm_platform_dev_audit"
        assert '"llm_platform_dev_audit"."inferences"' in query["QueryString"]
    assert "ORDER BY timestamp" in queries["session-transcript"]["QueryString"]


def test_auditor_policy_is_exact(dev):
    policy = (
        only(dev.raw("audit"), "AWS::IAM::ManagedPolicy")
        if False
        else next(
            p["Properties"] for k, p in dev.raw("audit")["Resources"].items() if k.startswith("AuditLogAuditorPolicy")
        )
    )
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {"RunAuditQueries", "ReadAuditTable", "ReadAuditData", "ListAuditData", "QueryResults",
                               "DecryptAuditData", "EncryptQueryResults"}  # fmt: skip
    assert "athena:StartQueryExecution" in statements["RunAuditQueries"]["Action"]
    assert "workgroup/" in json.dumps(statements["RunAuditQueries"]["Resource"])
    assert statements["ReadAuditTable"]["Action"] == ["glue:GetDatabase", "glue:GetPartitions", "glue:GetTable"]
    assert statements["ReadAuditData"]["Action"] == "s3:GetObject"
    assert statements["ReadAuditData"]["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [DATA_BUCKET, "Arn"]}, "/data/*"]]
    }
    assert statements["DecryptAuditData"]["Action"] == "kms:Decrypt"
    assert statements["DecryptAuditData"]["Resource"] == {"Fn::GetAtt": [DATA_KEY, "Arn"]}
    everything = json.dumps(policy)
    assert "s3:PutObject" not in json.dumps(statements["ReadAuditData"]) and "Delete" not in everything
    assert '"*"' not in everything


def test_firehose_delivery_policy_is_exact(dev):
    template = dev.raw("audit")
    policy = next(p["Properties"] for k, p in template["Resources"].items() if k.startswith("AuditLogDeliveryPolicy"))
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {"WriteRecords", "ListBucket", "UseKey", "ReadSchema", "WriteDeliveryLogs"}
    assert statements["WriteRecords"]["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    assert "Delete" not in json.dumps(policy)
    role = next(r["Properties"] for k, r in template["Resources"].items() if k.startswith("AuditLogDeliveryRole"))
    assert "Policies" not in role and "ManagedPolicyArns" not in role
    assert by_type(template, "AWS::IAM::Policy") == {}  # no inline policies anywhere in the stack


@pytest.mark.parametrize(
    ("variant", "mode", "content"), [("dev", "best_effort", "full"), ("prod", "required", "redacted")]
)
def test_inference_function_writes_to_this_stream_with_the_stage_privacy_settings(variant, mode, content, variants):
    functions = by_type(variants[variant].raw("api"), "AWS::Lambda::Function")
    (inference,) = [f for f in functions.values() if f["Properties"]["Handler"] == "inference.handler.lambda_handler"]
    env = inference["Properties"]["Environment"]["Variables"]
    assert env["AUDIT_MODE"] == mode and env["AUDIT_CONTENT"] == content and env["STAGE"] == variant
    assert env["AUDIT_STREAM_NAME"]["Fn::ImportValue"].startswith(f"llm-platform-{variant}-audit:")
