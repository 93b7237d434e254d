"""Bedrock calls through the emulator's server, run by the emulator's own venv in the background of the suite
(tests/test_local_emulator.py starts it at collection and asserts on what it prints):

    .venv-local/bin/python -m tests.emulator_routing < template.json

moto's server (the app `python -m tools.local.emulator` serves) with every patch, on a free 127.0.0.1 port, and
boto3 pointed at it as a local function's is (one endpoint for every service: bedrock-runtime and bedrock both
sign with the name `bedrock`, so only the request's path tells them apart). It deploys the template (a guardrail
and a version), applies the guardrail by id and by ARN, asks for an unknown one, and makes a version through the
control plane; prints the answers as one JSON object.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tools.local.emulator import install_patches


def checks(port: int, template: str) -> dict[str, Any]:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")  # fmt: skip

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=f"http://localhost:{port}")

    cfn = client("cloudformation")
    cfn.create_stack(StackName="guarded", TemplateBody=template)
    stack = cfn.describe_stacks(StackName="guarded")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    runtime = client("bedrock-runtime")
    applied = {
        name: runtime.apply_guardrail(guardrailIdentifier=identifier, guardrailVersion=outputs["Version"],
                                      source="OUTPUT", content=[{"text": {"text": "mail ana@example.com"}}])["outputs"]
        for name, identifier in (("id", outputs["GuardrailId"]), ("arn", outputs["GuardrailArn"]))
    }  # fmt: skip
    try:
        runtime.apply_guardrail(guardrailIdentifier="abcdefghijkl", guardrailVersion="1", source="INPUT",
                                content=[{"text": {"text": "hello"}}])  # fmt: skip
        unknown = "answered"
    except runtime.exceptions.ResourceNotFoundException as error:
        unknown = f"{error.response['Error']['Code']} {error.response['ResponseMetadata']['HTTPStatusCode']}"
    control = client("bedrock")
    version = control.create_guardrail_version(guardrailIdentifier=outputs["GuardrailArn"])["version"]
    got = control.get_guardrail(guardrailIdentifier=outputs["GuardrailId"], guardrailVersion=version)
    return {"status": stack["StackStatus"], "applied": applied, "unknown": unknown, "created_version": version,
            "got_version": got["version"]}  # fmt: skip


def main() -> None:
    template = sys.stdin.read()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    install_patches(port)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        print(json.dumps(checks(port, template)))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
