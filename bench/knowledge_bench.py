"""`make local`'s knowledge base, measured in one run: ingestion throughput against the embedding model's raw
batch throughput, a re-run with nothing changed, and the latency retrieval adds to a query's embedding.

    .venv/bin/python bench/knowledge_bench.py [--copies 3] [--queries 30]

Starts the LocalPlatform `make local` starts (free ports, state in .local/bench-knowledge/), without its sample
ingestion, then:
- raw: the chunks the pipeline will store (this repository's README and docs/, ``--copies`` times under distinct
  names, extracted and chunked with the pipeline's own code and the local stage's settings), sent straight to the
  embedding server in the pipeline's batch size; chunks per second, measured before and after the run;
- ingestion: the same files uploaded and one pipeline run (the state machine in the emulator: Discover, the
  Distributed Map of Ingest, Report), chunks stored per second of the run's own duration (Discover to Report);
- re-run: the same run again with nothing changed: embedding calls (must be 0) and its duration;
- retrieval: POST /retrieve through the whole path (gateway, authorizer, retrieval function, the embedding server,
  QueryVectors in the emulator) against the same query embedded directly by the embedding server, interleaved,
  p50 of each and the difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambda_src.knowledge.chunking import chunk  # noqa: E402 - after the path set-up
from lambda_src.knowledge.extract import extract  # noqa: E402
from stacks.stages import LOCAL_EMBEDDING_MODEL, STAGES, with_local_models  # noqa: E402
from tools.keys import Clients, KeyAdmin  # noqa: E402
from tools.local import knowledge_base  # noqa: E402
from tools.local.launcher import STAGE, STATE, LocalPlatform  # noqa: E402
from tools.local.processes import Ports  # noqa: E402

QUERIES = ("How do I add a capability?", "What does the audit log record?", "How is the API key stored?",
           "Which cdk-nag packs run on the app?", "How long does make test take?")  # fmt: skip


def post(url: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def corpus(copies: int) -> dict[str, bytes]:
    files = {path: (ROOT / path).read_bytes() for path in knowledge_base.SAMPLE_CORPUS}
    return {f"bench/copy-{n}/{path}": body for n in range(copies) for path, body in files.items()}


def raw_throughput(platform: LocalPlatform, texts: list[str], batch: int) -> float:
    url = f"http://127.0.0.1:{platform.ports.embedding}/v1/embeddings"
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        post(url, platform.upstream_key, {"model": LOCAL_EMBEDDING_MODEL, "input": texts[start : start + batch]})
    return len(texts) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    settings = with_local_models(STAGES[STAGE]).knowledge
    files = corpus(args.copies)
    size, overlap = settings.chunk_tokens, settings.chunk_overlap_tokens
    chunks = [piece for name, body in files.items() for piece in chunk(extract(name, body).text, size, overlap)]
    platform = LocalPlatform(ports=Ports.free(), state=STATE / "bench-knowledge", ingest_sample=False)
    try:
        platform.start()
        raw_before = raw_throughput(platform, chunks, settings.embedding_batch_size)
        for name, body in files.items():
            knowledge_base.put_document(platform.client, name, body)
        run = knowledge_base.run_pipeline(platform.client, platform.dynamodb(), out=None).run
        raw_after = raw_throughput(platform, chunks, settings.embedding_batch_size)
        rerun = knowledge_base.run_pipeline(platform.client, platform.dynamodb(), out=None).run

        # A premium key: the standard plan's 2 requests a second would pace the measurement, not the platform.
        admin = KeyAdmin(STAGE, Clients(platform.client("ssm"), platform.client("dynamodb"),
                                        platform.client("apigateway")))  # fmt: skip
        _, key = admin.create("bench", "premium")
        interval = 1 / next(p for p in STAGES[STAGE].api.usage_plans if p.name == "premium").rate_limit
        through: list[float] = []
        direct: list[float] = []
        embed_url = f"http://127.0.0.1:{platform.ports.embedding}/v1/embeddings"
        for i in range(args.queries):
            query = QUERIES[i % len(QUERIES)]
            begin = time.perf_counter()
            post(f"{platform.base_url}/retrieve", key, {"query": query, "top_k": 5})
            through.append((time.perf_counter() - begin) * 1000)
            begin = time.perf_counter()
            post(embed_url, platform.upstream_key, {"model": LOCAL_EMBEDDING_MODEL, "input": [query]})
            direct.append((time.perf_counter() - begin) * 1000)
            time.sleep(interval)
    finally:
        platform.stop()
    raw = statistics.mean([raw_before, raw_after])
    ingestion = run["chunks"] / run["duration_seconds"]
    print(f"corpus: {len(files)} files, {len(chunks)} chunks ({settings.chunk_tokens}-piece chunks, "
          f"{settings.chunk_overlap_tokens} overlap, batches of {settings.embedding_batch_size})")  # fmt: skip
    print(f"raw embedding throughput: {raw_before:.1f} chunks/s before, {raw_after:.1f} after (mean {raw:.1f})")
    print(
        f"ingestion: {run['chunks']} chunks stored in {run['duration_seconds']:.1f} s = {ingestion:.1f} chunks/s "
        f"= {ingestion / raw:.2f}x raw ({run['embedding_calls']} embedding calls, {run['tokens']} tokens)"
    )
    print(f"re-run with nothing changed: {rerun['embedding_calls']} embedding calls, {rerun['total']} documents, "
          f"{rerun['duration_seconds']:.2f} s")  # fmt: skip
    p50_through, p50_direct = statistics.median(through), statistics.median(direct)
    print(f"retrieval, {args.queries} queries: POST /retrieve p50 {p50_through:.1f} ms vs the query's embedding alone "
          f"p50 {p50_direct:.1f} ms: +{p50_through - p50_direct:.1f} ms added")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
