"""The errors the state machine acts on by name (lambda_src/contracts/knowledge.py)."""

from __future__ import annotations


class TransientError(Exception):
    """Throttling, a timeout or a service error: the state machine retries the step with backoff."""


class RunFailedError(Exception):
    """More documents failed than the stage's threshold allows: the run ends as failed."""
