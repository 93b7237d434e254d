"""An OpenAI-compatible HTTP server on 127.0.0.1 with scripted answers, for the adapters' tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Upstream:
    """An OpenAI-compatible server on 127.0.0.1 with a scripted answer."""

    def __init__(self) -> None:
        self.status, self.body, self.delay = 200, b"", 0.0
        self.headers: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                upstream.requests.append({"path": self.path, "auth": self.headers["Authorization"],
                                          "json": json.loads(self.rfile.read(length))})  # fmt: skip
                time.sleep(upstream.delay)
                self.send_response(upstream.status)
                for name, value in upstream.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(upstream.body)

            def do_GET(self) -> None:  # where urllib follows a 301/302/303 to
                upstream.requests.append({"path": self.path, "auth": self.headers["Authorization"], "json": None})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(json.dumps({"choices": [{"message": {"content": "stolen"}}]}).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
