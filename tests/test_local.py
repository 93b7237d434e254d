"""`make local`'s plumbing that needs no emulator: ports, busy ports, waiting for a server, cleanup of a killed
run, the model server's arguments."""

from __future__ import annotations

import functools
import http.server
import json
import socket
import subprocess
import sys
import threading
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from tools.local import model_server, processes, readback
from tools.local.deploy import stack_output
from tools.local.deployed_api import usage_plan_of
from tools.local.gateway import Throttle, UsagePlan
from tools.local.processes import LocalError, Ports


def test_ports_come_from_the_environment_and_bad_values_name_the_variable(monkeypatch):
    monkeypatch.setenv("LOCAL_API_PORT", "9090")
    assert Ports.from_environment() == Ports(emulator=5000, model=8081, api=9090, embedding=8082, web=3000)
    monkeypatch.setenv("LOCAL_MODEL_PORT", "80")
    with pytest.raises(LocalError, match=r"LOCAL_MODEL_PORT must be a port number from 1024 to 65535 \(got '80'\)"):
        Ports.from_environment()
    monkeypatch.setenv("LOCAL_MODEL_PORT", "9090")
    with pytest.raises(LocalError, match="LOCAL_EMULATOR_PORT, LOCAL_MODEL_PORT, LOCAL_API_PORT, LOCAL_EMBEDDING_PORT, "
                                         "LOCAL_WEB_PORT must differ"):  # fmt: skip
        Ports.from_environment()


def test_a_busy_port_is_reported_with_the_variable_to_set():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LocalError, match=f"Port {port} for the model server is in use; .*LOCAL_MODEL_PORT"):
            processes.ensure_free(port, "model server", "LOCAL_MODEL_PORT")


def test_waiting_for_a_server_ends_at_its_first_answer_but_not_at_a_503(tmp_path):
    """The model server answers 503 while its model loads, then 401 to a request without its key."""
    statuses = [503, 503, 401]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses.pop(0) if len(statuses) > 1 else statuses[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        processes.wait_for(f"http://127.0.0.1:{server.server_port}/v1/models", alive, "model server", tmp_path)
        assert statuses == [401]
    finally:
        server.shutdown()
        alive.kill()
        alive.wait()


def test_down_stops_what_a_killed_run_recorded(tmp_path, capsys):
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    (tmp_path / "e2e").mkdir()
    (tmp_path / "e2e" / "pids").write_text(f"{orphan.pid} model\n")  # a killed e2e run's record
    processes.down(tmp_path)
    assert orphan.wait(timeout=10) != 0
    assert not (tmp_path / "e2e" / "pids").exists()
    assert f"stopped model (pid {orphan.pid})" in capsys.readouterr().out
    processes.down(tmp_path)
    assert "Nothing to stop." in capsys.readouterr().out


class FakeIam:
    """IAM as the emulator answers it (boto3's argument names), with one role of the stage and one policy."""

    def __init__(self, *statements: Any) -> None:
        self.document = {"Version": "2012-10-17", "Statement": list(statements)}

    def list_roles(self):
        return {"Roles": [{"RoleName": "llm-platform-dev-api-Role"}, {"RoleName": "someone-else"}]}

    def list_attached_role_policies(self, RoleName):  # noqa: N803
        return {"AttachedPolicies": [{"PolicyArn": "arn:aws:iam::123456789012:policy/p"}]}

    def get_policy(self, PolicyArn):  # noqa: N803
        return {"Policy": {"DefaultVersionId": "v1"}}

    def get_policy_version(self, PolicyArn, VersionId):  # noqa: N803
        return {"PolicyVersion": {"Document": self.document}}

    def list_role_policies(self, RoleName):  # noqa: N803
        return {"PolicyNames": []}


def test_the_iam_read_back_flags_wildcard_actions_and_resources():
    xray = {"Effect": "Allow", "Action": ["xray:PutTraceSegments"], "Resource": "*"}
    exact = {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "arn:aws:ssm:us-east-1:1:parameter/x"}
    assert readback._iam_row(FakeIam(xray, exact), "llm-platform-dev-") == (
        "IAM statements",
        "2 statements in 1 policies on 1 roles; 0 too wide",
        True,
    )
    for wide in ({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"},
                 {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}):  # fmt: skip
        assert readback._iam_row(FakeIam(exact, wide), "llm-platform-dev-")[2] is False


def test_the_usage_plan_is_that_of_the_api_key_whose_value_the_authorizer_returns(aws):
    """API Gateway's look-up for the local gateway's limits (tools/local/deployed_api.py), against moto: by key
    value, enabled keys only, plans of this API stage only, with the plan's rate, burst and daily quota."""
    client = functools.partial(boto3.client, region_name="us-east-1")
    apigw = client("apigateway")
    api_id = apigw.create_rest_api(name="api")["id"]
    plan = apigw.create_usage_plan(name="standard", apiStages=[{"apiId": api_id, "stage": "v1"}],
                                   throttle={"rateLimit": 2.0, "burstLimit": 5},
                                   quota={"limit": 2000, "period": "DAY"})  # fmt: skip
    other = apigw.create_usage_plan(name="other", apiStages=[{"apiId": api_id, "stage": "v2"}])
    keys = {}
    for value, enabled, plan_id in (("id-1", True, plan["id"]), ("id-2", False, plan["id"]),
                                    ("id-3", True, other["id"])):  # fmt: skip
        keys[value] = apigw.create_api_key(name=value, value=value * 8, enabled=enabled)["id"]
        apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=keys[value], keyType="API_KEY")
    lookup = usage_plan_of(client, api_id, "v1")
    assert lookup("id-1" * 8) == UsagePlan(plan["id"], keys["id-1"], Throttle(2.0, 5), 2000)
    assert lookup("id-2" * 8) is None and lookup("id-3" * 8) is None and lookup("id-1") is None


def test_a_stack_output_is_read_by_key_and_a_missing_one_names_the_stack_and_key(aws):
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}, "Other": {"Value": "x"}}}  # fmt: skip
    cfn.create_stack(StackName="outputs", TemplateBody=json.dumps(template))
    cfn.create_stack(StackName="bare", TemplateBody=json.dumps({"Resources": template["Resources"]}))
    client = functools.partial(boto3.client, region_name="us-east-1")
    assert stack_output(client, "outputs", "TopicArn").startswith("arn:aws:sns:us-east-1:")
    assert stack_output(client, "outputs", "Other") == "x"
    for stack in ("outputs", "bare"):
        with pytest.raises(LocalError, match=f"^The stack {stack} has no output Missing.$"):
            stack_output(client, stack, "Missing")


