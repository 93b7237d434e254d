"""The project's Runtime API loop (lambda_src/shared/runtime) started by its wrapper exactly as Lambda starts it,
against the local Runtime API (tools/local/runtime_api.py), and the local gateway relaying its streams: the
contract of Lambda response streaming (framing, prelude limit, error endpoint, trailers, init errors,
disconnects) and API Gateway's STREAM reading (a badly framed answer is a 500)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lambda_src.shared.runtime.response import DELIMITER
from tools.local.gateway import LocalGateway
from tools.local.runtime import FunctionError
from tools.local.runtime_api import End
from tools.local.streaming_worker import StreamingPool, StreamingWorker

ROOT = Path(__file__).resolve().parents[1]
WRAPPER = "/var/task/lambda_src/shared/runtime/wrapper"
HANDLERS = """
import json, os, time
from pathlib import Path
from lambda_src.shared.runtime.response import StreamingResponse


def handler(event, context):
    if "body" in event:  # through the gateway: a proxy event
        event = json.loads(event["body"] or "{}")
    kind = event.get("kind")
    if kind == "print":
        print(event["line"])
        return {"statusCode": 200, "body": ""}
    if kind == "dict":
        return {"statusCode": 201, "headers": {"X-A": "1"}, "body": "hello", "isBase64Encoded": False}
    if kind == "stream":
        def body():
            for i in range(3):
                yield f"piece{i};".encode()
                time.sleep(0.3)
        return StreamingResponse(200, {"Content-Type": "text/plain"}, body())
    if kind == "raise":
        raise ValueError("secret-detail")
    if kind == "big_prelude":
        return {"statusCode": 200, "headers": {"X-Big": "a" * 20000}, "body": ""}
    if kind == "first_fails":
        def failing():
            raise LookupError("before any piece")
            yield b""
        return StreamingResponse(200, {}, failing())
    if kind == "midstream":
        def broken():
            yield b"one"
            raise KeyError("boom")
        return StreamingResponse(200, {}, broken())
    if kind == "endless":
        marker = Path(event["marker"])
        def endless():
            try:
                while True:
                    yield b"tick;"
                    time.sleep(0.05)
            except GeneratorExit:  # written whole, then renamed: the test polls for the file and reads it at once
                marker.with_suffix(".tmp").write_text("closed")
                os.replace(marker.with_suffix(".tmp"), marker)
                raise
        return StreamingResponse(200, {}, endless())
    if kind == "sleep":
        time.sleep(30)
    if kind == "context":
        return {"statusCode": 200, "body": json.dumps({
            "request_id": context.aws_request_id, "arn": context.invoked_function_arn,
            "memory": context.memory_limit_in_mb, "remaining": context.get_remaining_time_in_millis(),
            "trace": os.environ.get("_X_AMZN_TRACE_ID", "")})}
    return "not a response"
"""


@pytest.fixture(scope="module")
def task_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A function's code as Lambda unpacks it: the project's lambda_src plus a handler module."""
    root = tmp_path_factory.mktemp("task")
    (root / "lambda_src").symlink_to(ROOT / "lambda_src")
    (root / "fixture_handlers.py").write_text(HANDLERS)
    return root


def worker_for(task_root: Path, handler: str = "fixture_handlers.handler", timeout: int = 10,
               on_log_line: Callable[[str], None] | None = None) -> StreamingWorker:  # fmt: skip
    environment = {"PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_EXEC_WRAPPER": WRAPPER, "_HANDLER": handler,
                   "AWS_LAMBDA_FUNCTION_NAME": "fixture", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
                   "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    return StreamingWorker(code_dir=str(task_root), layers=[], environment=environment, timeout_seconds=timeout,
                           log=sys.stderr, on_log_line=on_log_line)  # fmt: skip


@pytest.fixture(scope="module")
def worker(task_root: Path) -> Iterator[StreamingWorker]:
    started = worker_for(task_root)
    yield started
    started.close()


def test_the_wrapper_is_executable_in_git():
    mode = os.stat(ROOT / "lambda_src/shared/runtime/wrapper").st_mode
    assert mode & 0o111 == 0o111


def test_each_line_the_function_writes_is_handed_on_as_it_comes(task_root):
    """What the local platform gives CloudWatch Logs' part (tools/local/emf.py): the function's output line by line."""
    seen: list[str] = []
    started = worker_for(task_root, on_log_line=seen.append)
    try:
        list(started.invoke({"kind": "print", "line": '{"_aws": {}}'}))
        deadline = time.monotonic() + 10
        while '{"_aws": {}}\n' not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        started.close()
    assert '{"_aws": {}}\n' in seen


