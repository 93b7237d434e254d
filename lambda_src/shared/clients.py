"""The AWS client settings the API functions share: quick calls on the request path (Parameter Store, the
history table, the vector index) and Bedrock's runtime, one client per read timeout."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from botocore.config import Config

# Bounded below API Gateway's 29 s: two attempts of a few seconds each.
QUICK = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 2})


def bedrock_clients(make_client: Callable[..., Any]) -> Callable[[int], Any]:
    """``bedrock_client(read_timeout)`` from ``make_client`` (boto3.client, or a session's): one client per
    timeout, adaptive retries (client-side rate limiting on throttles), 2 attempts at most.

    Each attempt is bounded below API Gateway's 29 s; if a timed-out attempt is retried and the second one
    runs long too, API Gateway answers first with its INTEGRATION_TIMEOUT response (504, OpenAI shape).
    """

    @functools.cache
    def bedrock_client(read_timeout: int) -> Any:
        retries = {"mode": "adaptive", "total_max_attempts": 2}
        return make_client("bedrock-runtime", config=Config(connect_timeout=2, read_timeout=read_timeout,
                                                            retries=retries))  # fmt: skip

    return bedrock_client
