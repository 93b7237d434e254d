"""X-Ray subsegments for the functions' AWS calls (lambda_src/shared/tracing.py): documents caught on a UDP socket
standing in for the X-Ray daemon, botocore's Stubber answering the calls."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from lambda_src.contracts.environment import ChatEnvironment, KnowledgeEnvironment
from lambda_src.shared import tracing
from tests.aws_fakes import INFERENCE_ENVIRONMENT, REQUEST_ENVIRONMENT, RETRIEVAL_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
ROOT_ID, PARENT = "1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8"
SAMPLED = f"Root={ROOT_ID};Parent={PARENT};Sampled=1;Lineage=a87bd80c:0"
INDEX_ARN = "arn:aws:s3vectors:us-east-1:123456789012:bucket/b/index/i"


class Daemon:
    """A UDP socket on 127.0.0.1 in place of the X-Ray daemon."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(5)
        self.address = f"127.0.0.1:{self.socket.getsockname()[1]}"

    def receive(self) -> dict[str, Any]:
        header, _, document = self.socket.recv(65536).partition(b"\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        found: dict[str, Any] = json.loads(document)
        return found


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    caught = Daemon()
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", caught.address)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", SAMPLED)
    monkeypatch.delenv("AWS_XRAY_SDK_ENABLED", raising=False)
    yield caught
    caught.socket.close()


