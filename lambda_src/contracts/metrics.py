"""CloudWatch metric names the functions emit (EMF) and the stage's dashboard and alarms read
(constructs_lib/observability).

A CloudWatch metric is its namespace, name and every dimension: a request's metrics carry ``route``, ``service``
(Powertools adds it from POWERTOOLS_SERVICE_NAME, ``service_name(function)``) and ``stage`` (dev and prod may
share an account, namespace and service names); the knowledge pipeline's carry ``service`` and ``stage``.
"""

from __future__ import annotations

NAMESPACE = "LlmPlatform"
ROUTE_DIMENSION = "route"
SERVICE_DIMENSION = "service"
STAGE_DIMENSION = "stage"
# The route dimension of requests that matched no route.
UNKNOWN_ROUTE = "unknown"
# Every request's metrics (lambda_src/shared/request_log.py).
REQUEST_DIMENSIONS = (ROUTE_DIMENSION, SERVICE_DIMENSION, STAGE_DIMENSION)
# The knowledge pipeline's metrics (lambda_src/knowledge/handler.py).
PIPELINE_DIMENSIONS = (SERVICE_DIMENSION, STAGE_DIMENSION)

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

# The knowledge pipeline, once per run from its report step: the documents of the run's work list, and those that
# failed (or were never finished).
RUN_DOCUMENTS = "RunDocuments"
FAILED_DOCUMENTS = "FailedDocuments"
# The knowledge pipeline's freshness, every few hours from its freshness check: days since the last run that
# succeeded finished (since the manifest was created when no run has succeeded yet).
DAYS_SINCE_SUCCESSFUL_RUN = "DaysSinceSuccessfulRun"

# The functions whose requests call a chat model: their audited routes (lambda_src/contracts/api.py) are the model
# calls, which reserve and settle a budget (BudgetExhausted, BudgetSettleFailed), may fall back (ModelFallbacks) and
# pass the stage's guardrail (GuardrailInterventions). The retrieval function's audited routes call only the
# embedding model. (No import of the route table here: the pipeline's functions import this module too.)
CHAT_MODEL_FUNCTIONS = ("inference", "chat")


def error_metric(code: str) -> str:
    """One count per error code, e.g. ``Error_rate_limit_exceeded``."""
    return f"Error_{code}"


ERROR_METRIC_PREFIX = error_metric("")


def service_name(function: str) -> str:
    """The function's POWERTOOLS_SERVICE_NAME, the ``service`` dimension of its metrics: ``llm-inference``,
    ``llm-knowledge-report``."""
    return f"llm-{function}"
