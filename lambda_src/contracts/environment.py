"""Each function's environment, as a typed contract: the stack renders it, the handler reads it back.

A field ``audit_mode`` is the variable ``AUDIT_MODE``. ``variables()`` gives the strings Lambda stores
(CDK tokens pass through as they are); ``from_environment()`` parses them, so a missing or malformed
variable fails the function's init with a sentence naming it instead of a KeyError deep in a request.
Field types: str, int or tuple[str, ...] (stored as JSON).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, NamedTuple, TypeVar

from lambda_src.contracts.audit import CONTENTS, MODES

Contract = TypeVar("Contract", bound=tuple[Any, ...])


class InferenceEnvironment(NamedTuple):
    model_parameter_path: str
    upstream_api_key_parameter: str
    # How long parameters stay cached before Parameter Store is read again.
    config_cache_seconds: int
    max_body_bytes: int
    cors_allowed_origins: tuple[str, ...]
    # Empty: no audit log (local unit tests only; every deployed stage has one).
    audit_stream_name: str
    audit_mode: str
    audit_content: str
    stage: str
    # Seconds a streamed answer may take (the function's timeout behind a STREAM integration, whose Runtime API
    # loop AWS_LAMBDA_EXEC_WRAPPER starts); 0: streaming is switched off and `stream: true` is answered whole.
    stream_timeout_seconds: int = 0
    # The usage table (lambda_src/contracts/spend.py) and each usage plan's limits (JSON: plan -> limits);
    # an empty table name: no budgets (local unit tests only; every deployed stage has them).
    usage_table_name: str = ""
    plan_budgets: str = "{}"
    # 1: apply the stage's guardrail to the model calls (its id and version are model settings); 0: the stage
    # switched it off for this route family (lambda_src/contracts/guardrail.py).
    apply_guardrail: int = 0

    def variables(self) -> dict[str, str]:
        return variables(self)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> InferenceEnvironment:
        return read_audited(cls, environ)


class KnowledgeEnvironment(NamedTuple):
    """The knowledge pipeline's functions (discover, ingest, report): one contract, each reads its part."""

    manifest_table_name: str
    dataset_bucket: str
    knowledge_prefix: str
    work_bucket: str
    vector_index_arn: str
    dimension: int
    embedding_parameter_path: str
    # The openai-compatible embedding provider's key: the stage's upstream key (a SecureString).
    upstream_api_key_parameter: str
    youtube_secret_arn: str
    proxy_secret_arn: str
    playlist_ids: tuple[str, ...]
    chunk_tokens: int
    chunk_overlap_tokens: int
    embedding_batch_size: int
    max_document_bytes: int
    failure_threshold_percent: int
    config_cache_seconds: int
    # The stage's name: a dimension of the pipeline's metrics (dev and prod may share an account).
    stage: str

    def variables(self) -> dict[str, str]:
        return variables(self)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> KnowledgeEnvironment:
        return read(cls, environ)


class RetrievalEnvironment(NamedTuple):
    """The retrieval function (POST /embeddings, POST /retrieve)."""

    embedding_parameter_path: str
    upstream_api_key_parameter: str
    vector_index_arn: str
    # The index's vector size: the default `dimensions` of /embeddings, and what /retrieve's query must have.
    dimension: int
    # Texts per openai-compatible request, or concurrent Titan calls.
    embedding_batch_size: int
    config_cache_seconds: int
    max_body_bytes: int
    cors_allowed_origins: tuple[str, ...]
    audit_stream_name: str
    audit_mode: str
    audit_content: str
    stage: str

    def variables(self) -> dict[str, str]:
        return variables(self)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> RetrievalEnvironment:
        return read_audited(cls, environ)


class ChatEnvironment(NamedTuple):
    """The chat function (the conversation routes)."""

    history_table_name: str
    model_parameter_path: str
    embedding_parameter_path: str
    upstream_api_key_parameter: str
    vector_index_arn: str
    dimension: int
    embedding_batch_size: int
    config_cache_seconds: int
    max_body_bytes: int
    cors_allowed_origins: tuple[str, ...]
    audit_stream_name: str
    audit_mode: str
    audit_content: str
    stage: str
    # Seconds an answer may stream (the function's timeout behind the STREAM integration).
    stream_timeout_seconds: int
    history_retention_days: int
    retrieval_top_k: int
    history_messages: int
    # The usage table and each signed-in user's limits (JSON, lambda_src/contracts/spend.py).
    usage_table_name: str
    user_budget: str
    # 1: apply the stage's guardrail to the answers (see InferenceEnvironment).
    apply_guardrail: int = 0

    def variables(self) -> dict[str, str]:
        return variables(self)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ChatEnvironment:
        return read_audited(cls, environ)


class AuthorizerEnvironment(NamedTuple):
    key_table_name: str

    def variables(self) -> dict[str, str]:
        return variables(self)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> AuthorizerEnvironment:
        return read(cls, environ)


def read_audited(kind: type[Contract], environ: Mapping[str, str] | None = None) -> Contract:
    """``read``, then the audit settings every request-serving contract carries (mode, content, stream)."""
    env = read(kind, environ)
    _check_audit(env.audit_mode, env.audit_content, env.audit_stream_name)  # type: ignore[attr-defined]
    return env


def _check_audit(mode: str, content: str, stream_name: str) -> None:
    if mode not in MODES or content not in CONTENTS:
        raise ValueError(f"The function's AUDIT_MODE must be one of {', '.join(MODES)} and AUDIT_CONTENT one of "
                         f"{', '.join(CONTENTS)}.")  # fmt: skip
    if mode == "required" and not stream_name:
        # Serving unaudited would silently break the promise of required mode: fail the init instead.
        raise ValueError("The function's AUDIT_MODE is required but AUDIT_STREAM_NAME is empty.")


def variables(contract: tuple[Any, ...]) -> dict[str, str]:
    """The contract's fields as environment variables."""
    values = contract._asdict()  # type: ignore[attr-defined]
    return {name.upper(): json.dumps(list(v)) if isinstance(v, tuple) else str(v) for name, v in values.items()}


def read(kind: type[Contract], environ: Mapping[str, str] | None = None) -> Contract:
    """Parse the contract from the environment (the process's own by default)."""
    source = os.environ if environ is None else environ
    hints = kind.__annotations__
    values: dict[str, Any] = {}
    for field in kind._fields:  # type: ignore[attr-defined]
        name = field.upper()
        if name not in source:
            raise ValueError(f"The function's environment variable {name} is missing.")
        try:
            values[field] = _parse(source[name], hints[field])
        except ValueError:
            raise ValueError(f"The function's environment variable {name} is malformed.") from None
    return kind(**values)


def _parse(raw: str, annotation: Any) -> Any:
    # NamedTuple keeps a postponed annotation as a ForwardRef: its text is "str", "int" or "tuple[str, ...]".
    kind = getattr(annotation, "__forward_arg__", annotation)
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind == "int":
        return int(raw)
    if kind == "str":
        return raw
    items = json.loads(raw)
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(raw)
    return tuple(items)
