"""End to end: the knowledge base of the deployed dev stage. The pipeline's state machine runs in the emulator
(Discover, the Distributed Map of Ingest, Report: the deployed functions on the host), embeds with the real
local model (all-MiniLM-L6-v2 behind the openai-compatible provider) into the emulator's S3 Vectors index, and
POST /retrieve and POST /embeddings answer through the local gateway, the authorizer and the retrieval function.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from typing import Any

import openai
import pytest

from lambda_src.contracts import knowledge as k
from lambda_src.contracts.naming import stack_name
from stacks.stages import LOCAL_EMBEDDING_DIMENSION, LOCAL_EMBEDDING_MODEL
from tools.knowledge import RunOutcome
from tools.local import knowledge_base
from tools.local.deploy import emulator_environment, stack_output
from tools.local.launcher import STAGE, LocalPlatform, create_key
from tools.local.processes import ROOT

FIRST = """# Quokka operations

The quokka named Bartholomew guards the platform's vault every Tuesday night.

## Feeding

Bartholomew eats exactly seventeen eucalyptus leaves before each shift, never more.

## Rotation

On Wednesdays a wombat called Genevieve takes over the vault until the next Tuesday.
"""
SECOND = """# Quokka operations

The vault is now guarded by a retired lighthouse keeper named Ottoline.
"""


@pytest.fixture(scope="module")
def key(platform: LocalPlatform) -> str:
    """This module's own key: its requests do not spend the usage-plan bucket of the platform's key."""
    return create_key(platform.client)[1]


def retrieve(platform: LocalPlatform, key: str, query: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - the local gateway on 127.0.0.1
        f"{platform.base_url}/retrieve", data=json.dumps({"query": query, **extra}).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def sync(platform: LocalPlatform) -> RunOutcome:
    outcome = knowledge_base.run_pipeline(platform.client, platform.dynamodb(), out=None)
    assert outcome.status == "SUCCEEDED", outcome
    return outcome


def vectors_of(platform: LocalPlatform, document_id: str, chunks: int) -> list[str]:
    """The keys of ``document_id``'s first ``chunks`` vectors that the index holds."""
    arn = _index_arn(platform)
    keys = [k.vector_key(document_id, i) for i in range(chunks)]
    found = platform.client("s3vectors").get_vectors(indexArn=arn, keys=keys, returnMetadata=True)["vectors"]
    return sorted(v["key"] for v in found)


def _index_arn(platform: LocalPlatform) -> str:
    return stack_output(platform.client, stack_name(STAGE, "knowledge"), "VectorIndexArn")


def test_the_sample_corpus_was_ingested_by_the_pipeline_and_retrieve_finds_the_right_document(platform, key):
    run = platform.knowledge_run
    assert run is not None and run.status == "SUCCEEDED"
    assert run.run["total"] == len(knowledge_base.SAMPLE_CORPUS) and run.run["failed"] == 0
    assert run.run["chunks"] > 50 and run.run["embedding_calls"] > 0
    for question, expected in (
        ("How is the code organised into capability folders, and which import rules does make lint enforce?",
         "docs/ARCHITECTURE.md"),
        ("How many seconds does the test suite take, and how long is a synth?", "docs/PERFORMANCE.md"),
    ):  # fmt: skip
        status, body = retrieve(platform, key, question, top_k=3)
        assert status == 200, body
        assert body["data"][0]["document_id"] == f"s3/{knowledge_base.knowledge_prefix()}{expected}", body["data"]
        assert body["data"][0]["uri"].startswith("s3://") and body["data"][0]["text"]


def test_a_document_is_found_after_a_sync_replaced_when_changed_and_gone_when_deleted(platform, key):
    name = f"e2e/quokka-{uuid.uuid4().hex[:8]}.md"
    document_id = knowledge_base.put_document(platform.client, name, FIRST.encode())
    first = sync(platform)
    assert first.run["total"] == 1 and first.run["done"] == 1  # only the new document: the corpus is unchanged
    status, body = retrieve(platform, key, "Who guards the vault on Tuesday nights?")
    assert status == 200 and body["data"][0]["document_id"] == document_id, body["data"]
    assert "Bartholomew" in body["data"][0]["text"]
    chunks_before = first.run["chunks"]

    knowledge_base.put_document(platform.client, name, SECOND.encode())
    changed = sync(platform)
    assert changed.run["total"] == 1 and changed.run["chunks"] <= chunks_before
    status, body = retrieve(platform, key, "Who guards the vault?", top_k=20)
    texts = [chunk["text"] for chunk in body["data"] if chunk["document_id"] == document_id]
    assert texts and all("Ottoline" in text for text in texts) and not any("Bartholomew" in t for t in texts)
    assert len(vectors_of(platform, document_id, max(chunks_before, 3))) == changed.run["chunks"]

    knowledge_base.delete_document(platform.client, name)
    deleted = sync(platform)
    assert (deleted.run["total"], deleted.run["deleted"]) == (1, 1)
    status, body = retrieve(platform, key, "Who guards the vault?", top_k=20)
    assert status == 200 and document_id not in [chunk["document_id"] for chunk in body["data"]]
    assert vectors_of(platform, document_id, max(chunks_before, 3)) == []


def test_the_operator_command_runs_a_sync_that_embeds_nothing_when_nothing_changed(platform):
    """`python -m tools.knowledge sync` itself, against the emulator; the corpus is as the last run left it."""
    env = emulator_environment(platform.ports.emulator)
    result = subprocess.run([sys.executable, "-m", "tools.knowledge", "sync", "--stage", STAGE], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0/0 documents, 0 failed" in result.stdout
    assert "succeeded: 0 chunks stored, 0 tokens in 0 embedding calls" in result.stdout
    status = subprocess.run([sys.executable, "-m", "tools.knowledge", "status", "--stage", STAGE], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert status.returncode == 0 and "succeeded" in status.stdout and "0 failed document(s)." in status.stdout


def test_the_openai_sdk_embeds_with_the_knowledge_bases_model(platform, key):
    client = openai.OpenAI(base_url=platform.base_url, api_key=key, max_retries=0, timeout=60)
    texts = ["The cat sat on the mat.", "A kitten was sitting on the rug.", "Quarterly revenue grew by four percent."]
    answer = client.embeddings.create(model=LOCAL_EMBEDDING_MODEL, input=texts)
    vectors = [item.embedding for item in answer.data]
    assert [len(v) for v in vectors] == [LOCAL_EMBEDDING_DIMENSION] * 3
    assert answer.model == LOCAL_EMBEDDING_MODEL and answer.usage.prompt_tokens > 0

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2
    with pytest.raises(openai.BadRequestError):  # the local model embeds in 384 dimensions only
        client.embeddings.create(model=LOCAL_EMBEDDING_MODEL, input="x", dimensions=1024)


def test_retrieval_is_audited_and_a_bad_request_is_a_400_in_the_error_shape(platform, key):
    question = f"Which rule pins stateful logical ids? {uuid.uuid4().hex[:6]}"
    status, _ = retrieve(platform, key, question, top_k=2)
    assert status == 200
    (record,) = [r for r in platform.audit_records() if r.get("input_text") == question]
    assert record["user_id"] == "local-user" and record["model_id"] == LOCAL_EMBEDDING_MODEL
    assert record["status_code"] == 200 and len(json.loads(record["output_text"])) == 2
    status, body = retrieve(platform, key, "q", top_k=50)
    assert status == 400 and body["error"]["type"] == "invalid_request_error" and "top_k" in body["error"]["message"]
