"""Lambda entry point of the conversation routes: wiring, logging and metrics around logic.ChatApi.

Behind the STREAM integration: the function runs under the project's Runtime API loop
(lambda_src/shared/runtime, started by AWS_LAMBDA_EXEC_WRAPPER), which frames whatever this returns, an answer's
StreamingResponse chunk by chunk. Nothing here calls the network at import: clients are created, configuration
(the model's and the embeddings' settings, the upstream key) is fetched on first use with a TTL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics

from lambda_src.chat.history import History
from lambda_src.chat.logic import ChatApi
from lambda_src.contracts import metrics
from lambda_src.contracts.environment import ChatEnvironment
from lambda_src.shared import request_log
from lambda_src.shared.audit_writer import stream_writer
from lambda_src.shared.budget import Budget
from lambda_src.shared.clients import QUICK, bedrock_clients
from lambda_src.shared.config_source import ConfigSource, ModelTarget
from lambda_src.shared.dispatch import Outcome
from lambda_src.shared.embeddings import Embedder, EmbeddingSettings, embedder
from lambda_src.shared.logs import route_module_logs
from lambda_src.shared.models import ModelClient, model_client
from lambda_src.shared.spend import SpendControl
from lambda_src.shared.tracing import instrument
from lambda_src.shared.vectors import VectorIndex

if TYPE_CHECKING:
    from lambda_src.shared.runtime.response import StreamingResponse

ENV = ChatEnvironment.from_environment()
LOGGER = Logger()
route_module_logs(LOGGER)
METRICS = Metrics(namespace=metrics.NAMESPACE)
METRICS.set_default_dimensions(**{metrics.STAGE_DIMENSION: ENV.stage})  # dev and prod may share an account
SESSION = boto3.Session()
instrument(SESSION)  # X-Ray subsegments for its clients' calls
SSM = ConfigSource.ssm_provider(SESSION.client("ssm", config=QUICK))
MODEL = ConfigSource(ENV.model_parameter_path, ENV.upstream_api_key_parameter, max_age=ENV.config_cache_seconds,
                     provider=SSM)  # fmt: skip
EMBEDDING = ConfigSource(ENV.embedding_parameter_path, ENV.upstream_api_key_parameter,
                         max_age=ENV.config_cache_seconds, provider=SSM)  # fmt: skip
HISTORY = History(SESSION.resource("dynamodb", config=QUICK).Table(ENV.history_table_name),
                  retention_days=ENV.history_retention_days)  # fmt: skip
INDEX = VectorIndex(SESSION.client("s3vectors", config=QUICK), ENV.vector_index_arn)


bedrock_client = bedrock_clients(SESSION.client)


def model_for(target: ModelTarget) -> ModelClient:
    return model_client(target, MODEL.upstream_api_key, bedrock_client)


def embedder_for(settings: EmbeddingSettings, dimension: int) -> Embedder:
    return embedder(settings, dimension=dimension, bedrock=lambda: bedrock_client(10),
                    api_key=EMBEDDING.upstream_api_key, batch_size=ENV.embedding_batch_size)  # fmt: skip


AUDIT = stream_writer(SESSION.client, ENV.audit_stream_name, mode=ENV.audit_mode, content=ENV.audit_content,
                      stage=ENV.stage)  # fmt: skip
API = ChatApi(HISTORY, model=MODEL, model_for=model_for, embedding=EMBEDDING, embedder_for=embedder_for, index=INDEX,
              dimension=ENV.dimension, max_body_bytes=ENV.max_body_bytes, cors_origins=ENV.cors_allowed_origins,
              audit=AUDIT, stream_seconds=ENV.stream_timeout_seconds, top_k=ENV.retrieval_top_k,
              history_messages=ENV.history_messages, guardrail=bool(ENV.apply_guardrail),
              spend=SpendControl.from_json(Budget(SESSION.client("dynamodb", config=QUICK), ENV.usage_table_name),
                                           user_limits=ENV.user_budget))  # fmt: skip


@LOGGER.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any] | StreamingResponse:
    return API.handle(event, record).reply(streaming=bool(ENV.stream_timeout_seconds))


def record(outcome: Outcome) -> None:
    request_log.record(outcome, METRICS, LOGGER)
