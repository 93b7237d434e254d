"""The guardrail's own overhead per request (issue 18), with Bedrock stubbed: what the platform adds around a model
call, not Bedrock's assessment time (which this machine cannot reach).

    .venv/bin/python bench/guardrail_bench.py [--requests 5000]

- Bedrock models: the guardrail rides inside Converse; the only cost is the ``guardrailConfig`` botocore
  serializes. Measured: one buffered Converse through botocore's Stubber with and without it.
- An openai-compatible model: ApplyGuardrail on the question and on the answer (2 calls per buffered request), and
  on each piece of a streamed answer (128 characters, doubling up to 1,000). Measured: GuardedModel around a model
  that answers at once, ApplyGuardrail through botocore's Stubber, per request and per streamed answer of 2,000
  characters.
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

from lambda_src.shared.models import Completion, CompletionRequest, GuardrailRef, Message  # noqa: E402
from lambda_src.shared.models.bedrock import BedrockModel  # noqa: E402
from lambda_src.shared.models.guarded import FIRST_PIECE_CHARS, LAST_PIECE_CHARS, GuardedModel  # noqa: E402
from lambda_src.shared.models.stream import Finish, StreamEvent, TextDelta, Usage  # noqa: E402

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
REF = GuardrailRef("gr1234abcdef", "1", "sync")
REQUEST = CompletionRequest(model_id=MODEL, system=("Be brief.",),
                            messages=(Message("user", "What is the capital of France? " * 8),), temperature=0.2,
                            top_p=0.9, max_tokens=512, stop=(), timeout_seconds=25)  # fmt: skip
CONVERSE = {"output": {"message": {"role": "assistant", "content": [{"text": "Paris."}]}},
            "stopReason": "end_turn", "usage": {"inputTokens": 90, "outputTokens": 3, "totalTokens": 93},
            "metrics": {"latencyMs": 1}}  # fmt: skip
USAGE = {"topicPolicyUnits": 0, "contentPolicyUnits": 1, "wordPolicyUnits": 1, "sensitiveInformationPolicyUnits": 1,
         "sensitiveInformationPolicyFreeUnits": 0, "contextualGroundingPolicyUnits": 0}  # fmt: skip
NONE = {"usage": USAGE, "action": "NONE", "outputs": [], "assessments": []}
ANSWER = "Paris is the capital of France and its largest city. " * 37  # ~2,000 characters


class Upstream:
    def complete(self, request: CompletionRequest) -> Completion:
        return Completion("Paris.", "stop", 90, 3)

    def stream(self, request: CompletionRequest) -> Any:
        words = [TextDelta(word + " ") for word in ANSWER.split(" ") if word]
        events: list[StreamEvent] = [*words, Finish("stop"), Usage(90, 400)]

        class Stream:
            def __iter__(self) -> Any:
                return iter(events)

            def close(self) -> None:
                return None

        return Stream()


class Counting:
    """ApplyGuardrail answering NONE at once, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def apply_guardrail(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return NONE


def timed(run: Any, requests: int, before_each: Any) -> list[float]:
    samples = []
    for _ in range(requests):
        before_each()
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000)
    args = parser.parse_args()
    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")  # noqa: S106 - a stub's credentials  # fmt: skip
    stubber = Stubber(client)
    stubber.activate()
    bedrock = BedrockModel(lambda _t: client)
    plain = timed(lambda: bedrock.complete(REQUEST), args.requests,
                  lambda: stubber.add_response("converse", CONVERSE))  # fmt: skip
    guarded_request = REQUEST._replace(guardrail=REF)
    with_config = timed(lambda: bedrock.complete(guarded_request), args.requests,
                        lambda: stubber.add_response("converse", CONVERSE))  # fmt: skip
    print(
        f"Bedrock Converse through botocore's Stubber: p50 {p50(plain):.3f} ms without a guardrail, "
        f"{p50(with_config):.3f} ms with guardrailConfig (+{p50(with_config) - p50(plain):.3f} ms)"
    )

    guarded = GuardedModel(Upstream(), lambda _t: client)

    def two() -> None:
        stubber.add_response("apply_guardrail", NONE)
        stubber.add_response("apply_guardrail", NONE)

    buffered = timed(lambda: guarded.complete(guarded_request), args.requests, two)
    unguarded = timed(lambda: guarded.complete(REQUEST), args.requests, lambda: None)
    counted = Counting()
    list(GuardedModel(Upstream(), lambda _t: counted).stream(guarded_request))

    def stream_calls() -> None:
        for _ in range(counted.calls):  # the question, each piece, the rest at the end
            stubber.add_response("apply_guardrail", NONE)

    streamed = timed(lambda: list(guarded.stream(guarded_request)), args.requests // 5, stream_calls)
    stubber.assert_no_pending_responses()
    print(f"openai-compatible model with ApplyGuardrail through the Stubber: p50 {p50(buffered):.3f} ms per buffered "
          f"request (2 calls) vs {p50(unguarded):.3f} ms unguarded; a streamed answer of {len(ANSWER):,} characters "
          f"{p50(streamed):.3f} ms ({counted.calls} calls, the question's included; pieces of {FIRST_PIECE_CHARS} "
          f"doubling to {LAST_PIECE_CHARS} characters)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
