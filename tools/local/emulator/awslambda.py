"""Lambda: invocations run the deployed Python code on the host (tools/local/runtime.py) instead of Docker, with
the function's layers, which moto's CloudFormation drops from `AWS::Lambda::Function` (its Layers property).

Execution environments stay warm between invocations, as in Lambda: an invocation takes an idle environment of the
function or starts one (a cold start), and hands it back when it is done, so the pipeline's Map does not pay
an interpreter start and its imports for every document. A changed function (code, handler, layers, environment,
timeout) gets new environments. The lines a function writes go to the emulator's log, and the EMF ones to its
CloudWatch metrics (tools/local/emf.py), as CloudWatch Logs extracts them.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.awslambda import models

from tools.local.emf import EmfForwarder
from tools.local.emulator import cloudwatch, s3deployment
from tools.local.emulator.cloudformation import answer_custom_resource
from tools.local.runtime import FunctionError, Worker, lambda_environment, unpack


class Environments:
    """Idle execution environments (Workers) by function configuration."""

    def __init__(self) -> None:
        self._idle: dict[str, list[Worker]] = {}
        self._lock = threading.Lock()

    def take(self, configuration: str, start: Callable[[], Worker]) -> Worker:
        with self._lock:
            idle = self._idle.get(configuration)
            if idle:
                return idle.pop()
        return start()

    def give(self, configuration: str, worker: Worker) -> None:
        with self._lock:
            self._idle.setdefault(configuration, []).append(worker)


ENVIRONMENTS = Environments()


def install(endpoint: str) -> None:
    created = models.LambdaFunction.create_from_cloudformation_json.__func__

    def create_with_layers(cls: Any, /, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                           region_name: str, **kwargs: Any) -> Any:  # fmt: skip
        function = created(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        # A Ref to a LayerVersion reaches here as moto's model of it, an ARN as text.
        layers = [getattr(layer, "arn", layer) for layer in cloudformation_json["Properties"].get("Layers") or []]
        if layers:
            function.layers = function._get_layers_data(layers)
        return function

    models.LambdaFunction.create_from_cloudformation_json = classmethod(create_with_layers)

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> bytes:
        event = json.loads(body) if body else {}
        print(f"emulator: invoking {self.function_name} ({self.run_time})", file=sys.stderr, flush=True)
        if not str(self.run_time).startswith("python"):
            # CDK's Node.js providers (S3 auto-delete) only act when a stack is deleted.
            if isinstance(event, dict) and "ResponseURL" in event:
                answer_custom_resource(event, "SUCCESS", f"{self.run_time} provider not run by the local emulator")
                return b"null"
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {"errorMessage": f"The local emulator runs Python functions only ({self.run_time})"}
            ).encode()
        if s3deployment.is_deployment(event):
            s3deployment.run(Path(unpack(self.code_bytes)), event)
            return b"null"
        environment = lambda_environment(self.get_configuration(), endpoint, self.region)
        configuration = json.dumps([self.function_arn, self.code_sha_256, self.handler, self.layers, environment,
                                    int(self.timeout)], sort_keys=True)  # fmt: skip
        key = hashlib.sha256(configuration.encode()).hexdigest()

        def start() -> Worker:
            backend = models.lambda_backends[self.account_id][self.region]
            layers = [unpack(backend.layers_versions_by_arn(layer["Arn"]).code_bytes) for layer in self.layers]
            metrics = EmfForwarder(cloudwatch.put_metric_data(self.account_id, self.region))
            return Worker(handler=self.handler, code_dir=unpack(self.code_bytes), layers=layers,
                          environment=environment, timeout_seconds=int(self.timeout), log=sys.stderr,
                          on_log_line=metrics)  # fmt: skip

        worker = ENVIRONMENTS.take(key, start)
        try:
            return json.dumps(worker.invoke(event)).encode()
        except FunctionError as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            # Lambda's error payload: Step Functions' Retry and Catch match on errorType.
            return json.dumps({"errorMessage": error.message, "errorType": error.error_type}).encode()
        finally:
            ENVIRONMENTS.give(key, worker)  # a timed-out or crashed one restarts (cold) on its next call

    models.LambdaFunction.invoke = invoke