def test_the_model_server_takes_its_key_from_the_environment_and_listens_on_loopback_by_default(monkeypatch):
    monkeypatch.setenv("API_KEY", "sk-local-test")
    args = model_server.parse_args(["--model", "m.gguf", "--alias", "smollm2-135m-instruct", "--port", "8081"])
    assert (args.model, args.alias, args.host, args.port) == ("m.gguf", "smollm2-135m-instruct", "127.0.0.1", 8081)
    assert (args.n_ctx, args.threads, args.api_key) == (2048, -1, "sk-local-test")


@pytest.mark.parametrize(
    ("argv", "key", "message"),
    [
        (["--model", "m", "--alias", "a", "--port", "8081"], "", "set API_KEY in the environment"),
        (["--model", "m", "--alias", "a", "--port", "0"], "k", "--port must be 1 to 65535"),
        (["--model", "m", "--port", "8081"], "k", "the following arguments are required: --alias"),
        (["--model", "m", "--alias", "a", "--port", "8081", "--api-key", "k"], "k", "unrecognized arguments"),
    ],
)
def test_the_model_server_refuses_bad_arguments_and_a_missing_key(monkeypatch, capsys, argv, key, message):
    monkeypatch.setenv("API_KEY", key)
    with pytest.raises(SystemExit) as exited:
        model_server.parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_the_model_server_configures_llama_cpp_as_parsed(monkeypatch):
    """What tools.local.model_server sets on xllamacpp.CommonParams, with a stand-in (xllamacpp is only in
    .venv-model; the real server runs in the e2e tests)."""

    class CommonParams:
        def __init__(self) -> None:
            self.model = SimpleNamespace(path="")
            self.cpuparams, self.cpuparams_batch = SimpleNamespace(n_threads=-1), SimpleNamespace(n_threads=-1)

    monkeypatch.setenv("API_KEY", "sk-local-test")
    args = model_server.parse_args(["--model", "m.gguf", "--alias", "smollm2", "--port", "8081", "--threads", "2"])
    params = model_server.server_params(SimpleNamespace(CommonParams=CommonParams), args)
    assert (params.model.path, params.model_alias, params.chat_template) == ("m.gguf", {"smollm2"}, "chatml")
    assert (params.hostnames, params.port, params.api_keys) == (["127.0.0.1"], 8081, ["sk-local-test"])
    assert (params.n_ctx, params.cpuparams.n_threads, params.cpuparams_batch.n_threads) == (2048, 2, 2)
    assert params.ui is False