def session() -> boto3.Session:
    return boto3.Session(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def traced_client(service: str) -> Any:
    made = session()
    assert tracing.instrument(made)
    return made.client(service, config=Config(retries={"mode": "standard", "max_attempts": 1}))


# One call of each kind the functions make: (service, method, parameters, stubbed answer, operation).
CALLS: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
    ("bedrock-runtime", "converse", {"modelId": "m", "messages": [{"role": "user", "content": [{"text": "hi"}]}]},
     {"output": {"message": {"role": "assistant", "content": [{"text": "hello"}]}}, "stopReason": "end_turn",
      "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}, "metrics": {"latencyMs": 1}}, "Converse"),
    ("bedrock-runtime", "converse_stream", {"modelId": "m", "messages": [{"role": "user", "content": [{"text": "h"}]}]},
     {}, "ConverseStream"),
    ("bedrock-runtime", "invoke_model", {"modelId": "amazon.titan-embed-text-v2:0", "body": b"{}"},
     {"body": b"{}", "contentType": "application/json"}, "InvokeModel"),
    ("bedrock-runtime", "apply_guardrail", {"guardrailIdentifier": "g", "guardrailVersion": "1", "source": "INPUT",
                                            "content": [{"text": {"text": "hi"}}]},
     {"usage": {"topicPolicyUnits": 0, "contentPolicyUnits": 1, "wordPolicyUnits": 0,
                "sensitiveInformationPolicyUnits": 0, "sensitiveInformationPolicyFreeUnits": 0,
                "contextualGroundingPolicyUnits": 0}, "action": "NONE", "outputs": [], "assessments": []},
     "ApplyGuardrail"),
    ("ssm", "get_parameters_by_path", {"Path": "/llm-platform/dev/model"}, {"Parameters": []},
     "GetParametersByPath"),
    ("firehose", "put_record", {"DeliveryStreamName": "audit", "Record": {"Data": b"{}"}}, {"RecordId": "r"},
     "PutRecord"),
    ("dynamodb", "transact_write_items", {"TransactItems": [{"ConditionCheck": {
        "TableName": "usage", "Key": {"pk": {"S": "a"}}, "ConditionExpression": "attribute_exists(pk)"}}]}, {},
     "TransactWriteItems"),
    ("s3vectors", "query_vectors", {"indexArn": INDEX_ARN, "topK": 1, "queryVector": {"float32": [0.5]}},
     {"vectors": [], "distanceMetric": "cosine"}, "QueryVectors"),
]  # fmt: skip


@pytest.mark.parametrize(("service", "method", "params", "answer", "operation"), CALLS, ids=[c[4] for c in CALLS])
def test_each_call_is_a_subsegment_of_the_invocations_segment(daemon, service, method, params, answer, operation):
    client = traced_client(service)
    with Stubber(client) as stub:
        stub.add_response(method, {**answer, "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": 200,
                                                                  "RetryAttempts": 1}})  # fmt: skip
        getattr(client, method)(**params)
    found = daemon.receive()
    prefix = client.meta.service_model.endpoint_prefix
    assert found.pop("start_time") <= found.pop("end_time")
    assert re.fullmatch(r"[0-9a-f]{16}", found.pop("id"))
    assert found == {
        "name": prefix, "namespace": "aws", "type": "subsegment", "trace_id": ROOT_ID, "parent_id": PARENT,
        "aws": {"operation": operation, "region": "us-east-1", "request_id": "req-1", "retries": 1},
        "http": {"response": {"status": 200}},
    }  # fmt: skip


def test_a_table_read_names_its_table(daemon):
    made = session()
    assert tracing.instrument(made)
    table = made.resource("dynamodb").Table("history")
    with Stubber(table.meta.client) as stub:
        stub.add_response("get_item", {})
        table.get_item(Key={"pk": "a"})
    assert daemon.receive()["aws"]["table_name"] == "history"


@pytest.mark.parametrize(
    ("status", "code", "flags"),
    [
        (400, "ValidationException", {"error": True}),
        (400, "ThrottlingException", {"error": True, "throttle": True}),
        (429, "TooManyRequestsException", {"error": True, "throttle": True}),
        (500, "InternalServerException", {"fault": True}),
    ],
)
def test_an_error_answer_sets_the_flags_and_its_cause(daemon, status, code, flags):
    client = traced_client("bedrock-runtime")
    with Stubber(client) as stub, pytest.raises(client.exceptions.ClientError):
        stub.add_client_error("converse", code, "the input was: secret words", http_status_code=status)
        client.converse(modelId="m", messages=[])
    found = daemon.receive()
    assert {k: found[k] for k in ("error", "throttle", "fault") if k in found} == flags
    assert found["http"] == {"response": {"status": status}}
    (exception,) = found["cause"]["exceptions"]
    assert exception.pop("id") and exception == {"type": code, "remote": True}  # never the service's message


def test_no_answer_is_a_fault_and_the_call_names_its_subsegment_as_parent(daemon):
    """The outgoing request's trace header points at the subsegment; a call that never got an answer is a fault."""
    client = traced_client("ssm")
    sent: list[str] = []

    def refuse(request: Any, **_: Any) -> None:
        sent.append(request.headers["X-Amzn-Trace-Id"].decode())
        raise ConnectionRefusedError("refused")

    client.meta.events.register("before-send", refuse)
    with pytest.raises(ConnectionRefusedError):
        client.get_parameter(Name="p")
    found = daemon.receive()
    assert sent == [f"Root={ROOT_ID};Parent={found['id']};Sampled=1"]
    assert found["fault"] is True and "http" not in found
    assert found["cause"]["exceptions"][0]["type"] == "ConnectionRefusedError"
    assert "message" not in found["cause"]["exceptions"][0]  # not botocore's own: its text could be anything


def test_calls_from_worker_threads_are_traced(daemon):
    """The embeddings call Titan from a thread pool: each call is still a subsegment of the invocation."""
    client = traced_client("firehose")
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_response("put_record", {"RecordId": "r"})
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda _: client.put_record(DeliveryStreamName="a", Record={"Data": b"x"}), range(3)))
    found = [daemon.receive() for _ in range(3)]
    assert {f["parent_id"] for f in found} == {PARENT} and len({f["id"] for f in found}) == 3


@pytest.mark.parametrize("header", [f"Root={ROOT_ID};Parent={PARENT};Sampled=0", f"Root={ROOT_ID};Parent={PARENT}",
                                    f"Root={ROOT_ID}", None])  # fmt: skip
def test_an_invocation_not_sampled_or_without_a_trace_sends_nothing(daemon, monkeypatch, header):
    """Nothing for the unsampled call: the first document the daemon gets is the next, sampled, call's."""
    client = traced_client("ssm")
    with Stubber(client) as stub:
        stub.add_response("get_parameter", {})
        stub.add_response("delete_parameter", {})
        if header is None:
            monkeypatch.delenv("_X_AMZN_TRACE_ID")
        else:
            monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
        client.get_parameter(Name="p")
        monkeypatch.setenv("_X_AMZN_TRACE_ID", SAMPLED)
        client.delete_parameter(Name="p")
    assert daemon.receive()["aws"]["operation"] == "DeleteParameter"


