"""Operator commands for the chat's users: create (with a temporary password, printed once), list, disable.

    python -m tools.users create --stage dev --email alice@example.com
    python -m tools.users list --stage dev
    python -m tools.users disable --stage dev --email alice@example.com

Self sign-up is off unless the stage turns it on: an administrator creates each user. Cognito sends no email
here: the temporary password is printed once, to hand over out of band; the user sets a password of their own at
the first sign-in (and, where the stage requires MFA, an authenticator app). `disable` also signs the user out
everywhere (their refresh tokens stop working; an ID token already issued lasts until it expires, at most the
stage's `chat.id_token_minutes`). The user pool is found through the stage's parameter `chat/user-pool-id`.
Uses the standard AWS credential chain and region of the shell.
"""

from __future__ import annotations

import argparse
import re
import secrets
import string
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from lambda_src.contracts import chat
from stacks.stages import STAGES
from tools.operator import ToolError, check_stage, error_code, run_command, stage_parameter

_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
# Cognito's special characters a password may hold (a subset without quotes and backslashes, for shells).
SYMBOLS = "^$*.[]{}()?!@#%&/,><:;|_~=+-"
LIST_FIELDS = ("email", "status", "enabled", "created", "sub")


@dataclass(frozen=True)
class Clients:
    ssm: Any
    cognito: Any

    @classmethod
    def default(cls, region: str | None) -> Clients:
        session = boto3.session.Session(region_name=region)
        return cls(session.client("ssm"), session.client("cognito-idp"))


def temporary_password(length: int) -> str:
    """Random, with a lowercase and an uppercase letter, a digit and a symbol, as the pool's policy requires."""
    alphabet = string.ascii_letters + string.digits + SYMBOLS
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(ch in group for ch in password) for group in (string.ascii_lowercase, string.ascii_uppercase,
                                                                  string.digits, SYMBOLS)):  # fmt: skip
            return password


class UserAdmin:
    def __init__(self, stage: str, clients: Clients) -> None:
        check_stage(stage)
        self.stage = stage
        self.settings = STAGES[stage].chat
        self.clients = clients

    def pool_id(self) -> str:
        return stage_parameter(self.clients.ssm, self.stage, chat.USER_POOL_PARAMETER, f"{{name}} does not exist: "
                               f"is the {self.stage} chat stack deployed in this account and region?")  # fmt: skip

    def create(self, email: str) -> tuple[str, str]:
        """(the user's sub, the temporary password)."""
        if not _EMAIL.match(email):
            raise ToolError(f"--email must be an email address (got {email!r}).")
        password = temporary_password(max(16, self.settings.password_min_length))
        try:
            answer = self.clients.cognito.admin_create_user(
                UserPoolId=self.pool_id(), Username=email, TemporaryPassword=password, MessageAction="SUPPRESS",
                UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            )  # fmt: skip
        except ClientError as error:
            if error_code(error) == "UsernameExistsException":
                raise ToolError(f"A user with the email {email} exists already.") from None
            raise
        attributes = {a["Name"]: a["Value"] for a in answer["User"].get("Attributes", [])}
        return attributes.get("sub", ""), password

    def list(self) -> Iterator[dict[str, str]]:
        pool = self.pool_id()
        for page in self.clients.cognito.get_paginator("list_users").paginate(UserPoolId=pool):
            for user in page.get("Users", []):
                attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
                yield {
                    "email": attributes.get("email", user["Username"]),
                    "status": str(user.get("UserStatus", "")),
                    "enabled": "yes" if user.get("Enabled") else "no",
                    "created": str(user.get("UserCreateDate", ""))[:19],
                    "sub": attributes.get("sub", ""),
                }

    def disable(self, email: str) -> None:
        pool = self.pool_id()
        try:
            self.clients.cognito.admin_disable_user(UserPoolId=pool, Username=email)
            self.clients.cognito.admin_user_global_sign_out(UserPoolId=pool, Username=email)
        except ClientError as error:
            if error_code(error) == "UserNotFoundException":
                raise ToolError(f"No user with the email {email!r}.") from None
            raise


def main(argv: Sequence[str] | None = None, clients: Clients | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.users", description=__doc__.splitlines()[0])
    parser.add_argument("--region", help="AWS region of the deployment (default: the shell's)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a user and print a temporary password once")
    create.add_argument("--stage", required=True)
    create.add_argument("--email", required=True)
    listing = commands.add_parser("list", help="list users (email, status, enabled, created, sub)")
    listing.add_argument("--stage", required=True)
    disable = commands.add_parser("disable", help="disable a user and sign them out everywhere")
    disable.add_argument("--stage", required=True)
    disable.add_argument("--email", required=True)
    args = parser.parse_args(argv)

    def command() -> int:
        admin = UserAdmin(args.stage, clients or Clients.default(args.region))
        if args.command == "create":
            sub, password = admin.create(args.email)
            print(f"user: {args.email} (sub {sub})\ntemporary password (shown once; the user sets their own at the "
                  f"first sign-in, within {admin.settings.temporary_password_days} days): {password}")  # fmt: skip
        elif args.command == "list":
            for row in admin.list():
                print("\t".join(row[field] for field in LIST_FIELDS))
        else:
            admin.disable(args.email)
            print(f"disabled {args.email} and revoked their sessions (an ID token already issued expires within "
                  f"{admin.settings.id_token_minutes} minutes)")  # fmt: skip
        return 0

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main())