def test_a_dict_answer_is_framed_whole_in_a_streaming_post(worker):
    raw = worker.invoke({"kind": "dict"})
    data = b"".join(raw)
    prelude, _, body = data.partition(DELIMITER)
    assert json.loads(prelude) == {"statusCode": 201, "headers": {"X-A": "1"}}  # never the body in the prelude
    assert body == b"hello" and raw.error_type is None


def test_the_response_post_declares_streaming_chunked_and_its_trailers(worker):
    raw = worker.invoke({"kind": "dict"})
    b"".join(raw)
    headers = {k.lower(): v for k, v in raw._invocation.request_headers.items()}
    assert headers["lambda-runtime-function-response-mode"] == "streaming"
    assert headers["transfer-encoding"] == "chunked"
    assert headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    assert headers["trailer"] == "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"


def test_a_stream_arrives_chunk_by_chunk_before_the_handler_finished(worker):
    started = time.monotonic()
    arrivals = []
    for chunk in worker.invoke({"kind": "stream"}):
        arrivals.append((time.monotonic() - started, chunk))
    # The prelude leaves with the first piece, then each piece as its own chunk.
    assert arrivals[0][1] == b'{"statusCode": 200, "headers": {"Content-Type": "text/plain"}}' + DELIMITER + b"piece0;"
    assert [c for _, c in arrivals[1:]] == [b"piece1;", b"piece2;"]
    # piece0 left long before the generator's last sleep ended.
    assert arrivals[0][0] < arrivals[-1][0] - 0.4


def test_an_error_before_the_first_byte_goes_to_the_error_endpoint(worker):
    with pytest.raises(FunctionError, match="ValueError") as error:
        worker.invoke({"kind": "raise"})
    assert "stackTrace" in str(error.value)  # the trace is Lambda's (its log), not the caller's
    # A wrong return type and a prelude past 16 KB are errors before the first byte too.
    with pytest.raises(FunctionError, match="TypeError"):
        worker.invoke({"kind": "nothing"})
    with pytest.raises(FunctionError, match="ValueError"):
        worker.invoke({"kind": "big_prelude"})
    # A stream whose body fails at its first step has sent nothing yet: that is an error before the first byte.
    with pytest.raises(FunctionError, match="LookupError"):
        worker.invoke({"kind": "first_fails"})
    assert b"hello" in b"".join(worker.invoke({"kind": "dict"}))  # and the environment serves on


def test_an_error_after_the_first_byte_goes_in_the_trailers(worker):
    raw = worker.invoke({"kind": "midstream"})
    chunks = list(raw)
    # What was sent stays sent; the trailers say why it ended.
    assert (
        chunks[-1].endswith(DELIMITER + b"one") and raw.error_type == "KeyError"
    )  # what was sent stays sent; the trailers say why


def test_the_trailer_body_is_base64_json(task_root):
    worker = worker_for(task_root)
    try:
        raw = worker.invoke({"kind": "midstream"})
        invocation = raw._invocation
        chunks = iter(raw)
        next(chunks)  # the prelude
        ended = invocation.items.get(timeout=5)
        while not isinstance(ended, End):
            ended = invocation.items.get(timeout=5)
        body = json.loads(base64.b64decode(ended.trailers["Lambda-Runtime-Function-Error-Body"]))
        assert body["errorType"] == "KeyError" and ended.trailers["Lambda-Runtime-Function-Error-Type"] == "KeyError"
        raw.close()
    finally:
        worker.close()


def test_a_disconnect_closes_the_handlers_generator_and_the_loop_serves_on(worker, tmp_path):
    marker = tmp_path / "closed"
    raw = worker.invoke({"kind": "endless", "marker": str(marker)})
    stream = iter(raw)
    for _ in range(4):
        next(stream)
    raw.close()  # the caller went away
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "closed"
    assert b"hello" in b"".join(worker.invoke({"kind": "dict"}))


def test_the_context_and_trace_id_come_from_the_invocation(worker):
    raw = b"".join(worker.invoke({"kind": "context"}))
    context = json.loads(raw.partition(DELIMITER)[2])
    assert context["request_id"].startswith("local-") and context["arn"].endswith(":function:local")
    assert context["memory"] == 512 and 0 < context["remaining"] <= 10_000
    assert context["trace"].startswith("Root=1-")


