"""Deploy the dev stage into a local AWS emulator and check it: `make local-deploy` / `make local-down`.

    python -m tools.local deploy [--emulator-port 5000]   # start the emulator, bootstrap, deploy, check
    python -m tools.local down                            # stop what a killed run left behind

The emulator (tools/emulator.py, moto's server with the gaps it closes) listens on 127.0.0.1 only. The
project's pinned CDK CLI bootstraps and deploys every stack of the dev stage into it with
`cdk deploy --all --method=direct`, exactly as against an account, then boto3 reads back what was
deployed and prints a table. `deploy` keeps the emulator running until Ctrl-C; every process it starts is
recorded in .local/pids and stopped on exit or by `down`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".local"
PIDS = STATE / "pids"
EMULATOR_PYTHON = ROOT / ".venv-local" / "bin" / "python"
ACCOUNT = "123456789012"
REGION = "us-east-1"
STAGE = "dev"


class LocalError(Exception):
    """A step failed; the message says which and what to do."""


def emulator_environment(port: int) -> dict[str, str]:
    """What every AWS client here needs: the emulator's endpoint and its dummy credentials, nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            # localhost, not 127.0.0.1: the CDK CLI would read an IP in a template URL as a bucket name.
            "AWS_ENDPOINT_URL": f"http://localhost:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }
    )
    return env


def ensure_free(port: int, what: str, variable: str) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise LocalError(f"Port {port} for the {what} is in use; free it or set {variable}=<port>.")


@dataclass
class Processes:
    """Processes this run started, by PID, also written to .local/pids for `down`."""

    started: list[subprocess.Popen[bytes]]

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        STATE.mkdir(exist_ok=True)
        log = (STATE / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own tools with fixed arguments
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(process)
        with PIDS.open("a") as pids:
            pids.write(f"{process.pid} {name}\n")
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            _terminate(process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        PIDS.unlink(missing_ok=True)


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)


def wait_for(url: str, process: subprocess.Popen[bytes], name: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalError(f"The {name} exited with code {process.returncode}; see .local/{name}.log.")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):  # noqa: S310 - 127.0.0.1 only
            return
        time.sleep(0.2)
    raise LocalError(f"The {name} did not answer at {url} within {seconds:.0f} s; see .local/{name}.log.")


def cdk(env: dict[str, str], *args: str) -> None:
    """The project's pinned CDK CLI; on failure, the end of its output."""
    cli = ROOT / "node_modules" / ".bin" / "cdk"
    path = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(ROOT / "node_modules" / ".bin"), env.get("PATH", "")])
    result = subprocess.run(  # noqa: S603 - the pinned CLI with fixed arguments
        [str(cli), *args], cwd=ROOT, env={**env, "PATH": path}, capture_output=True, text=True, check=False
    )
    (STATE / f"cdk-{args[0]}.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise LocalError(f"cdk {args[0]} failed (full output in .local/cdk-{args[0]}.log):\n{tail}")


def deploy(env: dict[str, str]) -> None:
    cdk(env, "bootstrap", f"aws://{ACCOUNT}/{REGION}")
    cdk(env, "deploy", "--all", "--method=direct", "--require-approval", "never", "-c", f"stage={STAGE}")


def checks(env: dict[str, str]) -> list[tuple[str, str, bool]]:
    """What boto3 reads back from the emulator: (check, what was found, as expected)."""
    import boto3  # noqa: PLC0415 - only with the emulator's endpoint in the environment

    with _environment(env):
        return _checks(boto3.Session(region_name=REGION))


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _checks(session: Any) -> list[tuple[str, str, bool]]:
    ssm, s3 = session.client("ssm"), session.client("s3")
    lam, apigw, cfn = session.client("lambda"), session.client("apigateway"), session.client("cloudformation")
    prefix = f"/llm-platform/{STAGE}"
    rows: list[tuple[str, str, bool]] = []

    stacks = {s["StackName"]: s["StackStatus"] for s in cfn.describe_stacks()["Stacks"]}
    mine = {n: s for n, s in stacks.items() if n.startswith(f"llm-platform-{STAGE}-")}
    rows.append(("stacks", ", ".join(f"{n.rsplit('-', 1)[1]} {s}" for n, s in sorted(mine.items())),
                 len(mine) == 4 and all(s == "CREATE_COMPLETE" for s in mine.values())))  # fmt: skip

    params = {p["Name"]: p for p in ssm.get_paginator("get_parameters_by_path").paginate(
        Path=prefix, Recursive=True).build_full_result()["Parameters"]}  # fmt: skip
    types = sorted({p["Type"] for p in params.values()})
    rows.append(("SSM parameters", f"{len(params)} under {prefix} ({', '.join(types)})", len(params) >= 12))
    secrets = [n for n, p in params.items() if p["Type"] == "SecureString"]
    rows.append(("SecureStrings", ", ".join(n.rsplit("/", 1)[1] for n in sorted(secrets)), len(secrets) == 2))
    if secrets:
        raw = ssm.get_parameter(Name=secrets[0], WithDecryption=False)["Parameter"]["Value"]
        clear = ssm.get_parameter(Name=secrets[0], WithDecryption=True)["Parameter"]["Value"]
        key = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [secrets[0]]}])["Parameters"][0]
        key_id = str(key.get("KeyId", "")).rsplit("/", 1)[-1]
        rows.append(("SecureString encryption", f"stored encrypted under key {key_id[:8]}..., decrypts with it",
                     raw != clear and len(clear) >= 32 and bool(key_id)))  # fmt: skip

    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(f"llm-platform-{STAGE}-")]
    kms_encrypted = 0
    for bucket in buckets:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        kms_encrypted += rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    rows.append(("buckets", f"{len(buckets)}, {kms_encrypted} with SSE-KMS (log targets SSE-S3)",
                 len(buckets) >= 4 and kms_encrypted >= 2))  # fmt: skip

    functions = [f for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith(f"llm-platform-{STAGE}")]
    python = [f for f in functions if f["Runtime"].startswith("python")]
    configured = [f for f in python if f.get("Environment", {}).get("Variables", {}).get("MODEL_PARAMETER_PATH")]
    rows.append(("Lambda functions", f"{len(python)} Python ({python[0]['Runtime'] if python else '-'}); "
                 f"inference reads {prefix}/model", len(python) == 3 and len(configured) == 1))  # fmt: skip

    api = next(a for a in apigw.get_rest_apis()["items"])
    routes = []
    for resource in apigw.get_resources(restApiId=api["id"])["items"]:
        for verb in resource.get("resourceMethods", {}):
            if verb == "OPTIONS":
                continue
            method = apigw.get_method(restApiId=api["id"], resourceId=resource["id"], httpMethod=verb)
            integration = method.get("methodIntegration", {})
            ok = method.get("authorizerId") and integration.get("type") == "AWS_PROXY"
            routes.append((f"{verb} {resource['path']}", bool(ok)))
    authorizers = apigw.get_authorizers(restApiId=api["id"])["items"]
    rows.append(("API routes", ", ".join(sorted(r for r, _ in routes)) + " (authorizer, Lambda proxy)",
                 len(routes) == 3 and all(ok for _, ok in routes) and len(authorizers) == 1))  # fmt: skip
    plans = [p["name"].rsplit("-", 1)[1] for p in apigw.get_usage_plans()["items"]]
    rows.append(("usage plans", ", ".join(sorted(plans)), sorted(plans) == ["premium", "standard"]))
    return rows


