"""Shared helpers for handler tests (tests/lambda/ cannot be imported by name: `lambda` is a keyword)."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from constructs_lib.config.settings import ModelConfig
from lambda_src.contracts import parameters
from lambda_src.contracts.environment import AuthorizerEnvironment, InferenceEnvironment, RetrievalEnvironment
from lambda_src.contracts.keys import HASH_ATTRIBUTE, KEY_ID_ATTRIBUTE, KEY_ID_INDEX

REGION = "us-east-1"
MODEL_PATH = parameters.parameter_name("dev", parameters.MODEL_PATH)
UPSTREAM_KEY = parameters.parameter_name("dev", parameters.UPSTREAM_API_KEY)
# The environment the stack gives the functions (through the same contracts); no audit stream in unit tests.
# What every function serving API requests is told (ApiStack._request_environment).
REQUEST_ENVIRONMENT: dict[str, Any] = {
    "config_cache_seconds": 60,
    "max_body_bytes": 262_144,
    "cors_allowed_origins": (),
    "audit_stream_name": "",
    "audit_mode": "best_effort",
    "audit_content": "full",
    "stage": "dev",
}
INFERENCE_ENVIRONMENT = InferenceEnvironment(
    model_parameter_path=MODEL_PATH, upstream_api_key_parameter=UPSTREAM_KEY, **REQUEST_ENVIRONMENT
)
EMBEDDING_PATH = parameters.parameter_name("dev", "knowledge/embedding")
INDEX_ARN = f"arn:aws:s3vectors:{REGION}:123456789012:bucket/vectors/index/chunks-v1-d4-cosine"
RETRIEVAL_ENVIRONMENT = RetrievalEnvironment(
    embedding_parameter_path=EMBEDDING_PATH,
    upstream_api_key_parameter=UPSTREAM_KEY,
    vector_index_arn=INDEX_ARN,
    dimension=4,
    embedding_batch_size=16,
    **REQUEST_ENVIRONMENT,
)
# Handlers read these at import, as in Lambda, where the function's environment is always set.
for _name, _value in {
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_SERVICE_NAME": "llm-test",
    **INFERENCE_ENVIRONMENT.variables(),
    **RETRIEVAL_ENVIRONMENT.variables(),
    **AuthorizerEnvironment(key_table_name="keys").variables(),
}.items():
    os.environ.setdefault(_name, _value)

# The model parameters as ConfigStack writes them, leaf name -> value.
MODEL_VALUES = {
    parameters.MODEL_LEAVES[field]: value
    for field, value in ModelConfig(system_prompt="You are a helpful assistant.").parameter_values().items()
}


def stub_client(service: str) -> Any:
    """A boto3 client with dummy credentials for botocore's Stubber (it never reaches a network)."""
    import boto3  # noqa: PLC0415 - only the stubbed tests need it

    return boto3.client(service, region_name=REGION, aws_access_key_id="stub", aws_secret_access_key="stub")


def create_key_table(dynamodb: Any, name: str = "keys") -> None:
    """The key table as ApiKeyTable deploys it (tests/infra/test_api_stack.py checks the template's side)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": HASH_ATTRIBUTE, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in (HASH_ATTRIBUTE, KEY_ID_ATTRIBUTE)],
        GlobalSecondaryIndexes=[{"IndexName": KEY_ID_INDEX, "KeySchema": [{"AttributeName": KEY_ID_ATTRIBUTE,
                                 "KeyType": "HASH"}], "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip


def issue_key(ssm: Any, dynamodb: Any, apigateway: Any, owner: str = "alice") -> tuple[str, str]:
    """A key made by the admin command (tools.keys) against moto: the key table, a usage plan, their parameters."""
    from tools.keys import Clients, KeyAdmin  # noqa: PLC0415 - tools load only where a test makes keys

    create_key_table(dynamodb)
    plan = apigateway.create_usage_plan(name="llm-platform-dev-api-standard")["id"]
    ssm.put_parameter(Name="/llm-platform/dev/api/key-table", Value="keys", Type="String")
    ssm.put_parameter(Name="/llm-platform/dev/api/usage-plans/standard", Value=plan, Type="String")
    return KeyAdmin("dev", Clients(ssm, dynamodb, apigateway)).create(owner, "standard")


def put_model_parameters(ssm: Any, **overrides: str) -> None:
    for leaf, value in {**MODEL_VALUES, **overrides}.items():
        ssm.put_parameter(Name=f"{MODEL_PATH}/{leaf}", Value=value, Type="String", Overwrite=True)


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


def create_manifest_table(dynamodb: Any, name: str = "manifest") -> Any:
    """The knowledge base's manifest table as ManifestTable deploys it; ``dynamodb`` a boto3 resource."""
    from lambda_src.contracts.knowledge import PARTITION_KEY, SORT_KEY  # noqa: PLC0415

    return dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in (PARTITION_KEY, SORT_KEY)],
    )


def create_usage_table(dynamodb: Any, name: str = "usage") -> None:
    """The budgets' usage table as UsageTable deploys it (tests/infra/test_api_stack.py checks the template's side)."""
    from lambda_src.contracts.spend import PERIOD, PRINCIPAL  # noqa: PLC0415

    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": PRINCIPAL, "KeyType": "HASH"}, {"AttributeName": PERIOD, "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in (PRINCIPAL, PERIOD)],
        BillingMode="PAY_PER_REQUEST",
    )