@pytest.mark.parametrize(("handler", "kind"), [("no_such_module.handler", r"Runtime\.ImportModuleError"),
                                              ("fixture_handlers.missing", r"Runtime\.HandlerNotFound")])  # fmt: skip
def test_an_import_failure_is_an_init_error(task_root, handler, kind):
    worker = worker_for(task_root, handler=handler)
    try:
        with pytest.raises(FunctionError, match=kind):
            worker.invoke({"kind": "dict"})
    finally:
        worker.close()


def test_a_function_past_its_timeout_is_stopped(task_root):
    worker = worker_for(task_root, timeout=1)
    try:
        with pytest.raises(FunctionError, match=r"Task timed out after 1\.00 seconds"):
            worker.invoke({"kind": "sleep"})
        assert b"hello" in b"".join(worker.invoke({"kind": "dict"}))  # a fresh (cold) environment
    finally:
        worker.close()


# --- through the local gateway -------------------------------------------------------------------------


def allow(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return {"principalId": "key_1", "policyDocument": {"Statement": [{"Effect": "Allow"}]},
            "context": {"keyId": "key_1", "owner": "alice"}}  # fmt: skip


def gateway_with(stream_handler: Any) -> LocalGateway:
    def buffered(_event: dict[str, Any], _context: Any) -> dict[str, Any]:
        raise AssertionError("a streaming route must not be invoked buffered")

    return LocalGateway(buffered, allow, stream_handler=stream_handler,
                        streaming_routes=frozenset({"/chat/completions"})).start()  # fmt: skip


def post(gateway: LocalGateway, body: dict[str, Any]) -> http.client.HTTPResponse:
    host, port = gateway.server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=10)
    connection.request("POST", "/v1/chat/completions", body=json.dumps(body),
                       headers={"Authorization": "Bearer good", "Content-Type": "application/json"})  # fmt: skip
    return connection.getresponse()


def test_the_gateway_relays_chunks_as_they_arrive(worker):
    gateway = gateway_with(lambda event, _context: worker.invoke(event))
    try:
        started = time.monotonic()
        response = post(gateway, {"kind": "stream"})
        assert response.status == 200 and response.headers["Transfer-Encoding"] == "chunked"
        assert response.headers["Content-Type"] == "text/plain"
        first = response.read1(100)
        first_at = time.monotonic() - started
        rest = response.read()
        assert first == b"piece0;" and rest == b"piece1;piece2;"
        assert first_at < time.monotonic() - started - 0.4
    finally:
        gateway.stop()


@pytest.mark.parametrize(
    "raw",
    [
        [b'{"statusCode": 200}', b"but no delimiter" * 1200],  # past 16 KB without 8 NUL bytes
        [b"not json" + DELIMITER + b"body"],
        [b'{"headers": {}}' + DELIMITER],  # no status
        [b'{"statusCode": 200}'],  # ended before the delimiter
    ],
)
def test_a_badly_framed_answer_is_a_500_as_api_gateway_gives(raw):
    gateway = gateway_with(lambda _event, _context: iter(raw))
    try:
        response = post(gateway, {})
        assert response.status == 500
        assert json.loads(response.read())["error"]["type"] == "server_error"
    finally:
        gateway.stop()


def test_a_function_error_before_the_first_byte_is_a_502(worker):
    gateway = gateway_with(lambda event, _context: worker.invoke(event))
    try:
        response = post(gateway, {"kind": "raise"})
        body = response.read()
        assert response.status == 502 and b"secret-detail" not in body and b"Traceback" not in body
    finally:
        gateway.stop()


def test_a_client_that_goes_away_reaches_the_function(worker, tmp_path):
    marker = tmp_path / "closed"
    gateway = gateway_with(lambda event, _context: worker.invoke(event))
    try:
        response = post(gateway, {"kind": "endless", "marker": str(marker)})
        assert response.read1(100).startswith(b"tick;")
        response.close()  # the HTTP client disconnects mid-stream
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.read_text() == "closed"
    finally:
        gateway.stop()


def test_a_long_stream_does_not_hold_up_the_functions_other_requests(task_root, tmp_path):
    """Like Lambda, a second environment starts while the first is busy (up to the function's concurrency)."""
    pool = StreamingPool(2, lambda: worker_for(task_root))
    try:
        endless = pool.invoke({"kind": "endless", "marker": str(tmp_path / "closed")})
        started = time.monotonic()
        assert b"hello" in b"".join(pool.invoke({"kind": "dict"}))  # answered while the stream still runs
        assert time.monotonic() - started < 8
        endless.close()
    finally:
        pool.close()