def print_table(rows: list[tuple[str, str, bool]]) -> None:
    width = max(len(name) for name, _, _ in rows)
    for name, found, ok in rows:
        print(f"  {'ok ' if ok else 'BAD'}  {name:<{width}}  {found}")


def down() -> None:
    if not PIDS.exists():
        print("Nothing to stop.")
        return
    for line in PIDS.read_text().splitlines():
        pid, name = line.split(maxsplit=1)
        _terminate(int(pid))
        print(f"stopped {name} (pid {pid})")
    PIDS.unlink()


def up(emulator_port: int, *, serve: bool) -> None:
    if PIDS.exists():
        raise LocalError("A local run is still recorded in .local/pids; run `make local-down` first.")
    if not EMULATOR_PYTHON.exists():
        raise LocalError("The emulator venv is missing; run `make local-deploy` (it installs .venv-local).")
    ensure_free(emulator_port, "AWS emulator", "LOCAL_EMULATOR_PORT")
    processes = Processes(started=[])
    try:
        command = [str(EMULATOR_PYTHON), "-m", "tools.emulator", "--port", str(emulator_port)]
        emulator = processes.start("emulator", command, env=emulator_environment(emulator_port))
        wait_for(f"http://127.0.0.1:{emulator_port}/moto-api/", emulator, "emulator")
        env = emulator_environment(emulator_port)
        print(f"Emulator on 127.0.0.1:{emulator_port}; deploying the {STAGE} stage with the pinned CDK CLI...")
        started = time.monotonic()
        deploy(env)
        print(f"Deployed 4 stacks in {time.monotonic() - started:.0f} s. What boto3 reads back:")
        rows = checks(env)
        print_table(rows)
        (STATE / "checks.json").write_text(json.dumps(rows))
        if not all(ok for _, _, ok in rows):
            raise LocalError("Some deployed resources are not as the templates say (BAD rows above).")
        if serve:
            print(f"The emulator keeps running at http://localhost:{emulator_port}; Ctrl-C stops it.")
            emulator.wait()
    except KeyboardInterrupt:
        print("\nStopping.")
    finally:
        processes.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    deploy_cmd = sub.add_parser("deploy", help="start the emulator, deploy the dev stage, check it")
    deploy_cmd.add_argument("--emulator-port", type=int, default=int(os.environ.get("LOCAL_EMULATOR_PORT", "5000")))
    deploy_cmd.add_argument("--exit", action="store_true", help="stop the emulator after the checks")
    sub.add_parser("down", help="stop processes a killed run left behind")
    args = parser.parse_args(argv)
    try:
        if args.command == "down":
            down()
        else:
            up(args.emulator_port, serve=not args.exit)
    except LocalError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
