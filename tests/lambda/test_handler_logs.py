"""The inference function's logs as Lambda would write them: a fresh interpreter imports the handler with the
stack's environment, so what the handler sets up at init (module loggers through Powertools) is what is tested."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lambda_src.contracts.environment import InferenceEnvironment
from tests.aws_fakes import INFERENCE_ENVIRONMENT, REGION

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json
from lambda_src.inference import handler
from tools.local.runtime import LambdaContext

class Broken:
    def settings(self):
        raise KeyError("secret-internal-state")

handler.API._config = Broken()
event = {"resource": "/models", "path": "/models", "httpMethod": "GET", "headers": {},
         "requestContext": {"requestId": "req-9", "authorizer": {"keyId": "key_00000000000000aa", "owner": "a"}}}
print("RESPONSE " + json.dumps(handler.lambda_handler(event, LambdaContext.for_api_gateway())))
"""


def _run(environment: InferenceEnvironment) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **environment.variables(), "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "POWERTOOLS_SERVICE_NAME": "llm-inference"}  # fmt: skip
    return subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def test_an_unhandled_error_is_one_json_line_with_its_frames_the_request_and_the_key():
    result = _run(INFERENCE_ENVIRONMENT)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    response = json.loads(next(line for line in lines if line.startswith("RESPONSE "))[len("RESPONSE ") :])
    assert response["statusCode"] == 500
    logs = [json.loads(line) for line in lines if line.startswith("{")]
    (failure,) = [entry for entry in logs if entry.get("message") == "unhandled error"]
    # Through the function's Powertools Logger (was: a plain-text line from the root logger, type only).
    assert failure["service"] == "llm-inference" and failure["function_request_id"]
    assert failure["level"] == "ERROR" and failure["location"].startswith("_handle:")
    assert (failure["api_request_id"], failure["key_id"], failure["error_type"]) == (
        "req-9", "key_00000000000000aa", "KeyError")  # fmt: skip
    assert failure["frames"][0]["file"] == "lambda_src/shared/dispatch.py"
    assert failure["frames"][1]["file"] == "lambda_src/inference/logic.py"
    assert failure["frames"][-1] == {"file": "<string>", "line": 8, "function": "settings"}
    assert "secret-internal-state" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_required_audit_without_a_stream_fails_the_init():
    result = _run(INFERENCE_ENVIRONMENT._replace(audit_mode="required"))
    assert result.returncode != 0
    assert "AUDIT_MODE is required but AUDIT_STREAM_NAME is empty" in result.stderr
