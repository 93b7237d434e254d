"""Deploy the stage into the emulator with the project's pinned CDK CLI, as against an account; and the
boto3 clients that talk to the emulator."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import boto3

from tools.local.processes import ROOT, LocalError
from tools.local.runtime import EMULATOR_CREDENTIALS

ACCOUNT = "123456789012"
REGION = "us-east-1"


def emulator_environment(port: int) -> dict[str, str]:
    """What every AWS client here needs: the emulator's endpoint and its dummy credentials, nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            # localhost, not 127.0.0.1: the CDK CLI would read an IP in a template URL as a bucket name.
            "AWS_ENDPOINT_URL": f"http://localhost:{port}",
            **EMULATOR_CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }
    )
    return env


def cdk(env: dict[str, str], state: Path, *args: str) -> None:
    """The project's pinned CDK CLI; on failure, the end of its output."""
    cli = ROOT / "node_modules" / ".bin" / "cdk"
    path = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(ROOT / "node_modules" / ".bin"), env.get("PATH", "")])
    result = subprocess.run(  # noqa: S603 - the pinned CLI with fixed arguments
        [str(cli), *args], cwd=ROOT, env={**env, "PATH": path}, capture_output=True, text=True, check=False
    )
    log = state / f"cdk-{args[0]}.log"
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise LocalError(f"cdk {args[0]} failed (full output in {log}):\n{tail}")


def deploy(env: dict[str, str], state: Path, stage: str, web_origin: str) -> Path:
    """Bootstrap the emulator and deploy every stack of ``stage``, with ``web_origin`` (the local edge) among the
    API's CORS origins; returns the cloud assembly it deployed."""
    outdir = state / "cdk.out"
    cdk(env, state, "bootstrap", f"aws://{ACCOUNT}/{REGION}", "--output", str(outdir))
    # The knowledge base sized for the local embedding model (stacks/stages.py, with_local_models).
    cdk(env, state, "deploy", "--all", "--method=direct", "--require-approval", "never", "-c", f"stage={stage}",
        "-c", "local=true", "-c", f"local_web_origin={web_origin}", "--output", str(outdir))  # fmt: skip
    return outdir


def session() -> Any:
    """A boto3 session with the emulator's dummy credentials, built explicitly (threads here must not share
    os.environ edits)."""
    return boto3.Session(
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )


def clients(port: int) -> Any:
    """boto3 clients for the emulator: ``client(service)``."""
    emulator = session()

    def client(service: str) -> Any:
        return emulator.client(service, endpoint_url=f"http://localhost:{port}")

    return client


def stack_output(client: Any, stack: str, key: str) -> str:
    """The output ``key`` of the deployed stack ``stack`` (``client`` as clients() returns)."""
    found = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    for output in found:
        if output["OutputKey"] == key:
            return str(output["OutputValue"])
    raise LocalError(f"The stack {stack} has no output {key}.")


def dynamodb_resource(port: int) -> Any:
    return session().resource("dynamodb", endpoint_url=f"http://localhost:{port}")
