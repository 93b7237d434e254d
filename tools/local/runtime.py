"""A Lambda execution environment on the host's Python, for `make local` (no Docker).

Run as a script (it imports nothing from this project, so any venv can start it):

    python tools/local/runtime.py HANDLER CODE_DIR [LAYER_DIR ...]

It puts CODE_DIR and each layer's `python/` folder on sys.path the way Lambda does, imports HANDLER
(`module.function`) once, then answers invocations: one JSON line on stdin,
`{"event": ..., "request_id": ..., "deadline_ms": ...}`, gives one JSON line on the original stdout,
`{"result": ...}` or `{"error": {"type": ..., "message": ...}}`. Everything the function prints (its logs)
goes to stderr, so it cannot corrupt the answers. The caller sets the environment (the function's
variables, AWS_ENDPOINT_URL, credentials) exactly once, as Lambda does for one execution environment.

Environment for the context object: LOCAL_LAMBDA_FUNCTION_NAME, LOCAL_LAMBDA_FUNCTION_ARN,
LOCAL_LAMBDA_MEMORY_MB.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import itertools
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TextIO

CODE_CACHE = Path(tempfile.gettempdir()) / "llm-platform-local-code"
# The local emulator's dummy credentials (it accepts any; real ones must never reach it).
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    @classmethod
    def for_api_gateway(cls) -> LambdaContext:
        """A context for one in-process call behind API Gateway (29 s to answer)."""
        return cls(f"local-{uuid.uuid4()}", int((time.time() + 29) * 1000))

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("LOCAL_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        self.invoked_function_arn = os.environ.get(
            "LOCAL_LAMBDA_FUNCTION_ARN", f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        )
        self.memory_limit_in_mb = int(os.environ.get("LOCAL_LAMBDA_MEMORY_MB", "128"))
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _load(handler: str, code_dir: str, layers: list[str]) -> Any:
    # Lambda's order: the function's code, then each layer's python/ folder.
    sys.path[:0] = [code_dir, *(os.path.join(layer, "python") for layer in layers)]
    module_name, _, function_name = handler.rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: runtime.py HANDLER CODE_DIR [LAYER_DIR ...]", file=sys.stderr)
        return 2
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # the function's prints and logs
    os.dup2(sys.stderr.fileno(), 1)
    function = _load(argv[0], argv[1], argv[2:])
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request["request_id"], request["deadline_ms"])
        try:
            answer: dict[str, Any] = {"result": function(request["event"], context)}
        except Exception as error:
            traceback.print_exc()
            answer = {"error": {"type": type(error).__name__, "message": str(error)}}
        answers.write(json.dumps(answer, default=str) + "\n")
    return 0


def unpack(code: bytes) -> str:
    """A deployment package's contents in a folder named by its hash (each package is unpacked once)."""
    target = CODE_CACHE / hashlib.sha256(code).hexdigest()[:24]
    if not target.is_dir():
        CODE_CACHE.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=CODE_CACHE, prefix=".unpack-"))
        archive = zipfile.ZipFile(io.BytesIO(code))
        archive.extractall(staging)
        for info in archive.infolist():  # extractall drops file modes: keep the executable bit (a wrapper script)
            mode = info.external_attr >> 16
            if mode & 0o111 and not info.is_dir():
                os.chmod(staging / info.filename, 0o700)  # owner only: this user runs it
        with contextlib.suppress(OSError):  # unpacked by a concurrent invocation
            staging.rename(target)
    return str(target)


def lambda_environment(configuration: dict[str, Any], endpoint: str, region: str) -> dict[str, str]:
    """The environment Lambda gives a function (from its GetFunctionConfiguration shape), pointed at the
    emulator with its dummy credentials; nothing else from the host but PATH."""
    return {
        "PATH": os.environ.get("PATH", ""),
        **EMULATOR_CREDENTIALS,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": configuration["FunctionName"],
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration.get("MemorySize", 128)),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{configuration['FunctionName']}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "_HANDLER": configuration.get("Handler", ""),
        "LOCAL_LAMBDA_FUNCTION_NAME": configuration["FunctionName"],
        "LOCAL_LAMBDA_FUNCTION_ARN": configuration.get("FunctionArn", ""),
        "LOCAL_LAMBDA_MEMORY_MB": str(configuration.get("MemorySize", 128)),
        **(configuration.get("Environment") or {}).get("Variables", {}),
    }


