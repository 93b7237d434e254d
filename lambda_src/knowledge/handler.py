"""Lambda entry points of the knowledge pipeline (one package, four functions with their own roles):
``discover``, ``ingest`` and ``report``, called by the state machine, and ``freshness``, called on a schedule of its
own (how long ago a run last succeeded, the late-pipeline alarm's metric). Wiring only: lambda_src/knowledge/pipeline.py
holds the logic.

Nothing here calls the network at import. Secrets (the YouTube key, the proxy) are read from Secrets Manager
when a step needs them, through Powertools' cache, never from environment variables.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from botocore.config import Config

from lambda_src.contracts import metrics
from lambda_src.contracts.environment import KnowledgeEnvironment
from lambda_src.contracts.parameters import PLACEHOLDER_PREFIX
from lambda_src.knowledge.manifest import Manifest
from lambda_src.knowledge.pipeline import Pipeline, Sources
from lambda_src.knowledge.youtube import SourceError
from lambda_src.shared.config_source import ConfigSource
from lambda_src.shared.embeddings import Embedder, EmbeddingSettings, embedder
from lambda_src.shared.logs import route_module_logs
from lambda_src.shared.tracing import instrument
from lambda_src.shared.vectors import VectorIndex

ENV = KnowledgeEnvironment.from_environment()
LOGGER = Logger()
route_module_logs(LOGGER)
METRICS = Metrics(namespace=metrics.NAMESPACE)  # EMF lines; `service` from POWERTOOLS_SERVICE_NAME
METRICS.set_default_dimensions(**{metrics.STAGE_DIMENSION: ENV.stage})
_RETRIES = Config(connect_timeout=5, read_timeout=60, retries={"mode": "adaptive", "max_attempts": 5})
SESSION = boto3.Session()
instrument(SESSION)  # X-Ray subsegments for its clients' calls
S3 = SESSION.client("s3", config=_RETRIES)
MANIFEST = Manifest(SESSION.resource("dynamodb", config=_RETRIES).Table(ENV.manifest_table_name))
VECTORS = VectorIndex(SESSION.client("s3vectors", config=_RETRIES), ENV.vector_index_arn)
CONFIG = ConfigSource(
    ENV.embedding_parameter_path,
    ENV.upstream_api_key_parameter,
    max_age=ENV.config_cache_seconds,
    provider=ConfigSource.ssm_provider(SESSION.client("ssm", config=_RETRIES)),
)
SECRETS = parameters.SecretsProvider(boto3_client=SESSION.client("secretsmanager", config=_RETRIES))


@functools.cache
def _bedrock() -> Any:
    return SESSION.client("bedrock-runtime", config=_RETRIES)


def _embedder() -> Embedder:
    return embedder(EmbeddingSettings.parse(CONFIG.leaves()), dimension=ENV.dimension, bedrock=_bedrock,
                    api_key=CONFIG.upstream_api_key, batch_size=ENV.embedding_batch_size)  # fmt: skip


def _secret(arn: str) -> dict[str, Any]:
    """The secret's JSON object; a value that is not one reads as empty (the callers say what is missing)."""
    try:
        value = SECRETS.get(arn, max_age=ENV.config_cache_seconds, transform="json")
    except parameters.exceptions.TransformParameterError:
        return {}
    return value if isinstance(value, dict) else {}


def youtube_key() -> str:
    key = _secret(ENV.youtube_secret_arn).get("api_key")
    if not isinstance(key, str) or not key.strip() or key.startswith(PLACEHOLDER_PREFIX):
        raise SourceError("The YouTube Data API key is not set; an operator must put it in the YouTube secret "
                          "(README: the knowledge base's secrets).")  # fmt: skip
    return key.strip()


def youtube_proxy() -> dict[str, str] | None:
    proxy = _secret(ENV.proxy_secret_arn)
    urls = {name: proxy[name] for name in ("http_url", "https_url") if isinstance(proxy.get(name), str)}
    if not urls or any(url.startswith(PLACEHOLDER_PREFIX) for url in urls.values()):
        return None
    return urls


def record_run(total: int, failed: int) -> None:
    """A closed run's documents and failed documents, as metrics (the report step, whether the run failed or not)."""
    METRICS.add_metric(name=metrics.RUN_DOCUMENTS, unit=MetricUnit.Count, value=total)
    METRICS.add_metric(name=metrics.FAILED_DOCUMENTS, unit=MetricUnit.Count, value=failed)
    METRICS.flush_metrics()


PIPELINE = Pipeline(
    ENV,
    MANIFEST,
    Sources(s3=S3, vectors=VECTORS, embedder=_embedder, youtube_key=youtube_key, youtube_proxy=youtube_proxy),
    record_run=record_run,
)


@LOGGER.inject_lambda_context(log_event=False)
def discover(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = PIPELINE.discover(str(event["execution"]), str(event["started_at"]))
    LOGGER.info("discovered", extra={"run_id": result["run_id"], "total": result["total"],
                                     "source_errors": result["source_errors"]})  # fmt: skip
    return result


@LOGGER.inject_lambda_context(log_event=False)
def ingest(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One work item; with ``error`` (what the state machine caught), record that failure instead."""
    item = event["item"]
    result = PIPELINE.record_failure(item, event["error"]) if "error" in event else PIPELINE.ingest(item)
    LOGGER.info("document", extra={"document_id": item.get("document_id"), **result})
    return result


@LOGGER.inject_lambda_context(log_event=False)
def report(event: dict[str, Any], context: Any) -> dict[str, Any]:
    summary = PIPELINE.report(str(event["run_id"]))
    LOGGER.info("run finished", extra={"run": summary})
    return summary


@LOGGER.inject_lambda_context(log_event=False)
def freshness(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """How long ago a run last succeeded, as a metric on a schedule of its own: the stage's late-pipeline alarm
    reads it (CloudWatch looks back at most 7 days, no further than the weekly runs are apart)."""
    days = round(PIPELINE.days_since_success(), 3)
    METRICS.add_metric(name=metrics.DAYS_SINCE_SUCCESSFUL_RUN, unit=MetricUnit.NoUnit, value=days)
    METRICS.flush_metrics()
    LOGGER.info("freshness", extra={"days_since_successful_run": days})
    return {"days_since_successful_run": days}
