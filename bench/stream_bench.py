"""Streaming relay benchmark: how long one chunk takes from the function to the client on `make local`'s path.

    .venv/bin/python bench/stream_bench.py [--chunks 500]

A handler module (in a temporary task root beside the project's lambda_src) returns a StreamingResponse whose
body yields a line holding the time it was yielded (time.time_ns), one every 5 ms (a token cadence faster than
any model here). It runs under the project's Runtime API loop, started by its wrapper against the local Runtime
API (tools/local/streaming_worker.py), behind the local gateway (STREAM route, chunked relay); the client reads
each line as it arrives over HTTP and subtracts. p50 / p99 of that one-way delay is the per-chunk relay
overhead (function -> local Runtime API -> gateway -> client). Target p50 <= 1 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.local.gateway import LocalGateway  # noqa: E402 - after the path set-up
from tools.local.streaming_worker import StreamingWorker  # noqa: E402

HANDLER = """
import json, time
from lambda_src.shared.runtime.response import StreamingResponse


def handler(event, context):
    count = json.loads(event["body"])["chunks"]

    def body():
        for _ in range(count):
            yield b"%020d\\n" % time.time_ns()
            time.sleep(0.005)

    return StreamingResponse(200, {"Content-Type": "text/plain"}, body())
"""


def allow(_event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return {"principalId": "bench", "policyDocument": {"Statement": [{"Effect": "Allow"}]},
            "context": {"keyId": "key_bench", "owner": "bench"}}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "lambda_src").symlink_to(ROOT / "lambda_src")
        (root / "bench_handler.py").write_text(HANDLER)
        environment = {"PATH": os.environ.get("PATH", ""), "_HANDLER": "bench_handler.handler",
                       "AWS_LAMBDA_EXEC_WRAPPER": "/var/task/lambda_src/shared/runtime/wrapper"}  # fmt: skip
        worker = StreamingWorker(code_dir=str(root), layers=[], environment=environment, timeout_seconds=120)
        gateway = LocalGateway(lambda _e, _c: {}, allow, stream_handler=lambda event, _c: worker.invoke(event),
                               streaming_routes=frozenset({"/chat/completions"})).start()  # fmt: skip
        try:
            host, port = gateway.server.server_address[:2]
            delays: list[float] = []
            for run in range(2):  # the first run warms the environment (cold start) and is not counted
                connection = http.client.HTTPConnection(str(host), int(port), timeout=60)
                connection.request("POST", "/v1/chat/completions", body=json.dumps({"chunks": args.chunks}),
                                   headers={"Authorization": "Bearer bench"})  # fmt: skip
                response = connection.getresponse()
                while line := response.readline():
                    if run:
                        delays.append((time.time_ns() - int(line)) / 1e6)
                connection.close()
        finally:
            gateway.stop()
            worker.close()
    delays.sort()
    print(f"per-chunk relay, function -> local Runtime API -> gateway -> client, {len(delays)} chunks: "
          f"p50 {statistics.median(delays):.3f} ms, p99 {delays[int(len(delays) * 0.99) - 1]:.3f} ms "
          "(target p50 <= 1 ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