_LOG_WRITES = threading.Lock()


def relay_lines(output: IO[str], log: TextIO | None, on_line: Callable[[str], None]) -> threading.Thread:
    """Copy each line a function writes (``output``, its pipe) to ``log`` as it comes and hand it to ``on_line``
    (CloudWatch Logs' part: tools/local/emf.py), on a daemon thread until the pipe closes. A failing ``on_line``
    loses only its line: the pipe is always drained, so the function never blocks on its own logs."""

    def relay() -> None:
        with output:
            for line in output:
                if log is not None:
                    with _LOG_WRITES:
                        log.write(line)
                        log.flush()
                with contextlib.suppress(Exception):  # the forwarder logs its own failures; the relay goes on
                    on_line(line)

    thread = threading.Thread(target=relay, daemon=True, name="function-log")
    thread.start()
    return thread


class FunctionError(Exception):
    """The function raised: Lambda's "Unhandled" error. ``error_type`` and ``message`` are what Lambda reports
    as errorType and errorMessage (Step Functions matches its Retry and Catch on errorType)."""

    def __init__(self, text: str, error_type: str = "Runtime.Unknown", message: str | None = None) -> None:
        super().__init__(text)
        self.error_type, self.message = error_type, text if message is None else message


class Worker:
    """One execution environment for one function: a process running this file, one call at a time.

    Like Lambda, it stays warm between calls, is stopped when a call runs past the function's timeout
    ("Task timed out after N seconds"), and a fresh one starts (cold) on the next call after that or after a
    crash.
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        *,
        handler: str,
        code_dir: str,
        layers: list[str],
        environment: dict[str, str],
        timeout_seconds: int,
        log: TextIO | None = None,
        on_log_line: Callable[[str], None] | None = None,
        python: str = sys.executable,
    ) -> None:
        """``on_log_line``: called with each line the function writes (then the lines pass through this process
        on their way to ``log``)."""
        self.timeout_seconds = timeout_seconds
        self._command = [python, os.path.abspath(__file__), handler, code_dir, *layers]
        self._environment = environment
        self._log = log
        self._on_log_line = on_log_line
        self._lock = threading.Lock()
        self._process = self._start()

    def _start(self) -> subprocess.Popen[str]:
        logs: TextIO | int = self._log if self._log is not None else subprocess.DEVNULL
        process = subprocess.Popen(  # noqa: S603 - our own script with the function's own arguments
            self._command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if self._on_log_line is not None else logs,
            env=self._environment,
            text=True,
            errors="replace",
        )
        if process.stderr is not None and self._on_log_line is not None:
            relay_lines(process.stderr, self._log, self._on_log_line)
        return process

    def invoke(self, event: Any) -> Any:
        """The function's return value; FunctionError if it raised, timed out or its runtime died."""
        request_id = f"local-{next(self._ids):08d}"
        deadline = time.time() + self.timeout_seconds
        with self._lock:
            if self._process.poll() is not None:
                self._process = self._start()
            stdin, stdout = self._process.stdin, self._process.stdout
            if stdin is None or stdout is None:
                raise FunctionError("Runtime has no pipes", "Runtime.ExitError")
            stdin.write(json.dumps({"event": event, "request_id": request_id, "deadline_ms": int(deadline * 1000)}))
            stdin.write("\n")
            stdin.flush()
            # One answer line per request, so nothing is buffered ahead of it: select on the pipe is exact.
            ready, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.time()))
            if not ready:
                self._process.kill()
                self._process.wait()
                raise FunctionError(f"Task timed out after {self.timeout_seconds:.2f} seconds", "Sandbox.Timedout")
            line = stdout.readline()
        if not line:
            raise FunctionError(f"Runtime exited with code {self._process.wait()} (see its log)", "Runtime.ExitError")
        answer = json.loads(line)
        if "error" in answer:
            error = answer["error"]
            raise FunctionError(f"{error['type']}: {error['message']}", error["type"], error["message"])
        return answer["result"]

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
