"""API benchmarks (issue 4): cold init, warm per-request overhead, deployment package size.

    .venv/bin/python bench/api_bench.py [--runs 15] [--requests 10000]

- Cold init: a fresh interpreter importing the inference handler and creating its Bedrock client, against
  a fresh interpreter doing only `import boto3` + the same client; interleaved runs, medians. Target <= 1.15x.
- Warm overhead: lambda_handler in-process with the model and configuration stubbed (no network), so the
  figure is routing, validation, JSON, Powertools logging and metrics. Target p50 <= 1 ms, p99 <= 5 ms.
- Package: zipped size of each function's own code, and of the Powertools layer built at synth.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "MODEL_PARAMETER_PATH": "/llm-platform/dev/model",
    "UPSTREAM_API_KEY_PARAMETER": "/llm-platform/dev/secrets/upstream-api-key",
    "POWERTOOLS_SERVICE_NAME": "llm-inference",
    "POWERTOOLS_METRICS_NAMESPACE": "LlmPlatform",
}
# The handler creates two clients (SSM for its configuration, Bedrock for the model): the fair baseline makes
# the same two, so the ratio is what the project's code and Powertools add. The one-client baseline is
# reported too.
BARE = "import boto3; boto3.client('ssm'); boto3.client('bedrock-runtime')"
BARE_ONE_CLIENT = "import boto3; boto3.client('bedrock-runtime')"
HANDLER = "from lambda_src.inference import handler; handler.bedrock_client(25)"


def _run(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **ENV}, check=True)
    return time.perf_counter() - start


def cold_init(runs: int) -> dict[str, float]:
    _run(BARE), _run(BARE_ONE_CLIENT), _run(HANDLER)  # warm the OS file cache
    bare, one, ours = [], [], []
    for _ in range(runs):
        bare.append(_run(BARE))
        one.append(_run(BARE_ONE_CLIENT))
        ours.append(_run(HANDLER))
    b, b1, o = statistics.median(bare), statistics.median(one), statistics.median(ours)
    return {"bare_s": b, "bare_one_client_s": b1, "handler_s": o, "ratio": o / b, "ratio_one_client": o / b1}


def warm_overhead(requests: int) -> dict[str, float]:
    os.environ.update(ENV)
    from lambda_src.inference import handler
    from lambda_src.inference.config import ModelSettings
    from lambda_src.inference.logic import Api
    from lambda_src.inference.models import Completion, CompletionRequest

    settings = ModelSettings(provider="bedrock", model_id="anthropic.claude-3-haiku-20240307-v1:0", temperature=0.2,
                             top_p=0.9, max_output_tokens=1024, request_timeout_seconds=25, system_prompt="Be brief.",
                             upstream_base_url="https://api.openai.com/v1")  # fmt: skip

    class Config:
        def settings(self) -> ModelSettings:
            return settings

    class Model:
        def complete(self, request: CompletionRequest) -> Completion:
            return Completion(text="Paris.", finish_reason="stop", prompt_tokens=12, completion_tokens=3)

    handler.API = Api(Config(), lambda _s: Model(), max_body_bytes=262144)
    body = json.dumps({"model": settings.model_id, "messages": [{"role": "user", "content": "Capital of France?"}]})
    event: dict[str, Any] = {
        "resource": "/chat/completions", "path": "/chat/completions", "httpMethod": "POST", "headers": {},
        "body": body, "isBase64Encoded": False,
        "requestContext": {"requestId": "bench", "authorizer": {"keyId": "key_bench", "owner": "bench"}},
    }  # fmt: skip

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "bench", 512, "bench"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    context = Context()
    samples = []
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        stream = handler.LOGGER.registered_handler
        if hasattr(stream, "setStream"):
            stream.setStream(sink)
        for _ in range(200):
            handler.lambda_handler(event, context)
        for _ in range(requests):
            sink.seek(0)
            sink.truncate()
            start = time.perf_counter()
            response = handler.lambda_handler(event, context)
            samples.append((time.perf_counter() - start) * 1000)
        assert response["statusCode"] == 200, response
    samples.sort()
    return {
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[int(len(samples) * 0.99) - 1],
        "max_ms": samples[-1],
    }


def package_sizes() -> dict[str, int]:
    from constructs_lib.powertools_layer import build_layer_dir

    sizes = {}
    for name, folder, root in (
        ("inference", ROOT / "lambda_src" / "inference", ROOT / "lambda_src"),
        ("authorizer", ROOT / "lambda_src" / "authorizer", ROOT / "lambda_src"),
        ("powertools layer", build_layer_dir() / "python", build_layer_dir()),
    ):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(folder.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts:
                    archive.write(file, file.relative_to(root))
        sizes[name] = len(buffer.getvalue())
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    cold = cold_init(args.runs)
    print(f"P3 cold init ({args.runs} runs, medians): handler {cold['handler_s'] * 1000:.0f} ms; "
          f"boto3 + the same SSM and Bedrock clients {cold['bare_s'] * 1000:.0f} ms -> {cold['ratio']:.2f}x "
          f"(target <= 1.15x); boto3 + Bedrock client only {cold['bare_one_client_s'] * 1000:.0f} ms -> "
          f"{cold['ratio_one_client']:.2f}x")  # fmt: skip
    warm = warm_overhead(args.requests)
    print(f"P4 warm overhead ({args.requests} requests, model stubbed): p50 {warm['p50_ms']:.3f} ms, "
          f"p99 {warm['p99_ms']:.3f} ms, max {warm['max_ms']:.3f} ms (targets 1 ms / 5 ms)")  # fmt: skip
    for name, size in package_sizes().items():
        print(f"package {name}: {size / 1024:.1f} KiB zipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
