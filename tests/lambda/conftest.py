"""Fixtures for handler tests: moto's SSM and KMS (in `aws`, tests/conftest.py) and a local response endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.aws_fakes import REGION, ResponseEndpoint


@pytest.fixture
def ssm(aws: None) -> Any:
    return boto3.client("ssm", region_name=REGION)


@pytest.fixture
def key_arn(aws: None) -> str:
    return str(boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"])


@pytest.fixture
def endpoint() -> Iterator[ResponseEndpoint]:
    server = ResponseEndpoint()
    yield server
    server.close()
