"""KnowledgeStack's template: the index, the manifest, the secrets, the pipeline, its schedule and IAM."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from constructs_lib.foundation.settings import ConfigError
from constructs_lib.knowledge.settings import KnowledgeConfig
from lambda_src.contracts import knowledge as k
from stacks.context import resolve_deployment
from stacks.stages import DEV, LOCAL_EMBEDDING_MODEL
from tests.infra.templates import by_type, only


def statements(synth: Any, path: str) -> list[dict[str, Any]]:
    return list(synth.properties("knowledge", path)["PolicyDocument"]["Statement"])


def actions_of(statement: dict[str, Any]) -> set[str]:
    found = statement["Action"]
    return {found} if isinstance(found, str) else set(found)


def test_the_index_is_versioned_cosine_of_the_stage_dimension_with_text_not_filterable(dev):
    index = dev.properties("knowledge", "Vectors/Index")
    assert index["IndexName"] == k.index_name(1, DEV.knowledge.dimension) == "chunks-v1-d1024-cosine"
    assert (index["Dimension"], index["DistanceMetric"], index["DataType"]) == (1024, "cosine", "float32")
    assert index["MetadataConfiguration"] == {"NonFilterableMetadataKeys": ["text", "uri", "title"]}
    bucket = dev.properties("knowledge", "Vectors/Bucket")
    key = dev.logical_id("knowledge", "KnowledgeKey")
    for encryption in (index["EncryptionConfiguration"], bucket["EncryptionConfiguration"]):
        assert encryption == {"SseType": "aws:kms", "KmsKeyArn": {"Fn::GetAtt": [key, "Arn"]}}


def test_the_manifest_has_a_key_pitr_and_the_contract_layout(dev, prod):
    for synth, protected in ((dev, False), (prod, True)):
        table = synth.properties("knowledge", "Manifest/Table")
        assert [a["AttributeName"] for a in table["KeySchema"]] == [k.PARTITION_KEY, k.SORT_KEY]
        assert table["SSESpecification"]["SSEEnabled"] is True
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table.get("DeletionProtectionEnabled", False) is protected


def test_secrets_hold_a_generated_placeholder_never_a_value_in_the_template(dev):
    for path, field in (("YoutubeApiKey", "api_key"), ("YoutubeProxy", "https_url")):
        secret = dev.properties("knowledge", path)
        assert "SecretString" not in secret
        generated = secret["GenerateSecretString"]
        assert json.loads(generated["SecretStringTemplate"]) == {field: f"UNSET-REPLACE-ME-{field}"}
        assert secret["KmsKeyId"] == {"Fn::GetAtt": [dev.logical_id("knowledge", "KnowledgeKey"), "Arn"]}


def test_the_schedule_is_weekly_in_the_stage_time_zone_with_retries_and_a_dead_letter_queue(dev):
    schedule = only(dev.raw("knowledge"), "AWS::Scheduler::Schedule")
    assert schedule["ScheduleExpression"] == "cron(0 3 ? * MON *)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == {"Ref": dev.logical_id("knowledge", "Pipeline/StateMachine")}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 3
    queue = dev.logical_id("knowledge", "Pipeline/ScheduleDeadLetters")
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    assert dev.properties("knowledge", "Pipeline/ScheduleDeadLetters")["KmsMasterKeyId"]


def test_the_state_machine_logs_everything_encrypted_and_is_traced(dev):
    machine = dev.properties("knowledge", "Pipeline/StateMachine")
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    group = dev.properties("knowledge", "Pipeline/Logs")
    assert group["KmsKeyId"] == {"Fn::GetAtt": [dev.logical_id("knowledge", "KnowledgeKey"), "Arn"]}
    assert machine["EncryptionConfiguration"]["Type"] == "CUSTOMER_MANAGED_KMS_KEY"


def definition(synth: Any) -> dict[str, Any]:
    """The state machine's ASL with the template's references blanked (they are strings in the JSON)."""
    parts = synth.properties("knowledge", "Pipeline/StateMachine")["DefinitionString"]["Fn::Join"][1]
    asl: dict[str, Any] = json.loads("".join(p if isinstance(p, str) else "REF" for p in parts))
    return asl


def test_the_definition_discovers_maps_with_bounded_concurrency_retries_catches_and_reports(dev):
    asl = definition(dev)
    assert asl["StartAt"] == "Discover"
    documents = asl["States"]["Documents"]
    assert documents["Type"] == "Map"
    assert documents["MaxConcurrency"] == DEV.knowledge.max_concurrency
    assert documents["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert documents["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    ingest = documents["ItemProcessor"]["States"]["Ingest"]
    (retry,) = ingest["Retry"]
    assert k.TRANSIENT_ERROR in retry["ErrorEquals"] and "Lambda.TooManyRequestsException" in retry["ErrorEquals"]
    assert (retry["BackoffRate"], retry["MaxAttempts"], retry["JitterStrategy"]) == (2, 5, "FULL")
    assert ingest["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}]
    assert documents["Next"] == "Report" and documents["Catch"][0]["Next"] == "Report"
    assert asl["States"]["Report"]["End"] is True


def policy_of(synth: Any, function: str) -> list[dict[str, Any]]:
    return statements(synth, f"{function}/Policy")


def test_ingest_may_invoke_exactly_titan_v2_and_write_exactly_the_index(dev):
    found = policy_of(dev, "Ingest")
    bedrock = [s for s in found if any(a.startswith("bedrock:") for a in actions_of(s))]
    assert len(bedrock) == 1 and actions_of(bedrock[0]) == {"bedrock:InvokeModel"}
    assert "foundation-model/amazon.titan-embed-text-v2:0" in json.dumps(bedrock[0]["Resource"])
    vectors = [s for s in found if any(a.startswith("s3vectors:") for a in actions_of(s))]
    assert len(vectors) == 1 and actions_of(vectors[0]) == {"s3vectors:PutVectors", "s3vectors:DeleteVectors"}
    assert vectors[0]["Resource"] == {"Fn::GetAtt": [dev.logical_id("knowledge", "Vectors/Index"), "IndexArn"]}
    assert not any(a.startswith("s3vectors:Query") for s in found for a in actions_of(s))


def test_report_only_reads_and_updates_the_manifest(dev):
    found = policy_of(dev, "Report")
    dynamo = [s for s in found if any(a.startswith("dynamodb:") for a in actions_of(s))]
    assert [actions_of(s) for s in dynamo] == [{"dynamodb:GetItem", "dynamodb:UpdateItem"}]
    assert not any(a.startswith(("s3", "bedrock", "secretsmanager")) for s in found for a in actions_of(s))


def test_each_secret_is_readable_by_the_one_function_that_needs_it(dev):
    youtube = dev.logical_id("knowledge", "YoutubeApiKey")
    proxy = dev.logical_id("knowledge", "YoutubeProxy")
    for function, readable, hidden in (("Discover", youtube, proxy), ("Ingest", proxy, youtube),
                                       ("Report", None, None)):  # fmt: skip
        text = json.dumps(policy_of(dev, function))
        assert (readable is None) or readable in text
        assert (hidden is None) or hidden not in text


def test_the_functions_read_only_the_knowledge_prefix_of_the_dataset_bucket(dev):
    data = dev.raw("data")
    read = dev.properties("data", "KnowledgeAccess/ReadPolicy")["PolicyDocument"]["Statement"]
    assert any(str(s["Resource"]).endswith("/knowledge/*']}") or "/knowledge/*" in json.dumps(s["Resource"])
               for s in read)  # fmt: skip
    listing = dev.properties("data", "KnowledgeAccess/ListPolicy")["PolicyDocument"]["Statement"]
    assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": ["knowledge/", "knowledge/*"]}}
    assert len(by_type(data, "AWS::IAM::ManagedPolicy")) >= 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dimension": 384}, "dimension"),
        ({"embedding_model_id": "cohere.embed-english-v3"}, "embedding_model_id"),
        ({"chunk_overlap_tokens": 300}, "chunk_overlap_tokens"),
        ({"schedule_cron": "every monday"}, "schedule_cron"),
        ({"youtube_playlist_ids": ("not a playlist!",)}, "youtube_playlist_ids"),
        ({"prefix": "../escape/"}, "prefix"),
        ({"max_concurrency": 0}, "max_concurrency"),
    ],
)
def test_bad_knowledge_settings_fail_with_a_sentence_naming_the_field(change, field):
    with pytest.raises(ConfigError, match=rf"Stage 'dev': knowledge\.{field} "):
        dataclasses.replace(DEV, knowledge=dataclasses.replace(KnowledgeConfig(), **change))


def test_an_openai_compatible_provider_takes_any_dimension():
    settings = KnowledgeConfig(embedding_provider="openai-compatible", embedding_model_id="e5-small", dimension=384)
    assert settings.problem() is None


def test_the_local_deployment_sizes_the_knowledge_base_for_the_local_embedding_model_and_nothing_else():
    """`make local` deploys with -c local_embeddings=true: a 384-dimension index for all-MiniLM-L6-v2."""
    local = resolve_deployment({"stage": "dev", "local_embeddings": "true"}).stage
    assert (local.knowledge.embedding_provider, local.knowledge.embedding_model_id, local.knowledge.dimension) == (
        "openai-compatible", LOCAL_EMBEDDING_MODEL, 384)  # fmt: skip
    assert k.index_name(local.knowledge.index_version, local.knowledge.dimension) == "chunks-v1-d384-cosine"
    assert dataclasses.replace(local, knowledge=DEV.knowledge) == DEV
    assert resolve_deployment({"stage": "dev"}).stage == DEV
    with pytest.raises(ConfigError, match="'local_embeddings' must be true or false"):
        resolve_deployment({"local_embeddings": "yes"})
