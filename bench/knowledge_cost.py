"""What ingesting 1,000 pages costs in AWS with the dev stage's knowledge settings, priced from a table.

    .venv/bin/python bench/knowledge_cost.py [--pages 1000] [--pages-per-document 10]

The corpus is this repository's documentation cut into pages of PAGE_CHARS characters (a page of prose, about
500 words) and cycled to the page count; the pipeline's own chunker (lambda_src/knowledge/chunking.py) with the
stage's chunk size and overlap gives the chunks, and the vectors' stored size is computed from the stage's
dimension and the metadata each vector carries. Per-call figures of the run (Lambda time per document, Titan's
tokens per word piece) are assumptions stated below, not measurements in AWS: no account is reachable from here.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambda_src.contracts import knowledge as k  # noqa: E402 - after the path set-up
from lambda_src.knowledge.chunking import chunk, count_tokens  # noqa: E402
from stacks.stages import DEV  # noqa: E402

PAGE_CHARS = 3_000
# us-east-1 list prices in USD (source, as read): not re-checked from this machine, which cannot reach them.
PRICES: dict[str, tuple[float, str]] = {
    "titan_per_1k_tokens": (0.00002, "Bedrock pricing, Amazon Titan Text Embeddings V2 on demand (2024-2026)"),
    "vectors_put_per_gb": (0.20, "S3 pricing, S3 Vectors PUT per logical GB, 128 KB minimum per call (2025-12 GA)"),
    "vectors_storage_per_gb_month": (0.06, "S3 pricing, S3 Vectors storage per logical GB-month (2025-12 GA)"),
    "transition": (0.000025, "Step Functions pricing, Standard, per state transition ($0.025 per 1,000)"),
    "lambda_gb_second": (0.0000133334, "Lambda pricing, arm64, per GB-second"),
    "lambda_request": (0.0000002, "Lambda pricing, per request ($0.20 per million)"),
    "dynamodb_write": (0.000000625, "DynamoDB on-demand, per write request unit ($0.625 per million, 2024-11)"),
    "dynamodb_read": (0.000000125, "DynamoDB on-demand, per read request unit ($0.125 per million)"),
    "s3_get": (0.0000004, "S3 Standard GET, per request ($0.0004 per 1,000)"),
}
# Assumptions about a run in AWS (not measured here).
TITAN_TOKENS_PER_PIECE = 1.1  # Titan's tokenizer against the chunker's word pieces (a margin, README)
INGEST_SECONDS_PER_DOCUMENT = 3.0  # fetch, extract, 16 Titan calls at a time at ~0.1 s, put, manifest
DISCOVER_SECONDS, REPORT_SECONDS = 5.0, 1.0
# Transitions: Discover, Documents, Report (and their ends), plus per child execution its start and Ingest.
TRANSITIONS_PER_RUN, TRANSITIONS_PER_DOCUMENT = 6, 3


def corpus_pages(pages: int) -> list[str]:
    text = "\n\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    cut = [text[i : i + PAGE_CHARS] for i in range(0, len(text) - PAGE_CHARS, PAGE_CHARS)]
    return [cut[i % len(cut)] for i in range(pages)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--pages-per-document", type=int, default=10)
    args = parser.parse_args()
    settings = DEV.knowledge
    pages = corpus_pages(args.pages)
    documents = math.ceil(args.pages / args.pages_per_document)
    texts = ["\n\n".join(pages[i : i + args.pages_per_document]) for i in range(0, args.pages, args.pages_per_document)]
    chunks = [piece for text in texts for piece in chunk(text, settings.chunk_tokens, settings.chunk_overlap_tokens)]
    pieces = sum(count_tokens(piece) for piece in chunks)
    tokens = pieces * TITAN_TOKENS_PER_PIECE
    # A vector as stored: float32 data, its key, and its metadata (text, uri, title, source, document id).
    uri = f"s3://llm-platform-dev-data-datasetbucket0123-abcdefgh/{settings.prefix}folder/document-0001.pdf"
    metadata = len(uri) + 40 + len(k.SOURCE_S3) + len(f"s3/{settings.prefix}folder/document-0001.pdf")
    vector_bytes = [4 * settings.dimension + 38 + metadata + len(piece.encode()) for piece in chunks]
    per_document = [sum(vector_bytes[i::documents]) for i in range(documents)]  # one PutVectors call each
    put_bytes = sum(max(size, 128 * 1024) for size in per_document)
    gb = 1024**3
    memory_gb = {"discover": 0.5, "ingest": 1.0, "report": 0.25}
    lambda_seconds = (DISCOVER_SECONDS * memory_gb["discover"] + REPORT_SECONDS * memory_gb["report"]
                      + documents * INGEST_SECONDS_PER_DOCUMENT * memory_gb["ingest"])  # fmt: skip
    lines = {
        "embeddings (Titan V2)": tokens / 1000 * PRICES["titan_per_1k_tokens"][0],
        "vector PUTs": put_bytes / gb * PRICES["vectors_put_per_gb"][0],
        "state transitions": (TRANSITIONS_PER_RUN + documents * TRANSITIONS_PER_DOCUMENT) * PRICES["transition"][0],
        "Lambda (duration and requests)": lambda_seconds * PRICES["lambda_gb_second"][0]
        + (2 + 2 * documents) * PRICES["lambda_request"][0],
        "DynamoDB manifest (3 writes, 2 reads per document)": documents
        * (3 * PRICES["dynamodb_write"][0] + 2 * PRICES["dynamodb_read"][0]),
        "S3 GETs of the documents": documents * PRICES["s3_get"][0],
    }
    total = sum(lines.values())
    storage = sum(vector_bytes) / gb * PRICES["vectors_storage_per_gb_month"][0]
    print(f"Ingesting {args.pages:,} pages ({documents} documents of {args.pages_per_document} pages, "
          f"{PAGE_CHARS:,} characters a page) with the dev stage's settings: {len(chunks):,} chunks of at most "
          f"{settings.chunk_tokens} word pieces ({settings.chunk_overlap_tokens} overlap), {pieces:,} word pieces "
          f"(~{tokens:,.0f} Titan tokens), {settings.dimension}-dimension vectors, {sum(vector_bytes) / 1e6:.1f} MB "
          "stored")  # fmt: skip
    for what, cost in lines.items():
        print(f"  {what}: ${cost:.4f}")
    print(f"  total for one full ingestion: ${total:.4f}")
    rerun = ((DISCOVER_SECONDS * memory_gb["discover"] + REPORT_SECONDS * memory_gb["report"])
             * PRICES["lambda_gb_second"][0] + TRANSITIONS_PER_RUN * PRICES["transition"][0])  # fmt: skip
    print(f"  storing the vectors: ${storage:.4f} a month; a weekly re-run with nothing changed (Discover, an empty "
          f"Map, Report): ${rerun:.5f}")  # fmt: skip
    print("Prices (us-east-1, USD):")
    for name, (price, source) in PRICES.items():
        print(f"  {name} = {price:g}: {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
