"""A local Lambda Runtime API (loopback only) for one execution environment, following the documented protocol
(lambda/latest/dg/runtimes-api.html; response streaming: runtimes-custom.html#runtimes-custom-response-streaming):

- ``GET /2018-06-01/runtime/invocation/next`` long-polls for the next invocation (request id, deadline, ARN and
  trace headers, the event as the body);
- ``POST /invocation/{id}/response``: buffered (Content-Length) or streamed (``Transfer-Encoding: chunked`` with
  ``Lambda-Runtime-Function-Response-Mode: streaming``; trailers carry an error after the first byte). Each
  chunk is handed on as it arrives, so the local gateway relays it at once;
- ``POST /invocation/{id}/error`` and ``POST /init/error``.

When the caller goes away, ``Invocation.cancel()`` shuts the function's response connection down: its next send
fails, as it does when Lambda can no longer deliver a stream.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

BASE = "/2018-06-01/runtime"
MAX_CHUNK_LINE = 1024


class End(NamedTuple):
    """The response ended; ``trailers`` as sent (an error after the first byte names itself there)."""

    trailers: dict[str, str]


class Failed(NamedTuple):
    """``/invocation/{id}/error``: the function failed before its first byte."""

    error_type: str
    body: bytes


class Invocation:
    """One invocation: what the function sent, as it arrives (``items``: bytes chunks, then End or Failed)."""

    def __init__(self, request_id: str, event: Any, deadline_ms: int) -> None:
        self.request_id = request_id
        self.event = event
        self.deadline_ms = deadline_ms
        self.items: queue.Queue[bytes | End | Failed] = queue.Queue()
        self.request_headers: dict[str, str] = {}  # of the /response POST
        self.cancelled = threading.Event()
        self._connection: socket.socket | None = None
        self._lock = threading.Lock()

    def attach(self, connection: socket.socket) -> None:
        with self._lock:
            self._connection = connection
            if self.cancelled.is_set():
                _shutdown(connection)

    def cancel(self) -> None:
        """The caller went away: close the function's response connection (its next send fails)."""
        with self._lock:
            self.cancelled.set()
            if self._connection is not None:
                _shutdown(self._connection)


def _shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class LocalRuntimeApi:
    """The Runtime API one local execution environment talks to (``address`` for AWS_LAMBDA_RUNTIME_API)."""

    _ids = itertools.count(1)

    def __init__(self, function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local") -> None:
        self.function_arn = function_arn
        self._pending: queue.Queue[Invocation | None] = queue.Queue()
        self._invocations: dict[str, Invocation] = {}
        self.init_error: Failed | None = None
        self.init_failed = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != f"{BASE}/invocation/next":
                    self._answer(404, b'{"errorType": "InvalidRequest"}')
                    return
                invocation = api._pending.get()
                if invocation is None:  # shutting down
                    self.close_connection = True
                    return
                body = json.dumps(invocation.event).encode()
                self.send_response(200)
                trace = f"Root=1-{int(time.time()):08x}-{invocation.request_id}"
                for name, value in (("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
                                    ("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms)),
                                    ("Lambda-Runtime-Invoked-Function-Arn", api.function_arn),
                                    ("Lambda-Runtime-Trace-Id", trace), ("Content-Type", "application/json"),
                                    ("Content-Length", str(len(body)))):  # fmt: skip
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                path = self.path.removeprefix(BASE)
                if path == "/init/error":
                    api.init_error = Failed(self.headers.get("Lambda-Runtime-Function-Error-Type", ""), self._body())
                    api.init_failed.set()
                    self._answer(202, b'{"status": "OK"}')
                    return
                parts = path.strip("/").split("/")
                invocation = api._invocations.get(parts[1]) if len(parts) == 3 and parts[0] == "invocation" else None
                if invocation is None or parts[2] not in ("response", "error"):
                    self._answer(404, b'{"errorType": "InvalidRequestID"}')
                    return
                if parts[2] == "error":
                    error_type = self.headers.get("Lambda-Runtime-Function-Error-Type", "")
                    invocation.items.put(Failed(error_type, self._body()))
                    self._answer(202, b'{"status": "OK"}')
                    return
                invocation.request_headers = dict(self.headers.items())
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    invocation.attach(self.connection)
                    trailers = self._relay_chunks(invocation)
                    if trailers is None:  # the connection went down mid-stream (cancelled)
                        self.close_connection = True
                        invocation.items.put(End({}))
                        return
                    invocation.items.put(End(trailers))
                else:
                    invocation.items.put(self._body())
                    invocation.items.put(End({}))
                self._answer(202, b'{"status": "OK"}')

            def _relay_chunks(self, invocation: Invocation) -> dict[str, str] | None:
                try:
                    while True:
                        line = self.rfile.readline(MAX_CHUNK_LINE)
                        if not line.endswith(b"\r\n"):
                            return None
                        size = int(line.split(b";", 1)[0], 16)
                        if size == 0:
                            return self._trailers()
                        data = self.rfile.read(size)
                        if len(data) < size or self.rfile.read(2) != b"\r\n":
                            return None
                        if invocation.cancelled.is_set():
                            return None
                        invocation.items.put(data)
                except (OSError, ValueError):
                    return None

            def _trailers(self) -> dict[str, str]:
                trailers: dict[str, str] = {}
                while True:
                    line = self.rfile.readline(65_536)
                    if line in (b"\r\n", b"\n", b""):
                        return trailers
                    name, _, value = line.decode("latin-1").partition(":")
                    trailers[name.strip()] = value.strip()

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _answer(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the function's connection is gone (a cancelled stream)
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def submit(self, event: Any, timeout_seconds: float) -> Invocation:
        """Queue an invocation for the function's next ``/invocation/next``."""
        request_id = f"local-{next(self._ids):08d}"
        invocation = Invocation(request_id, event, int((time.time() + timeout_seconds) * 1000))
        self._invocations[request_id] = invocation
        self._pending.put(invocation)
        return invocation

    def forget(self, invocation: Invocation) -> None:
        self._invocations.pop(invocation.request_id, None)

    def close(self) -> None:
        self._pending.put(None)
        self.server.shutdown()
        self.server.server_close()
