"""tools/operator.py: what an operator sees when a command fails (one sentence; 2 for their input or deployment,
1 when AWS refused a call) and the lookup of a stage's parameter."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from tests.aws_fakes import REGION
from tools.operator import ToolError, check_stage, run_command, stage_parameter


def _raise(error: Exception) -> int:
    raise error


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [(ToolError("--email must be an email address."), 2, "Error: --email must be an email address.\n"),
     (ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetParameter"), 1,
      "Error: AWS refused the call: An error occurred (AccessDeniedException) when calling the GetParameter "
      "operation: no\n"),
     (EndpointConnectionError(endpoint_url="https://ssm"), 1,
      'Error: AWS refused the call: Could not connect to the endpoint URL: "https://ssm"\n')],
)  # fmt: skip
def test_a_failing_command_prints_one_sentence_and_its_exit_code(
    error: Exception, code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command(lambda: _raise(error)) == code
    out, err = capsys.readouterr()
    assert (out, err) == ("", message)


def test_a_command_returns_its_own_exit_code() -> None:
    assert run_command(lambda: 3) == 3


def test_an_unknown_stage_is_named() -> None:
    check_stage("dev")
    with pytest.raises(ToolError, match=r"^--stage must be one of dev, prod \(got 'qa'\)\.$"):
        check_stage("qa")


def test_a_missing_parameter_means_the_stack_is_not_deployed() -> None:
    ssm = boto3.client("ssm", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(ssm) as stub:
        stub.add_response("get_parameter", {"Parameter": {"Value": "table-1"}}, {"Name": "/llm-platform/dev/x"})
        stub.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": "/llm-platform/dev/x"})
        stub.add_client_error("get_parameter", "ThrottlingException")
        assert stage_parameter(ssm, "dev", "x", "{name} is missing") == "table-1"
        with pytest.raises(ToolError, match=r"^/llm-platform/dev/x is missing$"):
            stage_parameter(ssm, "dev", "x", "{name} is missing")
        with pytest.raises(ClientError, match="ThrottlingException"):
            stage_parameter(ssm, "dev", "x", "{name} is missing")
