"""Lambda entry point of POST /embeddings and POST /retrieve: wiring, logging and metrics around
logic.RetrievalApi.

Nothing here calls the network at import: clients are created, configuration is fetched on first use. The
embedding settings (provider, model id, base URL) are read from Parameter Store with a TTL, as the pipeline
reads them, so queries are always embedded by the model that embedded the index.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics

from lambda_src.contracts import metrics
from lambda_src.contracts.environment import RetrievalEnvironment
from lambda_src.retrieval.logic import RetrievalApi
from lambda_src.shared import request_log
from lambda_src.shared.audit_writer import stream_writer
from lambda_src.shared.clients import QUICK, bedrock_clients
from lambda_src.shared.config_source import ConfigSource
from lambda_src.shared.dispatch import Outcome
from lambda_src.shared.embeddings import Embedder, EmbeddingSettings, embedder
from lambda_src.shared.logs import route_module_logs
from lambda_src.shared.tracing import instrument
from lambda_src.shared.vectors import VectorIndex

ENV = RetrievalEnvironment.from_environment()
LOGGER = Logger()
route_module_logs(LOGGER)
METRICS = Metrics(namespace=metrics.NAMESPACE)
METRICS.set_default_dimensions(**{metrics.STAGE_DIMENSION: ENV.stage})  # dev and prod may share an account
SESSION = boto3.Session()
instrument(SESSION)  # X-Ray subsegments for its clients' calls
CONFIG = ConfigSource(ENV.embedding_parameter_path, ENV.upstream_api_key_parameter, max_age=ENV.config_cache_seconds,
                      provider=ConfigSource.ssm_provider(SESSION.client("ssm", config=QUICK)))  # fmt: skip
INDEX = VectorIndex(SESSION.client("s3vectors", config=QUICK), ENV.vector_index_arn)


bedrock_client = bedrock_clients(SESSION.client)


def embedder_for(settings: EmbeddingSettings, dimension: int) -> Embedder:
    return embedder(settings, dimension=dimension, bedrock=lambda: bedrock_client(10),
                    api_key=CONFIG.upstream_api_key, batch_size=ENV.embedding_batch_size)  # fmt: skip


AUDIT = stream_writer(SESSION.client, ENV.audit_stream_name, mode=ENV.audit_mode, content=ENV.audit_content,
                      stage=ENV.stage)  # fmt: skip
API = RetrievalApi(CONFIG, embedder_for, INDEX, dimension=ENV.dimension, max_body_bytes=ENV.max_body_bytes,
                   cors_origins=ENV.cors_allowed_origins, audit=AUDIT)  # fmt: skip


@LOGGER.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return API.handle(event, record).response


def record(outcome: Outcome) -> None:
    request_log.record(outcome, METRICS, LOGGER)
