"""Lambda entry point of the SecureString provider: thin wiring around logic and cfn_response."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import boto3
from botocore.config import Config

from lambda_src.contracts.secure_string import PARAMETER_NAME
from lambda_src.secure_parameter.cfn_response import Responder
from lambda_src.secure_parameter.logic import ProviderError, handle
from lambda_src.shared.logs import frames

logging.getLogger().setLevel(os.environ.get("LOG_LEVEL", "INFO"))
# botocore logs request parameters (the value of PutParameter) at DEBUG: never let it, whatever LOG_LEVEL says.
for _noisy in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)
LOGGER = logging.getLogger(__name__)

# Short timeouts and bounded standard retries: a stuck call must not outlive the invocation.
SSM = boto3.client(
    "ssm",
    config=Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3}),
)


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    # Never log the event: it carries the pre-signed response URL.
    LOGGER.info(
        "%s %s (%s)",
        event.get("RequestType"),
        event.get("LogicalResourceId"),
        (event.get("ResourceProperties") or {}).get(PARAMETER_NAME),
    )
    responder = Responder(event, context.get_remaining_time_in_millis() / 1000)
    try:
        outcome = handle(event, SSM)
    except ProviderError as error:
        LOGGER.error("Failed: %s", error)
        responder.failed(str(error))
        return
    except Exception as error:  # any bug still answers CloudFormation, without a trace of values
        # Where it failed (file, line, function), never the message: it could quote the value.
        LOGGER.error("Unexpected %s at %s", type(error).__name__, json.dumps(frames(error)))
        responder.failed(f"Unexpected {type(error).__name__} in the provider; see its log group.")
        return
    responder.success(outcome.physical_id, outcome.data)
