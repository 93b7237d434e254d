"""A local execution environment for a function whose AWS_LAMBDA_EXEC_WRAPPER starts its own Runtime API loop
(response streaming): the wrapper runs exactly as Lambda runs it, with the interpreter as its argument, against
a local Runtime API (runtime_api.py) of its own. ``invoke`` gives the function's raw output as it arrives."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from tools.local.runtime import FunctionError, relay_lines
from tools.local.runtime_api import End, Failed, Invocation, LocalRuntimeApi

TASK_ROOT = "/var/task"


class RawStream:
    """What the function sends for one invocation, chunk by chunk (its framing untouched). ``close()`` tells the
    function the caller went away. ``error_type`` is set when trailers reported an error after the first byte."""

    def __init__(self, worker: StreamingWorker, invocation: Invocation, first: bytes | End, deadline: float) -> None:
        self._worker, self._invocation, self._first, self._deadline = worker, invocation, first, deadline
        self.error_type: str | None = None
        self._done = False
        self._ended = isinstance(first, End)

    def __iter__(self) -> Iterator[bytes]:
        try:
            if isinstance(self._first, End):  # an empty response
                return
            yield self._first
            while True:
                item = self._worker.next_item(self._invocation, self._deadline)
                if isinstance(item, End):
                    self.error_type = item.trailers.get("Lambda-Runtime-Function-Error-Type")
                    self._ended = True
                    return
                if isinstance(item, Failed):
                    self.error_type = item.error_type
                    self._ended = True
                    return
                yield item
        except FunctionError as error:  # timed out or died mid-stream: the stream just ends
            self.error_type = str(error)
        finally:
            self.close()

    def close(self) -> None:
        if not self._done:
            self._done = True
            if not self._ended:  # the caller went away before the end
                self._invocation.cancel()
            self._worker.release(self._invocation)


class StreamingWorker:
    """One execution environment, one invocation at a time, stopped after its timeout and restarted after a
    crash (cold) like runtime.Worker."""

    def __init__(self, *, code_dir: str, layers: list[str], environment: dict[str, str], timeout_seconds: int,
                 log: TextIO | None = None, on_log_line: Callable[[str], None] | None = None,
                 python: str = sys.executable) -> None:  # fmt: skip
        """``on_log_line``: as runtime.Worker's, called with each line the function writes."""
        wrapper = environment["AWS_LAMBDA_EXEC_WRAPPER"]
        if not wrapper.startswith(TASK_ROOT + "/"):
            raise FunctionError(f"AWS_LAMBDA_EXEC_WRAPPER {wrapper!r} is not inside the function's code")
        self._command = [os.path.join(code_dir, wrapper.removeprefix(TASK_ROOT + "/")), python]
        self.timeout_seconds = timeout_seconds
        self._code_dir, self._layers, self._environment, self._log = code_dir, layers, environment, log
        self._on_log_line = on_log_line
        self._lock = threading.Lock()
        self._api: LocalRuntimeApi | None = None
        self._process: subprocess.Popen[str] | None = None

    def _start(self) -> None:
        self._api = LocalRuntimeApi(self._environment.get("LOCAL_LAMBDA_FUNCTION_ARN") or
                                    "arn:aws:lambda:us-east-1:123456789012:function:local")  # fmt: skip
        environment = {
            **self._environment,
            "AWS_LAMBDA_RUNTIME_API": self._api.address,
            "LAMBDA_TASK_ROOT": self._code_dir,
            # No /opt locally: each layer's python/ folder, as Lambda puts /opt/python on the path.
            "PYTHONPATH": os.pathsep.join(os.path.join(layer, "python") for layer in self._layers),
        }
        # With on_log_line, its output and errors come through one pipe, relayed line by line to the log and to it.
        relayed = self._on_log_line is not None
        logs: TextIO | int = self._log or subprocess.DEVNULL
        self._process = subprocess.Popen(  # noqa: S603 - the function's own wrapper and our interpreter
            self._command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if relayed else logs,
            stderr=subprocess.STDOUT if relayed else logs, env=environment, cwd=self._code_dir, text=True,
            errors="replace",
        )  # fmt: skip
        if self._process.stdout is not None and self._on_log_line is not None:
            relay_lines(self._process.stdout, self._log, self._on_log_line)

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        if self._api is not None:
            self._api.close()
        self._process = self._api = None

    def invoke(self, event: Any) -> RawStream:
        """The function's output for ``event`` once its first byte arrived; FunctionError if it failed before
        (its error endpoint, an init error, a crash, the timeout). Waits while another invocation runs."""
        self._lock.acquire()
        return self._invoke(event)

    def try_invoke(self, event: Any) -> RawStream | None:
        """As ``invoke``, or None at once when this environment is busy."""
        if not self._lock.acquire(blocking=False):
            return None
        return self._invoke(event)

    def _invoke(self, event: Any) -> RawStream:
        try:
            if self._process is None or self._process.poll() is not None:
                self._stop()
                self._start()
            assert self._api is not None  # noqa: S101 - started above
            invocation = self._api.submit(event, self.timeout_seconds)
            deadline = time.monotonic() + self.timeout_seconds
            first = self.next_item(invocation, deadline)
            if isinstance(first, Failed):
                raise FunctionError(f"{first.error_type}: {first.body[:500].decode(errors='replace')}")
            return RawStream(self, invocation, first, deadline)
        except BaseException:
            self._lock.release()
            raise

    def next_item(self, invocation: Invocation, deadline: float) -> bytes | End | Failed:
        while True:
            try:
                return invocation.items.get(timeout=0.05)
            except queue.Empty:
                pass
            api, process = self._api, self._process
            if api is not None and api.init_failed.is_set():
                error = api.init_error
                self._stop()
                raise FunctionError(f"{error.error_type if error else 'Runtime.Unknown'}: init failed")
            if process is None or process.poll() is not None:
                code = process.returncode if process else None
                self._stop()
                raise FunctionError(f"Runtime exited with code {code} (see its log)")
            if time.monotonic() > deadline:
                self._stop()
                raise FunctionError(f"Task timed out after {self.timeout_seconds:.2f} seconds")

    def release(self, invocation: Invocation) -> None:
        if self._api is not None:
            self._api.forget(invocation)
        self._lock.release()

    def close(self) -> None:
        self._stop()


class StreamingPool:
    """Execution environments of one function, started as concurrent invocations need them (up to ``size``, the
    function's reserved concurrency), as Lambda does: a long stream does not hold up the function's other
    requests. Each environment serves one invocation at a time."""

    def __init__(self, size: int, start: Callable[[], StreamingWorker]) -> None:
        self._size, self._start = max(1, size), start
        self._workers: list[StreamingWorker] = []
        self._lock = threading.Lock()

    def invoke(self, event: Any) -> RawStream:
        while True:
            with self._lock:
                workers = list(self._workers)
            for worker in workers:  # a warm environment that is free
                stream = worker.try_invoke(event)
                if stream is not None:
                    return stream
            with self._lock:  # none: a new (cold) one, within the function's concurrency
                fresh = self._start() if len(self._workers) < self._size else None
                if fresh is not None:
                    self._workers.append(fresh)
            stream = fresh.try_invoke(event) if fresh is not None else None
            if stream is not None:
                return stream
            time.sleep(0.01)  # every environment is busy: wait for one, as a throttled caller would

    def close(self) -> None:
        with self._lock:
            for worker in self._workers:
                worker.close()
            self._workers.clear()
