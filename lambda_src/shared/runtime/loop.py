"""The project's own Lambda Runtime API loop, standard library only: response streaming for Python.

Started by ``wrapper`` (AWS_LAMBDA_EXEC_WRAPPER) in place of the managed runtime's loop, on the same interpreter
(docs: lambda/latest/dg/runtimes-api.html, runtimes-custom.html#runtimes-custom-response-streaming). It imports
the handler ``_HANDLER`` names once (a failure is reported to ``/init/error`` and the process exits), then for
each invocation from ``/invocation/next`` calls ``handler(event, context)`` and sends what it returns as a
framed HTTP integration response (response.py) in a chunked, streaming ``/response`` POST: a proxy response
dict whole, a StreamingResponse chunk by chunk as its body yields them. An error before the first byte goes to
``/invocation/{id}/error`` (the caller sees the gateway's 502, never a trace); an error after it goes to the
trailers declared up front. When a chunk can no longer be sent (the caller went away), the body is closed, so
the handler's generator stops its model call, and the loop serves the next invocation.
"""

from __future__ import annotations

import base64
import http.client
import importlib
import json
import os
import select
import site
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from lambda_src.shared.runtime.response import CONTENT_TYPE, StreamingResponse, frame

BASE = "/2018-06-01/runtime"
ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY = "Lambda-Runtime-Function-Error-Body"


class DisconnectedError(Exception):
    """The response can no longer be sent: the Runtime API closed or answered the stream early."""


class Context:
    """The attributes of the managed runtime's context object that handlers and Powertools read."""

    __slots__ = ("_deadline_ms", "aws_request_id", "client_context", "function_name", "function_version", "identity",
                 "invoked_function_arn", "log_group_name", "log_stream_name", "memory_limit_in_mb")  # fmt: skip

    def __init__(self, request_id: str, headers: http.client.HTTPMessage) -> None:
        env = os.environ
        self.aws_request_id = request_id
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.client_context = _json_header(headers, "Lambda-Runtime-Client-Context")
        self.identity = _json_header(headers, "Lambda-Runtime-Cognito-Identity")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0") or 0)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _json_header(headers: http.client.HTTPMessage, name: str) -> Any:
    raw = headers.get(name)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def error_body(error: BaseException, error_type: str | None = None) -> bytes:
    """The error document the managed runtime sends: message, type and the formatted frames (Lambda's record
    of the failure, never the HTTP caller's)."""
    stack = traceback.format_list(traceback.extract_tb(error.__traceback__))
    return json.dumps({"errorMessage": str(error), "errorType": error_type or type(error).__name__, "requestId": "",
                       "stackTrace": stack}).encode()  # fmt: skip


