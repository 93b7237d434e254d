"""The knowledge functions' wiring: the handler module imports without a network call, and reads the YouTube
key, the proxy and the embedding settings at run time from Secrets Manager and Parameter Store (moto)."""

from __future__ import annotations

import importlib
import json
import sys
from types import ModuleType
from typing import Any

import boto3
import pytest

from lambda_src.contracts import metrics
from lambda_src.contracts.environment import KnowledgeEnvironment
from lambda_src.contracts.parameters import PLACEHOLDER_PREFIX
from lambda_src.knowledge.youtube import SourceError
from lambda_src.shared.embeddings import OpenAICompatibleEmbedder, TitanEmbedder
from lambda_src.shared.errors import ApiError
from tests.aws_fakes import REGION, create_manifest_table

PATH = "/app/dev/knowledge/embedding"
UPSTREAM_KEY = "/app/dev/secrets/upstream-api-key"


@pytest.fixture
def handler(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    youtube = secrets.create_secret(Name="youtube", SecretString=json.dumps({"api_key": PLACEHOLDER_PREFIX + "x"}))
    proxy = secrets.create_secret(Name="proxy", SecretString=json.dumps({"https_url": PLACEHOLDER_PREFIX + "x"}))
    ssm = boto3.client("ssm", region_name=REGION)
    for leaf, value in (("provider", "openai-compatible"), ("model-id", "e5"), ("base-url", "http://127.0.0.1:9/v1")):
        ssm.put_parameter(Name=f"{PATH}/{leaf}", Value=value, Type="String")
    ssm.put_parameter(Name=UPSTREAM_KEY, Value=PLACEHOLDER_PREFIX + "abc", Type="SecureString")
    env = KnowledgeEnvironment(
        manifest_table_name="manifest", dataset_bucket="dataset", knowledge_prefix="knowledge/", work_bucket="work",
        vector_index_arn="arn:aws:s3vectors:us-east-1:123456789012:bucket/v/index/i", dimension=8,
        embedding_parameter_path=PATH, upstream_api_key_parameter=UPSTREAM_KEY,
        youtube_secret_arn=youtube["ARN"], proxy_secret_arn=proxy["ARN"], playlist_ids=(), chunk_tokens=100,
        chunk_overlap_tokens=10, embedding_batch_size=4, max_document_bytes=1024, failure_threshold_percent=10,
        config_cache_seconds=0, stage="dev",
    )  # fmt: skip
    for name, value in env.variables().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "llm-knowledge-test")
    sys.modules.pop("lambda_src.knowledge.handler", None)
    module: ModuleType = importlib.import_module("lambda_src.knowledge.handler")
    module.TEST_SECRETS = secrets  # type: ignore[attr-defined]
    module.TEST_SSM = ssm  # type: ignore[attr-defined]
    yield module
    sys.modules.pop("lambda_src.knowledge.handler", None)


def test_a_placeholder_youtube_key_is_a_source_error_and_a_set_one_is_read(handler):
    with pytest.raises(SourceError, match="YouTube Data API key is not set"):
        handler.youtube_key()
    handler.TEST_SECRETS.put_secret_value(SecretId=handler.ENV.youtube_secret_arn,
                                          SecretString=json.dumps({"api_key": " AIza-real "}))  # fmt: skip
    assert handler.youtube_key() == "AIza-real"
    handler.TEST_SECRETS.put_secret_value(SecretId=handler.ENV.youtube_secret_arn, SecretString="not json")
    with pytest.raises(SourceError):
        handler.youtube_key()


def test_the_proxy_is_used_only_once_an_operator_set_it(handler):
    assert handler.youtube_proxy() is None
    urls = {"http_url": "http://user:pw@proxy.example:80", "https_url": "http://user:pw@proxy.example:80"}
    handler.TEST_SECRETS.put_secret_value(SecretId=handler.ENV.proxy_secret_arn, SecretString=json.dumps(urls))
    assert handler.youtube_proxy() == urls


def test_the_embedder_follows_parameter_store_and_refuses_a_placeholder_upstream_key(handler):
    embedder = handler._embedder()
    assert isinstance(embedder, OpenAICompatibleEmbedder)
    with pytest.raises(ApiError) as refused:
        embedder.embed(["text"])
    assert refused.value.status == 500 and "upstream API key has not been set" in refused.value.message
    handler.TEST_SSM.put_parameter(Name=f"{PATH}/provider", Value="bedrock", Type="String", Overwrite=True)
    assert isinstance(handler._embedder(), TitanEmbedder)


def _metrics(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


class Context:
    function_name, memory_limit_in_mb, aws_request_id = "f", 256, "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"


def test_the_report_and_freshness_metrics_carry_the_service_and_stage_dimensions(handler, capfd):
    """What the pipeline's alarms and dashboard read (constructs_lib/observability): names from the contract, the
    dimensions service (POWERTOOLS_SERVICE_NAME) and stage, nothing else."""
    create_manifest_table(boto3.resource("dynamodb", region_name=REGION))
    capfd.readouterr()
    handler.record_run(12, 2)
    answer = handler.freshness({}, Context())
    run, fresh = _metrics(capfd.readouterr().out)
    for emf in (run, fresh):
        (directive,) = emf["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == metrics.NAMESPACE
        assert [sorted(names) for names in directive["Dimensions"]] == [sorted(metrics.PIPELINE_DIMENSIONS)]
        assert (emf[metrics.SERVICE_DIMENSION], emf[metrics.STAGE_DIMENSION]) == ("llm-knowledge-test", "dev")
    assert (run[metrics.RUN_DOCUMENTS], run[metrics.FAILED_DOCUMENTS]) == ([12.0], [2.0])
    # No run on record: as old as the manifest, which was just created.
    assert fresh[metrics.DAYS_SINCE_SUCCESSFUL_RUN] == [answer["days_since_successful_run"]]
    assert 0 <= answer["days_since_successful_run"] < 0.01
