"""Fixtures for handler tests: moto's SSM and KMS (in-process, no network) and a local response endpoint."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

REGION = "us-east-1"
MODEL_PATH = "/llm-platform/dev/model"
UPSTREAM_KEY = "/llm-platform/dev/secrets/upstream-api-key"
# Handlers read these at import, as in Lambda, where the function's environment is always set.
for _name, _value in {
    "AWS_DEFAULT_REGION": REGION,
    "MODEL_PARAMETER_PATH": MODEL_PATH,
    "UPSTREAM_API_KEY_PARAMETER": UPSTREAM_KEY,
    "CONFIG_CACHE_SECONDS": "60",
    "KEY_TABLE_NAME": "keys",
    "POWERTOOLS_SERVICE_NAME": "llm-test",
    "POWERTOOLS_METRICS_NAMESPACE": "LlmPlatformTest",
}.items():
    os.environ.setdefault(_name, _value)

MODEL_VALUES = {
    "id": "anthropic.claude-3-haiku-20240307-v1:0",
    "provider": "bedrock",
    "temperature": "0.2",
    "top-p": "0.9",
    "max-output-tokens": "1024",
    "request-timeout-seconds": "25",
    "system-prompt": "You are a helpful assistant.",
    "learning-rate": "0.01",
    "upstream-base-url": "https://api.openai.com/v1",
}


def put_model_parameters(ssm: Any, **overrides: str) -> None:
    for leaf, value in {**MODEL_VALUES, **overrides}.items():
        ssm.put_parameter(Name=f"{MODEL_PATH}/{leaf}", Value=value, Type="String", Overwrite=True)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def ssm(aws: None) -> Any:
    return boto3.client("ssm", region_name=REGION)


@pytest.fixture
def key_arn(aws: None) -> str:
    return str(boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"])


class ResponseEndpoint:
    """Stands in for CloudFormation's pre-signed S3 URL on 127.0.0.1 and keeps every body PUT to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                endpoint.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/response?sig=x"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[ResponseEndpoint]:
    server = ResponseEndpoint()
    yield server
    server.close()