class RuntimeApi:
    """A client of the Runtime API at ``address`` (host:port, AWS_LAMBDA_RUNTIME_API)."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._host, self._port = host, int(port)

    def _connect(self, timeout: float | None = None) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        connection.connect()
        if connection.sock is not None:  # every chunk leaves at once
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def next(self) -> tuple[str, http.client.HTTPMessage, bytes]:
        connection = self._connect()  # no timeout: /next blocks until an invocation comes
        try:
            connection.request("GET", f"{BASE}/invocation/next")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"/invocation/next answered {response.status}")
            return response.headers.get("Lambda-Runtime-Aws-Request-Id", ""), response.headers, body
        finally:
            connection.close()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        connection = self._connect(timeout=30)
        try:
            connection.request("POST", f"{BASE}{path}", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def init_error(self, kind: str, error: BaseException) -> int:
        return self.post("/init/error", error_body(error, kind), {ERROR_TYPE: kind, "Content-Type": "application/json"})

    def invocation_error(self, request_id: str, error: BaseException) -> int:
        return self.post(f"/invocation/{request_id}/error", error_body(error),
                         {ERROR_TYPE: type(error).__name__, "Content-Type": "application/json"})  # fmt: skip

    def stream(self, request_id: str) -> StreamWriter:
        return StreamWriter(self._connect(timeout=30), f"{BASE}/invocation/{request_id}/response")


class StreamWriter:
    """One chunked, streaming response POST: ``send`` a chunk at a time, then ``finish`` (with trailers after an
    error). Raises DisconnectedError when the other end has gone."""

    def __init__(self, connection: http.client.HTTPConnection, path: str) -> None:
        self._connection = connection
        connection.putrequest("POST", path, skip_accept_encoding=True)
        for name, value in (("Lambda-Runtime-Function-Response-Mode", "streaming"), ("Transfer-Encoding", "chunked"),
                            ("Content-Type", CONTENT_TYPE), ("Trailer", f"{ERROR_TYPE}, {ERROR_BODY}")):  # fmt: skip
            connection.putheader(name, value)
        connection.endheaders()

    def _write(self, data: bytes) -> None:
        sock = self._connection.sock
        # Anything to read before the end (an early answer or the connection closed) means nobody reads on.
        if sock is None or select.select([sock], [], [], 0)[0]:
            raise DisconnectedError("the response stream was closed by the other end")
        try:
            self._connection.send(data)
        except OSError as error:
            raise DisconnectedError(str(error)) from None

    def send(self, chunk: bytes) -> None:
        if chunk:
            self._write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def finish(self, error: BaseException | None = None) -> int:
        trailers = b""
        if error is not None:
            trailers = (f"{ERROR_TYPE}: {type(error).__name__}\r\n".encode()
                        + f"{ERROR_BODY}: ".encode() + base64.b64encode(error_body(error)) + b"\r\n")  # fmt: skip
        try:
            self._write(b"0\r\n" + trailers + b"\r\n")
            response = self._connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException) as failure:
            raise DisconnectedError(str(failure)) from None
        finally:
            self._connection.close()

    def abort(self) -> None:
        self._connection.close()


def invoke(api: RuntimeApi, handler: Callable[[Any, Any], Any], log: Callable[[str], None]) -> None:
    """One invocation: fetch it, run the handler, send its answer (or its error) back."""
    request_id, headers, payload = api.next()
    trace = headers.get("Lambda-Runtime-Trace-Id")
    if trace:
        os.environ["_X_AMZN_TRACE_ID"] = trace
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    body: StreamingResponse | None = None
    rest: Iterator[bytes] = iter(())
    try:
        result = handler(json.loads(payload), Context(request_id, headers))
        if isinstance(result, StreamingResponse):
            # The prelude leaves with the body's first piece: a body that fails at its first step is still an
            # error before the first byte (the gateway's 502), as in Lambda's own streaming runtimes.
            body, rest = result, result.chunks()
            first = next(rest)
        elif isinstance(result, dict):
            first = frame(result)
        else:
            raise TypeError(f"The handler returned {type(result).__name__}, not a proxy response or a stream.")
    except Exception as error:
        if body is not None:
            body.close()
        log(f"invocation {request_id} failed before its first byte:\n{traceback.format_exc()}")
        api.invocation_error(request_id, error)
        return
    _send(api.stream(request_id), request_id, first, (body, rest) if body is not None else None, log)


def _send(writer: StreamWriter, request_id: str, first: bytes,
          stream: tuple[StreamingResponse, Iterator[bytes]] | None, log: Callable[[str], None]) -> None:  # fmt: skip
    try:
        writer.send(first)
        if stream is not None:
            try:
                for chunk in stream[1]:
                    writer.send(chunk)
            except DisconnectedError:
                raise
            except Exception as error:  # the body failed after the first byte: the trailers say so
                log(f"invocation {request_id} failed mid-stream:\n{traceback.format_exc()}")
                writer.finish(error)
                return
        writer.finish()
    except DisconnectedError as gone:
        writer.abort()
        if stream is not None:
            stream[0].close()  # GeneratorExit in the handler's generator: it stops the model call
        log(f"invocation {request_id}: the response could not be sent on ({gone}); stopped")


def _load_handler(api: RuntimeApi) -> Callable[[Any, Any], Any]:
    name = os.environ.get("_HANDLER", "")
    module_name, _, function_name = name.rpartition(".")
    try:
        if not module_name or not function_name:
            raise ValueError(f"Bad handler {name!r}: use module.function")
    except ValueError as error:
        api.init_error("Runtime.MalformedHandlerName", error)
        raise
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        api.init_error("Runtime.ImportModuleError", error)
        raise
    handler: Callable[[Any, Any], Any] | None = getattr(module, function_name, None)
    if not callable(handler):
        missing = AttributeError(f"Handler {function_name!r} missing on module {module_name!r}")
        api.init_error("Runtime.HandlerNotFound", missing)
        raise missing
    return handler


def _layer_paths() -> list[str]:
    """Lambda layers' Python folders, after the function's own code, as the managed runtime orders them."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = (f"/opt/python/lib/{version}/site-packages", "/opt/python")
    return [path for path in candidates if os.path.isdir(path) and path not in sys.path]


def main() -> int:
    for stream in (sys.stdout, sys.stderr):  # Lambda reads the process's output line by line
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    # Lambda's order: the function's code, then the layers (before the runtime's own site-packages).
    root = os.environ.get("LAMBDA_TASK_ROOT", "")
    at = sys.path.index(root) + 1 if root in sys.path else len(sys.path)
    layers = _layer_paths()
    sys.path[at:at] = layers
    for path in layers:  # their .pth files, as site-packages folders
        site.addsitedir(path)

    def log(message: str) -> None:
        print(f"[runtime-loop] {message}", file=sys.stderr)

    api = RuntimeApi(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        handler = _load_handler(api)
    except Exception:
        log(f"init failed:\n{traceback.format_exc()}")
        return 1
    while True:
        invoke(api, handler, log)


if __name__ == "__main__":
    sys.exit(main())
