"""The local model server for `make local` and `make e2e`: llama.cpp's own OpenAI-compatible HTTP server,
prebuilt for CPUs in the PyPI package xllamacpp (no compile), serving a GGUF file on 127.0.0.1 only.

    API_KEY=... .venv-model/bin/python -m tools.local.model_server --model GGUF --alias NAME --port P

Requests need ``Authorization: Bearer $API_KEY`` (taken from the environment, never the command line, which
`ps` shows). The chat template is ChatML: SmolLM2 derails with the template embedded in its GGUF. Runs in
.venv-model and imports nothing but the standard library and xllamacpp. Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local.model_server", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="path of the GGUF file")
    parser.add_argument("--alias", required=True, help="the model id clients send and /v1/models lists")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n-ctx", type=int, default=2048)
    args = parser.parse_args(argv)
    api_key = os.environ.get("API_KEY", "")
    if not api_key:
        parser.error("set API_KEY in the environment: the server refuses requests without that Bearer key")

    import xllamacpp  # type: ignore[import-not-found]  # noqa: PLC0415 - only in .venv-model, after the arguments

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.n_ctx = args.n_ctx
    params.chat_template = "chatml"
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.api_keys = [api_key]
    stop = threading.Event()

    def stopping(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    server = xllamacpp.Server(params)  # listening when this returns
    print(f"model server: {args.alias} on {server.listening_address}", file=sys.stderr, flush=True)
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