def test_without_a_daemon_or_switched_off_nothing_is_registered(monkeypatch):
    """Tests and `make local` have no AWS_XRAY_DAEMON_ADDRESS: not a hook, so no cost, and no error."""

    def hooked() -> None:
        raise AssertionError("a hook ran")

    monkeypatch.setattr(tracing, "_sampled", hooked)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", SAMPLED)
    for address, enabled in ((None, None), ("127.0.0.1:2000", "false"), ("127.0.0.1:2000", "FALSE")):
        for name, value in (("AWS_XRAY_DAEMON_ADDRESS", address), ("AWS_XRAY_SDK_ENABLED", enabled)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        made = session()
        assert tracing.instrument(made) is False
        client = made.client("ssm")
        with Stubber(client) as stub:
            stub.add_response("get_parameter", {})
            client.get_parameter(Name="p")


def test_the_daemon_address_forms():
    assert tracing._udp_address("169.254.79.129:2000") == ("169.254.79.129", 2000)
    assert tracing._udp_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001") == ("127.0.0.2", 2001)


def test_registering_twice_traces_once(daemon):
    made = session()
    assert tracing.instrument(made) and tracing.instrument(made)
    client = made.client("ssm")
    with Stubber(client) as stub:
        stub.add_response("get_parameter", {})
        stub.add_response("delete_parameter", {})
        client.get_parameter(Name="p")
        client.delete_parameter(Name="p")
    assert [daemon.receive()["aws"]["operation"] for _ in range(2)] == ["GetParameter", "DeleteParameter"]


HANDLERS = """
import json, os, sys
from botocore.stub import Stubber

def call(client, method, answer, **params):
    with Stubber(client) as stub:
        stub.add_response(method, answer)
        getattr(client, method)(**params)

from lambda_src.inference import handler as inference
call(inference.SSM, "get_parameters_by_path", {"Parameters": []}, Path="/p")
call(inference.bedrock_client(25), "converse_stream", {}, modelId="m", messages=[])
from lambda_src.chat import handler as chat
call(chat.INDEX._client, "query_vectors", {"vectors": [], "distanceMetric": "cosine"}, indexArn=sys.argv[1], topK=1,
     queryVector={"float32": [0.5]})
from lambda_src.retrieval import handler as retrieval
call(retrieval.INDEX._client, "query_vectors", {"vectors": [], "distanceMetric": "cosine"}, indexArn=sys.argv[1],
     topK=1, queryVector={"float32": [0.5]})
from lambda_src.knowledge import handler as knowledge
call(knowledge.S3, "list_objects_v2", {}, Bucket="b")
"""


def test_every_traced_function_instruments_its_clients_before_making_them(daemon):
    """The handlers as Lambda imports them (a fresh interpreter with the daemon's address): a call through a client
    each one made at import is a subsegment."""
    chat = ChatEnvironment(
        history_table_name="history", model_parameter_path=INFERENCE_ENVIRONMENT.model_parameter_path,
        embedding_parameter_path=RETRIEVAL_ENVIRONMENT.embedding_parameter_path, vector_index_arn=INDEX_ARN,
        upstream_api_key_parameter=INFERENCE_ENVIRONMENT.upstream_api_key_parameter, dimension=4,
        embedding_batch_size=16, stream_timeout_seconds=0, history_retention_days=30, retrieval_top_k=5,
        history_messages=10, usage_table_name="usage", user_budget="", **REQUEST_ENVIRONMENT,
    )  # fmt: skip
    knowledge = KnowledgeEnvironment(
        manifest_table_name="manifest", dataset_bucket="dataset", knowledge_prefix="knowledge/", work_bucket="work",
        vector_index_arn=INDEX_ARN, dimension=4, embedding_parameter_path=chat.embedding_parameter_path,
        upstream_api_key_parameter=chat.upstream_api_key_parameter, youtube_secret_arn="y", proxy_secret_arn="p",
        playlist_ids=(), chunk_tokens=100, chunk_overlap_tokens=10, embedding_batch_size=4, max_document_bytes=1024,
        failure_threshold_percent=10, config_cache_seconds=60, stage="dev",
    )  # fmt: skip
    environment = {**os.environ, **INFERENCE_ENVIRONMENT.variables(), **RETRIEVAL_ENVIRONMENT.variables(),
                   **chat.variables(), **knowledge.variables(), "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "PYTHONPATH": str(ROOT)}  # fmt: skip
    subprocess.run([sys.executable, "-c", HANDLERS, INDEX_ARN], cwd=ROOT, env=environment, check=True, timeout=60)
    found = [(d["name"], d["aws"]["operation"]) for d in (daemon.receive() for _ in range(5))]
    assert found == [("ssm", "GetParametersByPath"), ("bedrock-runtime", "ConverseStream"),
                     ("s3vectors", "QueryVectors"), ("s3vectors", "QueryVectors"), ("s3", "ListObjectsV2")]  # fmt: skip


SDK = """
import json, sys
from aws_xray_sdk.core import patch, xray_recorder
from botocore.config import Config
from botocore.stub import Stubber
import boto3

xray_recorder.configure(streaming_threshold=0)  # as Powertools' Tracer sets it in Lambda: each subsegment at once
patch(["botocore"])
client = boto3.Session(region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t").client(
    "bedrock-runtime", config=Config(retries={"mode": "standard", "max_attempts": 1}))
with Stubber(client) as stub:
    stub.add_response("converse", json.loads(sys.argv[1]))
    stub.add_client_error("converse", "TooManyRequestsException", "slow", http_status_code=429)
    stub.add_client_error("converse", "InternalServerException", "down", http_status_code=500)
    for _ in range(3):
        try:
            client.converse(modelId="m", messages=[])
        except client.exceptions.ClientError:
            pass
"""


def test_the_documents_carry_what_the_x_ray_sdk_sends_for_the_same_calls(daemon, tmp_path):
    """aws-xray-sdk's patch(["botocore"]) in Lambda mode (a fresh interpreter) and this module, the same three calls:
    the same name, namespace, trace, parent, operation, region, request id, status, flags and error type."""
    answer = {**CALLS[0][3], "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": 200}}
    environment = {**os.environ, "LAMBDA_TASK_ROOT": str(tmp_path), "AWS_LAMBDA_FUNCTION_NAME": "f"}
    subprocess.run([sys.executable, "-c", SDK, json.dumps(answer)], cwd=tmp_path, env=environment, check=True,
                   timeout=60)  # fmt: skip
    theirs = [daemon.receive() for _ in range(3)]
    client = traced_client("bedrock-runtime")
    with Stubber(client) as stub:
        stub.add_response("converse", answer)
        stub.add_client_error("converse", "TooManyRequestsException", "slow", http_status_code=429)
        stub.add_client_error("converse", "InternalServerException", "down", http_status_code=500)
        for _ in range(3):
            with contextlib.suppress(client.exceptions.ClientError):
                client.converse(modelId="m", messages=[])
    ours = [daemon.receive() for _ in range(3)]

    def compared(document: dict[str, Any]) -> dict[str, Any]:
        aws = document["aws"]
        exceptions = document.get("cause", {}).get("exceptions", [])
        return {
            **{k: document.get(k) for k in ("name", "namespace", "type", "trace_id", "parent_id", "http")},
            **{k: document.get(k, False) for k in ("error", "throttle", "fault")},
            "aws": (aws["operation"], aws["region"], aws.get("request_id")),
            "exceptions": [e.get("remote") for e in exceptions],
        }

    # Where the two differ, on purpose: the SDK also sets fault on every exception (Entity.add_exception), a 429
    # included, where X-Ray's documents define fault as a 5xx; it sends the service's message (which can quote the
    # input) and a stack, where this module sends the error's code as the exception's type.
    assert theirs[1]["fault"] is True and "fault" not in ours[1]
    theirs[1]["fault"] = False
    assert [compared(d) for d in ours] == [compared(d) for d in theirs]
    assert "slow" in theirs[1]["cause"]["exceptions"][0]["message"]
    assert [d["cause"]["exceptions"][0]["type"] for d in ours[1:]] == ["TooManyRequestsException",
                                                                       "InternalServerException"]  # fmt: skip
    assert "slow" not in json.dumps(ours)


def test_make_local_gives_its_functions_no_daemon_address(monkeypatch):
    """The local runtime passes the function's own variables and nothing of the host's but PATH: even with a daemon
    address in the developer's shell, the functions' hooks stay unregistered."""
    from tools.local.runtime import lambda_environment  # noqa: PLC0415 - only this test needs the local tools

    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000")
    configuration = {"FunctionName": "f", "Handler": "lambda_src.inference.handler.lambda_handler",
                     "Environment": {"Variables": {"STAGE": "dev"}}}  # fmt: skip
    environment = lambda_environment(configuration, "http://127.0.0.1:4566", "us-east-1")
    assert "AWS_XRAY_DAEMON_ADDRESS" not in environment and "_X_AMZN_TRACE_ID" not in environment
