"""CloudWatch metric names the functions emit (EMF) and dashboards and alarms read."""

from __future__ import annotations

NAMESPACE = "LlmPlatform"
ROUTE_DIMENSION = "route"
# The route dimension of requests that matched no route.
UNKNOWN_ROUTE = "unknown"

LATENCY = "Latency"
REQUESTS = "Requests"
PROMPT_TOKENS = "PromptTokens"
COMPLETION_TOKENS = "CompletionTokens"
AUDIT_WRITE_FAILED = "AuditWriteFailed"
# Streamed answers whose caller went away before the end (the model call is closed; output is partial).
CLIENT_DISCONNECTS = "ClientDisconnects"
# A model of the stage's list failed (throttled, timed out, 5xx) and the next one was tried; one per fallback.
MODEL_FALLBACKS = "ModelFallbacks"
# A settlement of a budget reservation that could not be written (the reservation stays counted).
BUDGET_SETTLE_FAILED = "BudgetSettleFailed"
# A request refused because its caller's budget is spent (tokens per minute, day or month, or the month's cost).
BUDGET_EXHAUSTED = "BudgetExhausted"
# The stage's Bedrock Guardrail blocked (or masked) a request's input or the model's output; one per request.
GUARDRAIL_INTERVENTIONS = "GuardrailInterventions"


def error_metric(code: str) -> str:
    """One count per error code, e.g. ``Error_rate_limit_exceeded``."""
    return f"Error_{code}"
