"""Lambda entry point of the inference API: wiring, logging and metrics around logic.Api.

Nothing here calls the network at import: clients are created, configuration is fetched on first use.
Behind a STREAM integration (STREAM_TIMEOUT_SECONDS > 0) the function runs under the project's Runtime API
loop (lambda_src/shared/runtime), which frames and sends whatever this returns, a StreamingResponse chunk by
chunk; under the managed runtime (streaming switched off) a stream is answered whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from botocore.config import Config

from lambda_src.contracts import metrics
from lambda_src.contracts.environment import InferenceEnvironment
from lambda_src.inference.logic import Api, Outcome
from lambda_src.shared import request_log
from lambda_src.shared.audit_writer import AuditWriter, stream_writer
from lambda_src.shared.budget import Budget
from lambda_src.shared.clients import QUICK, bedrock_clients
from lambda_src.shared.config_source import ConfigSource, ModelTarget
from lambda_src.shared.logs import route_module_logs
from lambda_src.shared.models import ModelClient, model_client
from lambda_src.shared.spend import SpendControl
from lambda_src.shared.tracing import instrument

if TYPE_CHECKING:
    from lambda_src.shared.runtime.response import StreamingResponse

ENV = InferenceEnvironment.from_environment()
LOGGER = Logger()  # service name from POWERTOOLS_SERVICE_NAME; JSON with the Lambda request id
route_module_logs(LOGGER)  # logic, the model adapters and the audit writer log through it too
METRICS = Metrics(namespace=metrics.NAMESPACE)  # EMF lines, no API calls
instrument()  # X-Ray subsegments for the calls of boto3's default session (boto3.client), before its clients
METRICS.set_default_dimensions(**{metrics.STAGE_DIMENSION: ENV.stage})  # dev and prod may share an account
# One boto3 session for every client: a second session would load botocore's data files again (~50 ms).
SSM = boto3.client(
    "ssm", config=Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3})
)
CONFIG = ConfigSource(
    ENV.model_parameter_path,
    ENV.upstream_api_key_parameter,
    max_age=ENV.config_cache_seconds,
    provider=ConfigSource.ssm_provider(SSM),
)


bedrock_client = bedrock_clients(boto3.client)


def model_for(target: ModelTarget) -> ModelClient:
    return model_client(target, CONFIG.upstream_api_key, bedrock_client)


def audit_writer() -> AuditWriter | None:
    return stream_writer(boto3.client, ENV.audit_stream_name, mode=ENV.audit_mode, content=ENV.audit_content,
                         stage=ENV.stage)  # fmt: skip


def spend_control() -> SpendControl | None:
    """Each key's budget (its plan's limits, or its own) in the usage table: reserve, then settle."""
    if not ENV.usage_table_name:
        return None
    return SpendControl.from_json(Budget(boto3.client("dynamodb", config=QUICK), ENV.usage_table_name),
                                  plans=ENV.plan_budgets)  # fmt: skip


API = Api(CONFIG, model_for, max_body_bytes=ENV.max_body_bytes, cors_origins=ENV.cors_allowed_origins,
          audit=audit_writer(), stream_seconds=ENV.stream_timeout_seconds, spend=spend_control(),
          guardrail=bool(ENV.apply_guardrail))  # fmt: skip


@LOGGER.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any] | StreamingResponse:
    return API.handle(event, record).reply(streaming=bool(ENV.stream_timeout_seconds))


def record(outcome: Outcome) -> None:
    """Metrics and the request's log line, once its outcome is final (for a stream: when its body ended)."""
    request_log.record(outcome, METRICS, LOGGER)
