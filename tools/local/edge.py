"""A local stand-in for the web app's CloudFront distribution: serves the site bucket deployed in the emulator
on http://127.0.0.1:<port>, as the distribution serves it in AWS. Loopback only.

Emulated from the web contract (lambda_src/contracts/web.py), which the distribution is built from: the
routing function (a path without a file extension gets index.html), GET and HEAD only (anything else 403), the
response headers policy's security headers, the objects' own Cache-Control and Content-Type as the deployment
wrote them, a missing object as S3 answers CloudFront through origin access control (403), and gzip for the
hashed assets when the browser accepts it (the assets behaviour compresses). One difference, because the
endpoints differ: config.json is the deployed one with `apiUrl` and `cognitoEndpoint` pointing at the local
gateway and the emulator, and the CSP's connect-src names those two instead of the AWS endpoints.
"""

from __future__ import annotations

import gzip
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lambda_src.contracts import web

COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'
)


def local_config(deployed: dict[str, Any], *, api_url: str, cognito_endpoint: str) -> dict[str, Any]:
    """The deployed config.json with the two endpoints of this machine; every other value as deployed."""
    if set(deployed) != set(web.CONFIG_KEYS):
        raise ValueError(f"The deployed {web.CONFIG} has keys {sorted(deployed)}, not {list(web.CONFIG_KEYS)}.")
    return {**deployed, "apiUrl": api_url, "cognitoEndpoint": cognito_endpoint}


class LocalEdge:
    def __init__(self, *, s3: Any, bucket: str, port: int, config: dict[str, Any],
                 connect_sources: tuple[str, ...]) -> None:  # fmt: skip
        self.s3 = s3
        self.bucket = bucket
        self.config = json.dumps(config).encode()
        self.headers = web.security_headers(connect_sources)
        edge = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                edge.serve(self, body=True)

            def do_HEAD(self) -> None:
                edge.serve(self, body=False)

            def refuse(self) -> None:
                edge.send(self, 403, {"Content-Type": "application/xml"}, ACCESS_DENIED, body=True)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = refuse  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, name="local-edge", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> LocalEdge:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, accept_encoding: str = "") -> tuple[int, dict[str, str], bytes]:
        """What the distribution answers for a GET of ``path`` (its query string ignored, as the cache policies
        do not forward it)."""
        key = web.route(urllib.parse.urlsplit(path).path).lstrip("/")
        if key == web.CONFIG:
            return 200, {"Content-Type": "application/json", "Cache-Control": web.PAGE_CACHE_CONTROL}, self.config
        try:
            found = self.s3.get_object(Bucket=self.bucket, Key=urllib.parse.unquote(key))
        except self.s3.exceptions.NoSuchKey:
            return 403, {"Content-Type": "application/xml"}, ACCESS_DENIED
        body = found["Body"].read()
        headers = {"Content-Type": found.get("ContentType", "binary/octet-stream")}
        if found.get("CacheControl"):
            headers["Cache-Control"] = found["CacheControl"]
        if found.get("ETag"):
            headers["ETag"] = found["ETag"]
        compress = key.startswith(web.ASSETS_PREFIX) and headers["Content-Type"].startswith(COMPRESSIBLE)
        if compress and "gzip" in accept_encoding:
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
        return 200, headers, body

    def serve(self, request: BaseHTTPRequestHandler, *, body: bool) -> None:
        status, headers, data = self.answer(request.path, request.headers.get("Accept-Encoding", ""))
        self.send(request, status, headers, data, body=body)

    def send(self, request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], data: bytes, *,
             body: bool) -> None:  # fmt: skip
        request.send_response(status)
        for name, value in {**headers, **self.headers, "Content-Length": str(len(data))}.items():
            request.send_header(name, value)
        request.end_headers()
        if body:
            request.wfile.write(data)
