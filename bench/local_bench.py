"""`make local` benchmark: how long the platform takes to come up on this machine, and how it answers.

    .venv/bin/python bench/local_bench.py [--requests 20]

Starts the same LocalPlatform `make local` starts (free ports, state in .local/bench/), then:
- start-up: emulator ready, bootstrap + deploy of the four dev stacks, boto3 checks, model ready, key, API;
- chat latency through the whole path (local gateway -> authorizer -> inference function -> SmolLM2 ->
  audit record to the emulator's Firehose), temperature 0, a one-sentence answer; p50 / p90;
- throughput of the model on the same path: completion tokens per second of wall time for a longer answer;
- time to first token of a streamed answer through the whole path vs. directly from the model server (same
  prompt, interleaved, the openai SDK both times): what the platform adds, p50.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import openai
from openai.types.chat import ChatCompletionUserMessageParam

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stacks.stages import STAGES  # noqa: E402 - after the path set-up
from tools.local.launcher import MODEL_ALIAS, STAGE, STATE, LocalPlatform  # noqa: E402
from tools.local.processes import Ports  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    platform = LocalPlatform(ports=Ports.free(), state=STATE / "bench")
    started = time.perf_counter()
    try:
        platform.start()
        ready = time.perf_counter() - started
        client = openai.OpenAI(base_url=platform.base_url, api_key=platform.key, max_retries=0, timeout=60)
        question = [ChatCompletionUserMessageParam(role="user", content="What is the capital of France?")]
        latencies = []
        # The key's usage plan throttles it as API Gateway would: one request per token of its rate.
        interval = 1 / STAGES[STAGE].api.usage_plans[0].rate_limit
        for _ in range(args.requests):
            begin = time.perf_counter()
            client.chat.completions.create(model=MODEL_ALIAS, temperature=0, max_tokens=30, messages=question)
            latencies.append((time.perf_counter() - begin) * 1000)
            time.sleep(max(0.0, interval - (time.perf_counter() - begin)))
        story = [ChatCompletionUserMessageParam(role="user", content="Write a short story about a lighthouse keeper.")]
        begin = time.perf_counter()
        long_reply = client.chat.completions.create(model=MODEL_ALIAS, temperature=0, max_tokens=200, messages=story)
        seconds = time.perf_counter() - begin
        tokens = long_reply.usage.completion_tokens if long_reply.usage else 0
        direct = openai.OpenAI(base_url=f"http://127.0.0.1:{platform.ports.model}/v1", api_key=platform.upstream_key,
                               max_retries=0, timeout=60)  # fmt: skip
        first_token: dict[str, list[float]] = {"platform": [], "direct": []}
        for _ in range(args.requests):
            for name, target in (("platform", client), ("direct", direct)):
                begin = time.perf_counter()
                stream = target.chat.completions.create(model=MODEL_ALIAS, temperature=0, max_tokens=30,
                                                        messages=question, stream=True)  # fmt: skip
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        first_token[name].append((time.perf_counter() - begin) * 1000)
                        break
                stream.close()
                time.sleep(max(0.0, interval - (time.perf_counter() - begin)))
    finally:
        platform.stop()
    latencies.sort()
    print(f"platform ready (emulator, deploy of every stack, checks, model, key, API): {ready:.1f} s")
    print(f"chat, one-sentence answer, {args.requests} requests: p50 {statistics.median(latencies):.0f} ms, "
          f"p90 {latencies[int(len(latencies) * 0.9) - 1]:.0f} ms")  # fmt: skip
    print(f"longer answer: {tokens} tokens in {seconds:.2f} s = {tokens / seconds:.0f} tokens/s end to end")
    through, direct_p50 = statistics.median(first_token["platform"]), statistics.median(first_token["direct"])
    print(f"time to first token, streamed, {args.requests} requests each: through the platform p50 {through:.1f} ms, "
          f"from the model server directly p50 {direct_p50:.1f} ms -> added p50 {through - direct_p50:.1f} ms "
          "(target <= 15 ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
