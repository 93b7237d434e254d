"""API benchmarks (issue 4): cold init, warm per-request overhead, deployment package size.

    .venv/bin/python bench/api_bench.py [--runs 15] [--requests 10000]

- Cold init: a fresh interpreter importing the inference handler and creating its clients, against a fresh
  interpreter doing only `import boto3` + the same clients; interleaved runs, medians; and the same in
  instructions with valgrind where it is installed (repeatable). Target <= 1.15x.
- Warm overhead: lambda_handler in-process with the model, the configuration and DynamoDB stubbed (no network),
  so the figure is routing, validation, JSON, the budget's reservation and settlement, Powertools logging and
  metrics, plus the framing the Runtime API loop adds (prelude, delimiter); for a buffered answer and for a
  streamed one (its SSE body drained, three model events). Target p50 <= 1 ms, p99 <= 5 ms.
- Tracing (issue 18): the cold init in instructions with the X-Ray hooks (lambda_src/shared/tracing.py) on and off,
  and with aws-xray-sdk's ``patch(["botocore"])`` instead (with its bytecode, and as a layer would ship it: source
  only); the cost per AWS call of the hooks (off, on but not sampled, sampled), botocore's Stubber answering.
- Package: zipped size of each function's own code, and of the Powertools layer built at synth.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import importlib.util
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambda_src.contracts import parameters  # noqa: E402 - after the path set-up
from lambda_src.contracts.environment import InferenceEnvironment  # noqa: E402

ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "llm-inference",
    # What the stack gives the deployed function: with an audit stream the handler makes a Firehose client too.
    **InferenceEnvironment(
        model_parameter_path=parameters.parameter_name("dev", parameters.MODEL_PATH),
        upstream_api_key_parameter=parameters.parameter_name("dev", parameters.UPSTREAM_API_KEY),
        config_cache_seconds=60,
        max_body_bytes=262_144,
        cors_allowed_origins=(),
        audit_stream_name="llm-platform-dev-audit-stream",
        audit_mode="best_effort",
        audit_content="full",
        stage="dev",
        stream_timeout_seconds=300,
        usage_table_name="llm-platform-dev-api-usage",
        plan_budgets=json.dumps({"standard": {"tokens_per_minute": 20_000, "tokens_per_day": 200_000}}),
    ).variables(),
    # What Lambda sets for a function with active tracing: the X-Ray daemon's address (the hooks register), and the
    # task root (aws-xray-sdk's Lambda mode keys on it).
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
    "LAMBDA_TASK_ROOT": str(ROOT),
}
# The same function with tracing off: no daemon address, so no hooks (the module is still compiled).
UNTRACED: dict[str, str | None] = {"AWS_XRAY_DAEMON_ADDRESS": None}
# The fair baseline makes the same clients as the handler (SSM for its configuration, Bedrock for the model,
# Firehose for the audit log, DynamoDB for the budgets), so the ratio is what the project's code and Powertools add.
# Without an audit stream (the figure measured before the audit log existed) both make one client fewer.
BARE = ("import boto3; boto3.client('ssm'); boto3.client('bedrock-runtime'); boto3.client('firehose'); "
        "boto3.client('dynamodb')")  # fmt: skip
BARE_NO_AUDIT = "import boto3; boto3.client('ssm'); boto3.client('bedrock-runtime'); boto3.client('dynamodb')"
HANDLER = "from lambda_src.inference import handler; handler.bedrock_client(25)"
# As deployed with streaming on: the wrapper runs the project's Runtime API loop, which imports the handler.
HANDLER_LOOP = "import lambda_src.shared.runtime.loop; " + HANDLER
# The alternative: aws-xray-sdk patching botocore (what Powertools' Tracer(patch_modules=["botocore"]) does), the
# project's own hooks off. Imported before the handler, as a Tracer would be.
HANDLER_SDK = "from aws_xray_sdk.core import patch; patch(['botocore']); " + HANDLER


def _run(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True)
    return time.perf_counter() - start


def cold_init(runs: int) -> dict[str, float]:
    no_audit = {**ENV, "AUDIT_STREAM_NAME": ""}
    cases = {"bare": (BARE, ENV), "handler": (HANDLER, ENV), "bare_no_audit": (BARE_NO_AUDIT, no_audit),
             "handler_no_audit": (HANDLER, no_audit)}  # fmt: skip
    for code, env in cases.values():  # warm the OS file cache
        _run(code, env)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (code, env) in cases.items():
            samples[name].append(_run(code, env))
    medians = {f"{name}_s": statistics.median(values) for name, values in samples.items()}
    medians["ratio"] = medians["handler_s"] / medians["bare_s"]
    medians["ratio_no_audit"] = medians["handler_no_audit_s"] / medians["bare_no_audit_s"]
    return medians


def cold_init_instructions() -> dict[str, float] | None:
    """The same comparison in instructions (valgrind callgrind): repeatable where wall time swings with the
    machine's load. Python compiles the project's source at each cold start (Lambda ships no bytecode), so
    that is measured too. None when valgrind is not installed."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None

    def instructions(code: str, changes: dict[str, str | None] | None = None) -> int:
        env = {**os.environ, **ENV, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        for name, value in (changes or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        result = subprocess.run(
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        found = re.search(r"Collected : (\d+)", result.stderr)
        if found is None:
            raise RuntimeError(result.stderr[-500:])
        return int(found.group(1))

    cases: dict[str, tuple[str, dict[str, str | None] | None]] = {
        "bare": (BARE, None), "handler": (HANDLER, None), "loop": (HANDLER_LOOP, None),
        "untraced": (HANDLER, UNTRACED),
    }  # fmt: skip
    if importlib.util.find_spec("aws_xray_sdk") is not None:
        from constructs_lib.foundation.package_layer import build_layer_dir

        # As a layer would ship it: source only (Lambda compiles it at each cold start), wrapt without its C part.
        shipped = build_layer_dir(("aws_xray_sdk", "wrapt"), "xray-sdk-bench") / "python"
        cases["sdk"] = (HANDLER_SDK, UNTRACED)
        cases["sdk_source"] = (HANDLER_SDK, {**UNTRACED, "PYTHONPATH": str(shipped)})
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {name: pool.submit(instructions, *case) for name, case in cases.items()}
        counted: dict[str, float] = {name: future.result() for name, future in futures.items()}
    for name in list(counted):
        counted[f"{name}_ratio"] = counted[name] / counted["bare"]
    counted["ratio"] = counted["handler_ratio"]
    return counted


def trace_overhead(calls: int) -> dict[str, float]:
    """Per AWS call, in microseconds (medians of interleaved rounds): an SSM GetParameter answered by botocore's
    Stubber through a client without the hooks, with them in an invocation not sampled, and sampled (a subsegment
    sent over UDP to a socket on 127.0.0.1 standing in for the daemon)."""
    import socket

    import boto3
    from botocore.stub import Stubber

    from lambda_src.shared import tracing

    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    os.environ[tracing.DAEMON_ENV] = f"127.0.0.1:{daemon.getsockname()[1]}"
    traced = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled="
    clients = {}
    for name in ("off", "unsampled", "sampled"):
        session = boto3.Session(region_name="us-east-1", aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        if name != "off":
            tracing.instrument(session)
        clients[name] = session.client("ssm")
    headers = {"off": traced + "1", "unsampled": traced + "0", "sampled": traced + "1"}
    samples: dict[str, list[float]] = {name: [] for name in clients}
    rounds, per_round = 20, max(1, calls // 20)
    for _ in range(rounds):
        for name, client in clients.items():
            os.environ[tracing.TRACE_ENV] = headers[name]
            with Stubber(client) as stub:
                for _ in range(per_round):
                    stub.add_response("get_parameter", {"Parameter": {"Name": "p", "Value": "v"}})
                start = time.perf_counter()
                for _ in range(per_round):
                    client.get_parameter(Name="p")
                samples[name].append((time.perf_counter() - start) / per_round * 1e6)
            if name == "sampled":
                daemon.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    while daemon.recv(65536):
                        pass
    daemon.close()
    for name in (tracing.DAEMON_ENV, tracing.TRACE_ENV):
        os.environ.pop(name, None)
    medians = {f"{name}_us": statistics.median(values) for name, values in samples.items()}
    return medians


def warm_overhead(requests: int, *, streamed: bool = False) -> dict[str, float]:
    os.environ.update(ENV)
    from bench.budget_bench import Counting
    from lambda_src.contracts import spend
    from lambda_src.inference import handler
    from lambda_src.inference.logic import Api
    from lambda_src.shared.budget import Budget
    from lambda_src.shared.config_source import ModelSettings
    from lambda_src.shared.models import Completion, CompletionRequest, Finish, StreamEvent, TextDelta, Usage
    from lambda_src.shared.runtime.response import StreamingResponse, frame
    from lambda_src.shared.spend import SpendControl

    settings = ModelSettings(provider="bedrock", model_id="anthropic.claude-3-haiku-20240307-v1:0", temperature=0.2,
                             top_p=0.9, max_output_tokens=1024, request_timeout_seconds=25, system_prompt="Be brief.",
                             upstream_base_url="https://api.openai.com/v1",
                             prices={"anthropic.claude-3-haiku-20240307-v1:0": spend.Price(0.25, 1.25)})  # fmt: skip

    class Config:
        def settings(self) -> ModelSettings:
            return settings

    class Stream:
        def __iter__(self) -> Any:
            events: list[StreamEvent] = [TextDelta("Paris."), Finish("stop"), Usage(12, 3)]
            return iter(events)

        def close(self) -> None:
            pass

    class Model:
        def complete(self, request: CompletionRequest) -> Completion:
            return Completion(text="Paris.", finish_reason="stop", prompt_tokens=12, completion_tokens=3)

        def stream(self, request: CompletionRequest) -> Stream:
            return Stream()

    dynamodb = Counting()  # the usage table answering at once
    limits = spend.Limits(tokens_per_minute=10**9, tokens_per_day=10**12)
    budgets = SpendControl(Budget(dynamodb, "usage"), plans={"standard": limits})
    handler.API = Api(Config(), lambda _s: Model(), max_body_bytes=262144, stream_seconds=300, spend=budgets)
    body = json.dumps({"model": settings.model_id, "messages": [{"role": "user", "content": "Capital of France?"}],
                       "stream": streamed})  # fmt: skip
    event: dict[str, Any] = {
        "resource": "/chat/completions", "path": "/chat/completions", "httpMethod": "POST", "headers": {},
        "body": body, "isBase64Encoded": False,
        "requestContext": {"requestId": "bench",
                           "authorizer": {"keyId": "key_bench", "owner": "bench", "plan": "standard"}},
    }  # fmt: skip

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "bench", 512, "bench"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    context = Context()

    def once() -> int:
        """One request as the Runtime API loop sends it: framed; a stream's body drained chunk by chunk."""
        response = handler.lambda_handler(event, context)
        if isinstance(response, StreamingResponse):
            return len(response.prelude()) + sum(len(chunk) for chunk in response.body)
        return len(frame(response))

    samples = []
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        stream = handler.LOGGER.registered_handler
        if hasattr(stream, "setStream"):
            stream.setStream(sink)
        for _ in range(200):
            once()
        for _ in range(requests):
            sink.seek(0)
            sink.truncate()
            start = time.perf_counter()
            sent = once()
            samples.append((time.perf_counter() - start) * 1000)
        assert sent > 100, sent
    assert dynamodb.calls == 2 * (200 + requests), dynamodb.calls  # two DynamoDB calls per request
    samples.sort()
    return {
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[int(len(samples) * 0.99) - 1],
        "max_ms": samples[-1],
    }


def package_sizes() -> dict[str, int]:
    from constructs_lib.foundation.package_layer import build_layer_dir
    from constructs_lib.foundation.python_function import SHARED_PACKAGES

    sizes = {}
    for name, folders, root in (
        ("inference (with shared/ and contracts/)", [f"lambda_src/{p}" for p in ("inference", *SHARED_PACKAGES)], ROOT),
        (
            "authorizer (with shared/ and contracts/)",
            [f"lambda_src/{p}" for p in ("authorizer", *SHARED_PACKAGES)],
            ROOT,
        ),
        ("powertools layer", ["python"], build_layer_dir()),
    ):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for folder in folders:
                for file in sorted((root / folder).rglob("*")):
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
          f"boto3 + the same SSM, Bedrock and Firehose clients {cold['bare_s'] * 1000:.0f} ms -> "
          f"{cold['ratio']:.2f}x (target <= 1.15x); without an audit stream {cold['handler_no_audit_s'] * 1000:.0f} "
          f"ms vs boto3 + SSM and Bedrock clients {cold['bare_no_audit_s'] * 1000:.0f} ms -> "
          f"{cold['ratio_no_audit']:.2f}x")  # fmt: skip
    counted = cold_init_instructions()
    if counted is not None:
        print(f"P3 cold init in instructions (callgrind, deployed environment): handler "
              f"{counted['handler'] / 1e6:.0f}M; boto3 + the same clients {counted['bare'] / 1e6:.0f}M -> "
              f"{counted['ratio']:.3f}x (target <= 1.15x); with the Runtime API loop (streaming on) "
              f"{counted['loop'] / 1e6:.0f}M -> {counted['loop_ratio']:.3f}x")  # fmt: skip
    if counted is not None and "sdk" in counted:
        untraced = counted["untraced"]
        print(f"Tracing, cold init in instructions: the handler without the hooks {untraced / 1e6:.0f}M "
              f"({counted['untraced_ratio']:.3f}x), with them {counted['handler'] / 1e6:.0f}M "
              f"(+{(counted['handler'] - untraced) / 1e6:.1f}M to register them; both compile the module); "
              f"with aws-xray-sdk's patch(['botocore']) instead "
              f"{counted['sdk'] / 1e6:.0f}M (+{(counted['sdk'] - untraced) / 1e6:.0f}M, {counted['sdk_ratio']:.3f}x), "
              f"the SDK as a layer ships it (source) {counted['sdk_source'] / 1e6:.0f}M "
              f"(+{(counted['sdk_source'] - untraced) / 1e6:.0f}M, {counted['sdk_source_ratio']:.3f}x)")  # fmt: skip
    traced = trace_overhead(args.requests)
    print(f"Tracing, per AWS call (Stubber, medians): no hooks {traced['off_us']:.1f} us; hooks, not sampled "
          f"{traced['unsampled_us']:.1f} us (+{traced['unsampled_us'] - traced['off_us']:.1f}); sampled, subsegment "
          f"sent {traced['sampled_us']:.1f} us (+{traced['sampled_us'] - traced['off_us']:.1f})")  # fmt: skip
    for streamed in (False, True):
        warm = warm_overhead(args.requests, streamed=streamed)
        print(f"P4 warm overhead, {'streamed' if streamed else 'buffered'} ({args.requests} requests, model "
              f"stubbed, framed): p50 {warm['p50_ms']:.3f} ms, p99 {warm['p99_ms']:.3f} ms, max "
              f"{warm['max_ms']:.3f} ms (targets 1 ms / 5 ms)")  # fmt: skip
    for name, size in package_sizes().items():
        print(f"package {name}: {size / 1024:.1f} KiB zipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
