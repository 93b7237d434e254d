"""Each request's metrics (EMF lines, no API calls) and its one log line, once its outcome is final: who and
how, never what (no prompts, outputs, keys or headers)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from lambda_src.contracts import metrics
from lambda_src.shared.dispatch import Outcome


def record(outcome: Outcome, metrics_logger: Any, logger: Any) -> None:
    """``metrics_logger``: the function's Powertools Metrics; ``logger``: its Powertools Logger."""
    latency_ms = outcome.latency_ms
    route = outcome.route if outcome.status != 404 else metrics.UNKNOWN_ROUTE
    metrics_logger.add_dimension(name=metrics.ROUTE_DIMENSION, value=route)
    metrics_logger.add_metric(name=metrics.LATENCY, unit=MetricUnit.Milliseconds, value=latency_ms)
    metrics_logger.add_metric(name=metrics.REQUESTS, unit=MetricUnit.Count, value=1)
    if outcome.error_type:
        metrics_logger.add_metric(name=metrics.error_metric(outcome.error_type), unit=MetricUnit.Count, value=1)
    if outcome.disconnected:
        metrics_logger.add_metric(name=metrics.CLIENT_DISCONNECTS, unit=MetricUnit.Count, value=1)
    if outcome.audit_failed:
        metrics_logger.add_metric(name=metrics.AUDIT_WRITE_FAILED, unit=MetricUnit.Count, value=1)
    if outcome.fallbacks:
        metrics_logger.add_metric(name=metrics.MODEL_FALLBACKS, unit=MetricUnit.Count, value=outcome.fallbacks)
    if outcome.budget_unsettled:
        metrics_logger.add_metric(name=metrics.BUDGET_SETTLE_FAILED, unit=MetricUnit.Count, value=1)
    if outcome.budget_exhausted:
        metrics_logger.add_metric(name=metrics.BUDGET_EXHAUSTED, unit=MetricUnit.Count, value=1)
    if outcome.guardrail_intervened:
        metrics_logger.add_metric(name=metrics.GUARDRAIL_INTERVENTIONS, unit=MetricUnit.Count, value=1)
    if outcome.usage is not None:
        metrics_logger.add_metric(name=metrics.PROMPT_TOKENS, unit=MetricUnit.Count,
                                  value=outcome.usage.prompt_tokens)  # fmt: skip
        metrics_logger.add_metric(name=metrics.COMPLETION_TOKENS, unit=MetricUnit.Count,
                                  value=outcome.usage.completion_tokens)  # fmt: skip
    logger.info(
        "request",
        extra={
            "api_request_id": outcome.request_id,
            "key_id": outcome.caller.key_id,
            "user_id": outcome.caller.user_id,  # a signed-in user's opaque id (Cognito sub), or ""
            "route": outcome.route,
            "status": outcome.status,
            "error_type": outcome.error_type,
            "model_id": outcome.model_id,
            "fallbacks": outcome.fallbacks,
            "guardrail_intervened": outcome.guardrail_intervened,
            "streamed": outcome.streamed,
            "disconnected": outcome.disconnected,
            "latency_ms": round(latency_ms, 1),
        },
    )
    metrics_logger.flush_metrics()
