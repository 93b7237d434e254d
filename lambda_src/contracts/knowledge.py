"""The knowledge base's contract: the vector index's metadata keys, the manifest table's item layout, the
embedding settings in Parameter Store, and the bounds the stage config, the pipeline and the retrieval
route share.

KnowledgeStack builds the index and the table from these names, the pipeline functions write them, the
retrieval function (POST /retrieve) reads them, and `python -m tools.knowledge` reports from them.
"""

from __future__ import annotations

import hashlib

from lambda_src.contracts.bounds import Range

# Sources the pipeline reads: the dataset bucket's knowledge prefix and YouTube playlists.
SOURCE_S3 = "s3"
SOURCE_YOUTUBE = "youtube"
SOURCES = (SOURCE_S3, SOURCE_YOUTUBE)

# Vector metadata. Filterable keys (source, document id) narrow a query; the others travel with each
# vector but cannot filter (the index declares them non-filterable, which also lifts the 2 KB limit).
META_SOURCE = "source"
META_DOCUMENT = "document_id"
META_TEXT = "text"
META_URI = "uri"
META_TITLE = "title"
NON_FILTERABLE_METADATA = (META_TEXT, META_URI, META_TITLE)

DISTANCE_METRIC = "cosine"
DATA_TYPE = "float32"
# Titan Text Embeddings V2 answers in one of these sizes; an openai-compatible model is asked for any size.
TITAN_DIMENSIONS = (256, 512, 1024)
DIMENSION = Range(1, 4096, integer=True)
TITAN_V2 = "amazon.titan-embed-text-v2:0"
EMBEDDING_PROVIDERS = ("bedrock", "openai-compatible")

# S3 Vectors: at most 500 vectors per PutVectors or DeleteVectors call.
MAX_VECTORS_PER_CALL = 500

# POST /retrieve: chunks per answer (QueryVectors itself allows 100) and the query's length.
TOP_K = Range(1, 20, integer=True)
DEFAULT_TOP_K = 5
MAX_QUERY_CHARS = 4000
# POST /embeddings: texts per request, and characters per text (Titan Text Embeddings V2 takes 50,000).
MAX_EMBEDDING_INPUTS = 64
MAX_EMBEDDING_INPUT_CHARS = 50_000

# Manifest table (one table, partition key `pk`, sort key `sk`).
PARTITION_KEY = "pk"
SORT_KEY = "sk"
DOCUMENT_PARTITION = "document"  # sk = document id
RUN_PARTITION = "run"  # sk = run id (sortable: start time, then the execution name)
# Document item attributes.
DOC_SOURCE = "source"
DOC_URI = "uri"
DOC_TITLE = "title"
DOC_VERSION = "version"  # S3 ETag, or the playlist item's etag for a video
DOC_CHUNKS = "chunks"  # number of vectors stored for the document (keys: vector_key(id, 0..chunks-1))
DOC_STATUS = "status"
DOC_ERROR = "error"
DOC_RUN = "last_run"
DOC_UPDATED = "updated_at"
DOC_TOKENS = "tokens"
# Document statuses. Unavailable: a video without a transcript (or blocked); reported, never a failure.
INDEXED = "indexed"
FAILED = "failed"
UNAVAILABLE = "unavailable"
SKIPPED = "skipped"  # a file type the pipeline does not read, or a file over the size limit
# Run item attributes (counters are ADDed by each document's step, so a run can be followed while it runs).
RUN_STATUS = "status"
RUN_STARTED = "started_at"
RUN_FINISHED = "finished_at"
RUN_TOTAL = "total"
RUN_DONE = "done"
RUN_FAILED = "failed"
RUN_UNAVAILABLE = "unavailable"
RUN_SKIPPED = "skipped"
RUN_DELETED = "deleted"
RUN_CHUNKS = "chunks"
RUN_TOKENS = "tokens"
RUN_EMBED_CALLS = "embedding_calls"
RUN_SOURCE_ERRORS = "source_errors"
RUN_DURATION = "duration_seconds"
RUNNING = "running"
SUCCEEDED = "succeeded"
RUN_FAILED_STATUS = "failed"

# Where discover writes each run's work list in the work bucket (the Map reads it from there).
WORK_PREFIX = "runs/"
# Work items the discover step hands to the Map (one JSON object each).
ACTION_INGEST = "ingest"
ACTION_DELETE = "delete"

# Embedding settings under <root>/knowledge/embedding: switched at run time like the chat model.
EMBEDDING_PATH = "knowledge/embedding"
# Where the operator tool finds the state machine and the manifest.
STATE_MACHINE_PARAMETER = "knowledge/state-machine-arn"
MANIFEST_PARAMETER = "knowledge/manifest-table"

KNOWLEDGE_FILE_TYPES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".json", ".vtt")


def vector_key(document_id: str, index: int) -> str:
    """The key of a document's ``index``-th chunk: bounded length whatever the document id (S3 keys reach 1 KB)."""
    digest = hashlib.sha256(document_id.encode()).hexdigest()[:32]
    return f"{digest}-{index:05d}"


def index_name(version: int, dimension: int) -> str:
    """A versioned index name: dimension and metric are immutable, so a change makes a new index."""
    return f"chunks-v{version}-d{dimension}-{DISTANCE_METRIC}"


# The error name the pipeline's functions raise (Lambda reports the exception's class name) for what the
# state machine retries with backoff.
TRANSIENT_ERROR = "TransientError"

# The freshness check (handler `freshness`) runs this often on its own schedule; the late-pipeline alarm reads its
# metric (DaysSinceSuccessfulRun) over periods of this length.
FRESHNESS_CHECK_HOURS = 6
