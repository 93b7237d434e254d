"""Answer CloudFormation exactly once: on success, on failure, and shortly before the function would time out.

CloudFormation waits up to an hour for a custom resource that never answers; this module makes sure it
always gets a SUCCESS or a FAILED with a reason instead.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from lambda_src.secure_parameter.logic import CREATE_FAILED_MARKER

LOGGER = logging.getLogger(__name__)
# Leave this much of the invocation for the timeout answer itself.
TIMEOUT_MARGIN_SECONDS = 5.0
MAX_REASON_CHARS = 1000

Sender = Callable[[str, bytes], None]


def put_response(url: str, body: bytes) -> None:
    """PUT the response to the pre-signed S3 URL, retrying transient network errors."""
    if not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
        raise ValueError("ResponseURL must be an https URL")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    delay = 1.0
    for attempt in range(1, 6):
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - scheme checked above
                reply.read()
            return
        except OSError as error:
            LOGGER.warning("Sending the response failed (attempt %d): %s", attempt, type(error).__name__)
            if attempt == 5:
                raise
            time.sleep(delay)
            delay *= 2


class Responder:
    """Builds and sends the one response for ``event``; arms a timer that answers FAILED before a timeout."""

    def __init__(self, event: dict[str, Any], remaining_seconds: float, send: Sender = put_response) -> None:
        self._event = event
        self._send = send
        self._lock = threading.Lock()
        self._sent = False
        self._timer = threading.Timer(max(remaining_seconds - TIMEOUT_MARGIN_SECONDS, 0.0), self._on_timeout)
        self._timer.daemon = True
        self._timer.start()

    @property
    def sent(self) -> bool:
        return self._sent

    def success(self, physical_id: str, data: dict[str, str]) -> None:
        self._respond("SUCCESS", "OK", physical_id, data)

    def failed(self, reason: str, physical_id: str | None = None) -> None:
        self._respond("FAILED", reason, physical_id, {})

    def _on_timeout(self) -> None:
        self.failed("The provider function was about to time out; see its log group for details.")

    def _respond(self, status: str, reason: str, physical_id: str | None, data: dict[str, str]) -> None:
        with self._lock:
            if self._sent:
                return
            self._sent = True
            self._timer.cancel()
        body = {
            "Status": status,
            "Reason": reason[:MAX_REASON_CHARS],
            "PhysicalResourceId": physical_id or self._event.get("PhysicalResourceId") or CREATE_FAILED_MARKER,
            "StackId": self._event.get("StackId"),
            "RequestId": self._event.get("RequestId"),
            "LogicalResourceId": self._event.get("LogicalResourceId"),
            "NoEcho": False,
            "Data": data,
        }
        self._send(str(self._event.get("ResponseURL", "")), json.dumps(body).encode())
        LOGGER.info("Answered %s for %s", status, self._event.get("LogicalResourceId"))
