"""`python -m tools.users` against moto's Cognito: create prints a temporary password once that satisfies the
pool's policy and must be changed at the first sign-in, list shows the users, disable stops their sign-in."""

from __future__ import annotations

import re
import string
from typing import Any

import boto3
import pytest

from lambda_src.contracts import chat, parameters
from tests.aws_fakes import REGION
from tools.users import SYMBOLS, Clients, main, temporary_password


@pytest.fixture
def world(aws: None) -> dict[str, Any]:
    cognito = boto3.client("cognito-idp", region_name=REGION)
    ssm = boto3.client("ssm", region_name=REGION)
    policies = {"PasswordPolicy": {"MinimumLength": 14}}
    pool = cognito.create_user_pool(PoolName="chat", UsernameAttributes=["email"], Policies=policies)["UserPool"]
    flows = ["ALLOW_USER_PASSWORD_AUTH"]
    client = cognito.create_user_pool_client(UserPoolId=pool["Id"], ClientName="web", ExplicitAuthFlows=flows)
    pool, client = pool["Id"], client["UserPoolClient"]
    ssm.put_parameter(Name=parameters.parameter_name("dev", chat.USER_POOL_PARAMETER), Value=pool, Type="String")
    return {"cognito": cognito, "ssm": ssm, "pool": pool, "client": client["ClientId"]}


def run(world: dict[str, Any], capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), clients=Clients(world["ssm"], world["cognito"]))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_prints_a_temporary_password_once_which_must_be_changed_at_the_first_sign_in(world, capsys):
    code, out, _ = run(world, capsys, "create", "--stage", "dev", "--email", "alice@example.com")
    assert code == 0
    password = re.search(r"temporary password .*: (\S+)$", out, re.M)
    assert password is not None
    cognito = world["cognito"]
    credentials = {"USERNAME": "alice@example.com", "PASSWORD": password.group(1)}
    answer = cognito.initiate_auth(ClientId=world["client"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters=credentials)
    assert answer["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    user = cognito.admin_get_user(UserPoolId=world["pool"], Username="alice@example.com")
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}["email_verified"] == "true"
    code, _, err = run(world, capsys, "create", "--stage", "dev", "--email", "alice@example.com")
    assert code == 2 and "A user with the email alice@example.com exists already." in err


def test_list_and_disable(world, capsys):
    run(world, capsys, "create", "--stage", "dev", "--email", "bob@example.com")
    code, out, _ = run(world, capsys, "list", "--stage", "dev")
    (row,) = [line.split("\t") for line in out.splitlines()]
    assert row[:3] == ["bob@example.com", "FORCE_CHANGE_PASSWORD", "yes"] and len(row[4]) == 36
    code, out, _ = run(world, capsys, "disable", "--stage", "dev", "--email", "bob@example.com")
    assert code == 0 and "disabled bob@example.com" in out
    assert not world["cognito"].admin_get_user(UserPoolId=world["pool"], Username="bob@example.com")["Enabled"]
    code, _, err = run(world, capsys, "disable", "--stage", "dev", "--email", "nobody@example.com")
    assert code == 2 and "No user with the email 'nobody@example.com'." in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["list", "--stage", "qa"], "--stage must be one of dev, prod"),
     (["create", "--stage", "dev", "--email", "not-an-email"], "--email must be an email address"),
     (["list", "--stage", "prod"], "/llm-platform/prod/chat/user-pool-id does not exist")],
)  # fmt: skip
def test_operator_mistakes_are_one_sentence_and_exit_2(world, capsys, argv, message):
    code, _, err = run(world, capsys, *argv)
    assert code == 2 and message in err


def test_temporary_passwords_hold_every_kind_of_character_the_policy_asks_for():
    for _ in range(200):
        password = temporary_password(16)
        assert len(password) == 16
        for group in (string.ascii_lowercase, string.ascii_uppercase, string.digits, SYMBOLS):
            assert any(ch in group for ch in password)
