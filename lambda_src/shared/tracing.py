"""X-Ray subsegments for the function's AWS calls: one per botocore call (Bedrock, Parameter Store, Firehose,
DynamoDB, S3 Vectors, ...), attached to the invocation's Lambda segment (active tracing makes that one).

``instrument(session)`` registers four hooks on a boto3 session's events before its clients are made (clients
copy the session's handlers when they are created). In a sampled invocation (``_X_AMZN_TRACE_ID`` with
``Sampled=1``, set by the managed runtime or by the project's Runtime API loop) each call becomes a subsegment
document sent over UDP to the X-Ray daemon Lambda runs (``AWS_XRAY_DAEMON_ADDRESS``), as the X-Ray SDK does it:
named after the service's endpoint prefix, namespace ``aws``, ``aws.operation``/``region``/``request_id``/
``retries``, the HTTP status, error (4xx), throttle (429 or a throttling code) or fault (5xx, or no answer) and the
error's code (never a service's message, which can quote the input, nor any parameter but a table's name).
The outgoing call's ``X-Amzn-Trace-Id`` names the subsegment as its parent. Nothing is registered without a
daemon address (tests, ``make local``) or with ``AWS_XRAY_SDK_ENABLED=false``; nothing is sent when the
invocation is not sampled. A streamed answer's subsegment ends when its response starts (its first event).

Why not aws-xray-sdk's ``patch(["botocore"])`` (or Powertools' Tracer, which imports it): it adds 76M
instructions to the inference function's cold start (asyncio, wrapt, its recorder and sampling, all at
import), its thread-local context loses the embeddings' calls made from worker threads, and these functions
need none of its segments, sampling or plugins (docs/PERFORMANCE.md, "Tracing"). Standard library and
botocore's documented event names only; tests/lambda/test_tracing.py holds it to the SDK's documents.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError

TRACE_ENV = "_X_AMZN_TRACE_ID"
DAEMON_ENV = "AWS_XRAY_DAEMON_ADDRESS"
ENABLED_ENV = "AWS_XRAY_SDK_ENABLED"  # the X-Ray SDK's own switch, honoured the same way
_HEADER = b'{"format": "json", "version": 1}\n'
_KEY = "x-ray"  # in botocore's per-call request context
# botocore's throttling codes (botocore.retries.standard), answered with 400 by some services.
_THROTTLED = frozenset((
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "TransactionInProgressException",
    "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException",
))  # fmt: skip


def instrument(session: Any = None) -> bool:
    """Trace the calls of every client ``session`` (a boto3 Session; boto3's default session when None, the
    one ``boto3.client`` uses) makes from now on. True when the hooks are registered."""
    address = os.environ.get(DAEMON_ENV, "")
    if not address or os.environ.get(ENABLED_ENV, "").lower() == "false":
        return False
    if session is None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
    calls = Calls(_udp_address(address))
    for event, hook in (("before-parameter-build", calls.start), ("before-call", calls.header),
                        ("after-call", calls.end), ("after-call-error", calls.failed)):  # fmt: skip
        session.events.register(event, hook, unique_id=f"llm-platform-x-ray-{event}")
    return True


def _udp_address(value: str) -> tuple[str, int]:
    """``host:port``, or the SDK's ``tcp:host:port udp:host:port`` form."""
    found = next((part[4:] for part in value.split() if part.startswith("udp:")), value.split(maxsplit=1)[0])
    host, _, port = found.rpartition(":")
    return host, int(port)


def _sampled() -> tuple[str, str] | None:
    """(Root, Parent) of the invocation's trace header when it is sampled."""
    header = os.environ.get(TRACE_ENV, "")
    if "Sampled=1" not in header:
        return None
    fields = dict(part.partition("=")[::2] for part in header.split(";"))
    root, parent = fields.get("Root"), fields.get("Parent")
    return (root, parent) if root and parent else None


class Calls:
    """The hooks; each call's subsegment lives in its botocore request context until it ends."""

    def __init__(self, daemon: tuple[str, int]) -> None:
        self._daemon = daemon
        self._socket: socket.socket | None = None

    def start(self, params: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        trace = _sampled()
        if trace is None:
            return
        aws = {"operation": model.name, "region": context.get("client_region")}
        if isinstance(params, dict) and isinstance(params.get("TableName"), str):
            aws["table_name"] = params["TableName"]
        context[_KEY] = {"name": model.service_model.endpoint_prefix, "id": os.urandom(8).hex(),
                         "trace_id": trace[0], "parent_id": trace[1], "start_time": time.time(),
                         "type": "subsegment", "namespace": "aws", "aws": aws}  # fmt: skip

    def header(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        found = context.get(_KEY)
        if found is not None:
            params["headers"]["X-Amzn-Trace-Id"] = f"Root={found['trace_id']};Parent={found['id']};Sampled=1"

    def end(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        found = context.pop(_KEY, None)
        if found is None:
            return
        meta = parsed.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode") or getattr(http_response, "status_code", None)
        found["aws"].update(request_id=meta.get("RequestId"), retries=meta.get("RetryAttempts", 0))
        if status:
            found["http"] = {"response": {"status": status}}
        error = parsed.get("Error") or {}
        if status and status >= 500:
            found["fault"] = True
        elif (status and status >= 400) or error:
            found["error"] = True
            found["throttle"] = status == 429 or error.get("Code") in _THROTTLED or None
        if error:  # the code only: a service's message can quote the input (Bedrock's does)
            found["cause"] = {"exceptions": [{"id": os.urandom(8).hex(), "type": error.get("Code"), "remote": True}]}
        self._send(found)

    def failed(self, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        """No answer (a timeout, a dropped connection): a fault. botocore's own messages name only the endpoint."""
        found = context.pop(_KEY, None)
        if found is not None:
            cause = {"id": os.urandom(8).hex(), "type": type(exception).__name__}
            if isinstance(exception, BotoCoreError):
                cause["message"] = str(exception)[:500]
            found.update(fault=True, cause={"exceptions": [cause]})
            self._send(found)

    def _send(self, subsegment: dict[str, Any]) -> None:
        subsegment["end_time"] = time.time()
        document = {key: value for key, value in subsegment.items() if value is not None}
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto(_HEADER + json.dumps(document, separators=(",", ":")).encode(), self._daemon)
        except OSError:
            pass  # tracing never fails a call
