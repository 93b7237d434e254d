"""The knowledge base in `make local`: the embedding settings pointed at the local embedding server (as an
operator points them at an upstream), this repository's README and docs/ uploaded under the knowledge prefix
as the sample corpus, and pipeline runs started and followed by `python -m tools.knowledge`'s own code
(tools/knowledge.py) against the emulator, whose state machine really runs the deployed functions."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from lambda_src.contracts import knowledge, parameters
from lambda_src.contracts.naming import stack_name
from stacks.stages import STAGES, with_local_models
from tools.knowledge import Clients, KnowledgeAdmin, RunOutcome, progress_line
from tools.local.deploy import stack_output
from tools.local.processes import ROOT

STAGE = "dev"
# What `make local` ingests: this repository's own documentation.
SAMPLE_CORPUS = ("README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")))
# How long a local run may take (the sample corpus takes seconds; the emulator runs documents one at a time).
RUN_TIMEOUT_SECONDS = 600


def knowledge_prefix() -> str:
    return with_local_models(STAGES[STAGE]).knowledge.prefix


def configure_embeddings(client: Callable[[str], Any], port: int) -> None:
    """The embedding upstream's base URL: the local embedding server (provider and model come from the stage as
    `make local` deploys it). Its key is the upstream key, which configure_model set."""
    name = f"{parameters.parameter_name(STAGE, knowledge.EMBEDDING_PATH)}/base-url"
    client("ssm").put_parameter(Name=name, Value=f"http://127.0.0.1:{port}/v1", Type="String", Overwrite=True)


def dataset_bucket(client: Callable[[str], Any]) -> str:
    return stack_output(client, stack_name(STAGE, "data"), "DatasetBucketName")


def put_document(client: Callable[[str], Any], name: str, body: bytes) -> str:
    """Upload ``body`` as ``<knowledge prefix><name>`` of the dataset bucket; returns its document id."""
    key = knowledge_prefix() + name
    client("s3").put_object(Bucket=dataset_bucket(client), Key=key, Body=body)
    return f"{knowledge.SOURCE_S3}/{key}"


def delete_document(client: Callable[[str], Any], name: str) -> None:
    client("s3").delete_object(Bucket=dataset_bucket(client), Key=knowledge_prefix() + name)


def upload_sample_corpus(client: Callable[[str], Any]) -> list[str]:
    return [put_document(client, path, (ROOT / path).read_bytes()) for path in SAMPLE_CORPUS]


def run_pipeline(client: Callable[[str], Any], dynamodb: Any, out: TextIO | None = sys.stdout,
                 poll_seconds: float = 0.5) -> RunOutcome:  # fmt: skip
    """One pipeline run, as `python -m tools.knowledge sync` starts and follows it; progress lines go to ``out``."""
    admin = KnowledgeAdmin(STAGE, Clients(client("ssm"), client("stepfunctions"), dynamodb))
    arn, name = admin.start()

    def progress(run: dict[str, Any]) -> None:
        if out is not None:
            print(f"  knowledge run {name}: {progress_line(run)}", file=out, flush=True)

    return admin.follow(arn, name, progress=progress, poll_seconds=poll_seconds, timeout_seconds=RUN_TIMEOUT_SECONDS)
