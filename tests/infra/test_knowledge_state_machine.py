"""The knowledge pipeline's state machine as synthesized, executed by moto's ASL interpreter (in-process): its
Lambda tasks are answered by the pipeline's own handlers (lambda_src/knowledge/handler.py) over moto's S3,
DynamoDB, S3 Vectors and Secrets Manager, so the definition's wiring is what is tested: the payloads and result
selectors, the Distributed Map reading the work list from S3, the Retry of a throttled document, the
per-document Catch that records a failure, and the Report that fails the run past the threshold. The same
machine runs in `make local` and `make e2e`."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import time
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda import models as lambda_models
from moto.core.config import default_user_config
from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl, retrier_decl

from lambda_src.contracts import knowledge as k
from lambda_src.contracts.environment import KnowledgeEnvironment
from lambda_src.shared.embeddings import Embeddings
from lambda_src.shared.errors import rate_limited
from tests.aws_fakes import REGION
from tests.infra.conftest import Synth

ACCOUNT = "123456789012"
DIMENSION = 4
FUNCTIONS = {"Discover": "discover", "Ingest": "ingest", "Report": "report"}


class Embedder:
    """Deterministic vectors; ``explode`` makes the text containing it raise a bug (not an API error); the next
    ``throttle`` calls are throttled (the model's 429)."""

    def __init__(self) -> None:
        self.calls = 0
        self.explode = "\x00never"
        self.throttle = 0

    def embed(self, texts: Sequence[str]) -> Embeddings:
        self.calls += 1
        if self.throttle:
            self.throttle -= 1
            raise rate_limited("The embedding model is throttling requests; try again shortly.")
        if any(self.explode in text for text in texts):
            raise RuntimeError("a bug in the embedder")
        vectors = [[b / 255 + 0.01 for b in hashlib.sha256(text.encode()).digest()[:DIMENSION]] for text in texts]
        return Embeddings(vectors, sum(len(text.split()) for text in texts), 1)


def definition(synth: Synth, arns: dict[str, str], work_bucket: str) -> str:
    """The template's DefinitionString with its references resolved to the moto resources."""
    properties = synth.properties("knowledge", "Pipeline/StateMachine")
    ids = {synth.logical_id("knowledge", f"{name}/Function"): arn for name, arn in arns.items()}
    ids[synth.logical_id("knowledge", "Work/Bucket")] = work_bucket
    parts = []
    for part in properties["DefinitionString"]["Fn::Join"][1]:
        if isinstance(part, str):
            parts.append(part)
        elif part == {"Ref": "AWS::Partition"}:
            parts.append("aws")
        else:
            ((kind, value),) = part.items()
            parts.append(ids[value[0] if kind == "Fn::GetAtt" else value])
    return "".join(parts)


@pytest.fixture
def world(dev: Synth, monkeypatch: pytest.MonkeyPatch, aws_credentials: None) -> Iterator[dict[str, Any]]:
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    monkeypatch.setattr(lambda_models.LambdaFunction, "invoke", lambda_models.LambdaFunction.invoke)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        s3 = session.client("s3")
        for bucket in ("dataset", "work"):
            s3.create_bucket(Bucket=bucket)
        session.resource("dynamodb").create_table(
            TableName="manifest", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": k.PARTITION_KEY, "KeyType": "HASH"},
                       {"AttributeName": k.SORT_KEY, "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": k.PARTITION_KEY, "AttributeType": "S"},
                                  {"AttributeName": k.SORT_KEY, "AttributeType": "S"}])  # fmt: skip
        vectors = session.client("s3vectors")
        vectors.create_vector_bucket(vectorBucketName="vectors")
        vectors.create_index(vectorBucketName="vectors", indexName="chunks", dataType="float32",
                             dimension=DIMENSION, distanceMetric="cosine")  # fmt: skip
        index_arn = vectors.get_index(vectorBucketName="vectors", indexName="chunks")["index"]["indexArn"]
        secrets = session.client("secretsmanager")
        youtube = secrets.create_secret(Name="youtube", SecretString='{"api_key": "UNSET-REPLACE-ME-api_key"}')
        proxy = secrets.create_secret(Name="proxy", SecretString='{"https_url": "UNSET-REPLACE-ME-https_url"}')
        env = KnowledgeEnvironment(
            manifest_table_name="manifest", dataset_bucket="dataset", knowledge_prefix="knowledge/", work_bucket="work",
            vector_index_arn=index_arn, dimension=DIMENSION, embedding_parameter_path="/app/dev/knowledge/embedding",
            upstream_api_key_parameter="/app/dev/secrets/upstream-api-key", youtube_secret_arn=youtube["ARN"],
            proxy_secret_arn=proxy["ARN"], playlist_ids=(), chunk_tokens=50, chunk_overlap_tokens=10,
            embedding_batch_size=4, max_document_bytes=64 * 1024, failure_threshold_percent=34, config_cache_seconds=0,
            stage="dev",
        )  # fmt: skip
        for name, value in {**env.variables(), "POWERTOOLS_SERVICE_NAME": "llm-knowledge-test"}.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop("lambda_src.knowledge.handler", None)
        handler = importlib.import_module("lambda_src.knowledge.handler")
        embedder = Embedder()
        handler.PIPELINE.sources.embedder = lambda: embedder

        # Each Lambda task is answered by the handler its function names, in this process.
        lambda_client = session.client("lambda")
        role = session.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        arns = {name: lambda_client.create_function(FunctionName=name, Runtime="python3.14", Role=role,
                                                    Handler="x.y", Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18})[
                    "FunctionArn"] for name in FUNCTIONS}  # fmt: skip

        def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> bytes:
            entry = getattr(handler, FUNCTIONS[self.function_name])
            try:
                return json.dumps(entry(json.loads(body), _Context())).encode()
            except Exception as error:  # Lambda's error payload: errorType is what Retry and Catch match
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()

        monkeypatch.setattr(lambda_models.LambdaFunction, "invoke", invoke)
        sfn = session.client("stepfunctions")
        role_arn = f"arn:aws:iam::{ACCOUNT}:role/pipeline"
        machine = sfn.create_state_machine(name="pipeline", definition=definition(dev, arns, "work"),
                                           roleArn=role_arn)["stateMachineArn"]  # fmt: skip
        yield {"s3": s3, "sfn": sfn, "machine": machine, "vectors": vectors, "index": index_arn,
               "embedder": embedder, "manifest": handler.MANIFEST}  # fmt: skip
        sys.modules.pop("lambda_src.knowledge.handler", None)


