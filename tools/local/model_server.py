"""The local model server for `make local` and `make e2e`: llama.cpp's own OpenAI-compatible HTTP server,
prebuilt for CPUs in the PyPI package xllamacpp (no compile), serving a GGUF file on 127.0.0.1.

    API_KEY=... .venv-model/bin/python -m tools.local.model_server --model GGUF --alias NAME --port P

Every route but /health needs the key (``Authorization: Bearer $API_KEY``; taken from the environment, never
the command line, which `ps` shows); a missing or wrong key is a 401. /v1/models lists NAME only, and a
request's `model` field is not checked (answers name NAME). The chat template is ChatML: SmolLM2 derails with
the template embedded in its GGUF. llama.cpp logs to stderr (`make local` writes it to .local/model.log).
Runs in .venv-model and imports nothing but the standard library and xllamacpp. Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

CHAT_TEMPLATE = "chatml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.local.model_server", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="path of the GGUF file")
    parser.add_argument("--alias", required=True, help="the model id /v1/models lists and answers name")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n-ctx", type=int, default=2048, help="context length in tokens (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=-1, help="CPU threads (default: llama.cpp's choice)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be 1 to 65535 (got {args.port})")
    args.api_key = os.environ.get("API_KEY", "")
    if not args.api_key:
        parser.error("set API_KEY in the environment: the server refuses requests without that Bearer key")
    return args


def server_params(xllamacpp: Any, args: argparse.Namespace) -> Any:
    """xllamacpp.CommonParams for `args` (the module is passed in: it exists in .venv-model only)."""
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.n_ctx = args.n_ctx
    params.chat_template = CHAT_TEMPLATE
    params.hostnames = [args.host]
    params.port = args.port
    params.api_keys = [args.api_key]
    params.ui = False  # no web UI on the port, the API only
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    return params


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import xllamacpp  # type: ignore[import-not-found]  # noqa: PLC0415 - only in .venv-model, after the arguments

    stop = threading.Event()

    def stopping(*_: Any) -> None:
        stop.set()

    # This xllamacpp leaves SIGTERM/SIGINT to Python (its April 2026 source took them over once loaded).
    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    # HTTP answers 503 while the model loads; this returns when it is loaded (or raises if it cannot be).
    server = xllamacpp.Server(server_params(xllamacpp, args))
    print(f"model server: {args.alias} on {server.listening_address}", file=sys.stderr, flush=True)
    stop.wait()
    del server  # stops the HTTP server and the main loop, and waits for them
    return 0


if __name__ == "__main__":
    sys.exit(main())
