"""The budget check's own overhead per request (issue 17): a reservation before the model call and a settlement
after it, as the inference function makes them, with DynamoDB stubbed, and the DynamoDB calls it makes.

    .venv/bin/python bench/budget_bench.py [--requests 20000]

Two stubs: a client object answering at once (the project's code alone: the estimate, the price, the conditional
update expressions, the settlement's difference), and botocore's own client under its Stubber (adds what botocore
does before a request leaves: parameter validation and serialization, event hooks). Target p50 <= 0.5 ms, 2 calls.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402 - after the path set-up
from botocore.stub import Stubber  # noqa: E402

from lambda_src.contracts import spend  # noqa: E402
from lambda_src.shared.budget import Budget  # noqa: E402
from lambda_src.shared.config_source import ModelSettings  # noqa: E402
from lambda_src.shared.dispatch import Caller, Outcome  # noqa: E402
from lambda_src.shared.models import Completion, CompletionRequest, Message  # noqa: E402
from lambda_src.shared.spend import SpendControl  # noqa: E402

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
SETTINGS = ModelSettings(provider="bedrock", model_id=MODEL, temperature=0.2, top_p=0.9, max_output_tokens=1024,
                         request_timeout_seconds=25, system_prompt="Be brief.",
                         upstream_base_url="https://api.openai.com/v1",
                         prices={MODEL: spend.Price(0.25, 1.25)})  # fmt: skip
REQUEST = CompletionRequest(model_id=MODEL, system=("Be brief.",),
                            messages=(Message("user", "What is the capital of France? " * 8),), temperature=0.2,
                            top_p=0.9, max_tokens=512, stop=(), timeout_seconds=25)  # fmt: skip
# Every limit set: the reservation's transaction carries all four conditions.
LIMITS = spend.Limits(tokens_per_minute=10**9, tokens_per_day=10**10, tokens_per_month=10**11,
                      cost_per_month_usd=10**6)  # fmt: skip


class Counting:
    """A DynamoDB client answering at once, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def transact_write_items(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return {}


def measure(client: Any, requests: int, before_each: Any = None) -> list[float]:
    control = SpendControl(Budget(client, "llm-platform-dev-api-usage"), plans={"standard": LIMITS})
    caller = Caller(key_id="key_0123456789abcdef", owner="bench", plan="standard")
    samples = []
    for _ in range(requests):
        outcome = Outcome(route="/chat/completions", caller=caller, request_id="bench")
        if before_each is not None:
            before_each()
        start = time.perf_counter()
        control.before(REQUEST, SETTINGS, outcome)
        outcome.model_id, outcome.usage = MODEL, Completion("Paris.", "stop", 90, 12)
        control.after(REQUEST, outcome)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"p50 {statistics.median(ordered):.3f} ms, p99 {ordered[int(len(ordered) * 0.99) - 1]:.3f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    counting = Counting()
    measure(counting, 500)  # warm up
    counting.calls = 0
    own = measure(counting, args.requests)
    calls_per_request = counting.calls / args.requests
    credentials = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}  # never leave this machine
    botocore = boto3.client("dynamodb", region_name="us-east-1", **credentials)
    with Stubber(botocore) as stubber:

        def queue() -> None:
            stubber.add_response("transact_write_items", {})
            stubber.add_response("transact_write_items", {})

        measure(botocore, 200, queue)
        stubbed = measure(botocore, args.requests // 4, queue)
    print(f"Budget overhead per request, reserve + settle ({args.requests} requests, every limit set): "
          f"{summary(own)} with a client answering at once; {summary(stubbed)} through botocore's client under its "
          f"Stubber ({args.requests // 4} requests; target p50 <= 0.5 ms); DynamoDB calls per request: "
          f"{calls_per_request:g}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