class _Context:
    function_name = "local"
    memory_limit_in_mb = 128
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:local"
    aws_request_id = "local-request"


def run(world: dict[str, Any], name: str) -> dict[str, Any]:
    sfn = world["sfn"]
    execution = sfn.start_execution(stateMachineArn=world["machine"], name=name)["executionArn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end within 60 s"
        time.sleep(0.05)
    return dict(described)


def put(world: dict[str, Any], name: str, body: bytes) -> None:
    world["s3"].put_object(Bucket="dataset", Key=f"knowledge/{name}", Body=body)


def vector_count(world: dict[str, Any]) -> int:
    return len(world["vectors"].list_vectors(indexArn=world["index"])["vectors"])


def test_the_synthesized_state_machine_ingests_skips_reruns_idempotently_and_fails_past_the_threshold(world):
    put(world, "guide.md", b"# Guide\n\n" + b"The pipeline reads markdown files and stores their chunks. " * 20)
    put(world, "notes.txt", b"Plain text notes about the weekly schedule.")
    put(world, "diagram.png", b"\x89PNG not a text file")
    first = run(world, "first")
    assert first["status"] == "SUCCEEDED", first
    summary = json.loads(first["output"])["result"]["Payload"]
    assert (summary["total"], summary["done"], summary["failed"], summary["skipped"]) == (2, 2, 0, 1)
    assert summary["chunks"] == vector_count(world) > 2
    documents = {doc.document_id: doc for doc in world["manifest"].documents()}
    assert (
        documents["s3/knowledge/guide.md"].status == k.INDEXED and documents["s3/knowledge/guide.md"].title == "Guide"
    )
    assert documents["s3/knowledge/diagram.png"].status == k.SKIPPED

    calls = world["embedder"].calls
    again = run(world, "again")
    assert again["status"] == "SUCCEEDED"
    assert json.loads(again["output"])["result"]["Payload"]["total"] == 0 and world["embedder"].calls == calls

    # A bug while embedding one document: caught by the Map's Catch, recorded by RecordFailure, the run goes on;
    # with one of two documents failed (50% > 34%) the Report fails the run.
    world["embedder"].explode = "EXPLODE"
    put(world, "notes.txt", b"Changed notes. EXPLODE")
    put(world, "extra.md", b"# Extra\n\nAnother document.")
    failed = run(world, "failed")
    assert failed["status"] == "FAILED" and failed["error"] == "RunFailedError", failed
    assert "1 of 2 documents failed" in failed["cause"]
    broken = world["manifest"].document("s3/knowledge/notes.txt")
    assert broken.status == k.FAILED and broken.error == "RuntimeError: a bug in the embedder"
    assert broken.chunks == 1  # it keeps what it had indexed before
    assert world["manifest"].document("s3/knowledge/extra.md").status == k.INDEXED

    # Deleted files lose their vectors and their manifest item.
    for name in ("guide.md", "notes.txt", "extra.md"):
        world["s3"].delete_object(Bucket="dataset", Key=f"knowledge/{name}")
    emptied = run(world, "emptied")
    assert emptied["status"] == "SUCCEEDED"
    assert json.loads(emptied["output"])["result"]["Payload"]["deleted"] == 3
    assert vector_count(world) == 0
    assert [doc.document_id for doc in world["manifest"].documents()] == ["s3/knowledge/diagram.png"]


def test_a_throttled_document_is_retried_by_the_definitions_retry_until_it_is_indexed(world, monkeypatch):
    """The Ingest task's Retry as moto's interpreter runs it: five throttled attempts (TransientError) are retried
    after backed-off, jittered waits (recorded instead of slept), and the sixth indexes the document."""
    waits: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    # Full jitter draws each wait from [0, backoff]: here always the middle, so the waits are known.
    monkeypatch.setattr(jitter_strategy_decl, "random", SimpleNamespace(uniform=lambda low, high: (low + high) / 2))
    put(world, "guide.md", b"# Guide\n\nThe pipeline retries a throttled embedding model.")
    world["embedder"].throttle = 5
    execution = run(world, "throttled")
    assert execution["status"] == "SUCCEEDED", execution
    assert (world["embedder"].calls, world["embedder"].throttle) == (6, 0)
    summary = json.loads(execution["output"])["result"]["Payload"]
    assert (summary["done"], summary["failed"]) == (1, 0)
    assert world["manifest"].document("s3/knowledge/guide.md").status == k.INDEXED
    assert waits == [5 * 2**attempt / 2 for attempt in range(5)]  # 5 s, doubled each time, halved by the jitter
