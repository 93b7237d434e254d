"""Sign a chat user in to the local platform's user pool with SRP (the flow the browser's app client allows),
through pycognito's SRP client against the emulator, and print the ID token the conversation routes take.

    .venv/bin/python -m tools.local.sign_in --email local-user@example.com --password '...'
    curl -s http://127.0.0.1:8080/v1/conversations -H "Authorization: $(...)"

The ID token is the whole Authorization header value, as API Gateway's Cognito authorizer reads it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lambda_src.contracts import chat, parameters
from tools.local.deploy import clients
from tools.local.processes import Ports

STAGE = "dev"


def id_token(cognito: Any, pool_id: str, client_id: str, email: str, password: str) -> str:
    from pycognito.aws_srp import AWSSRP  # noqa: PLC0415 - a dev dependency, loaded where a user signs in

    answer = AWSSRP(username=email, password=password, pool_id=pool_id, client_id=client_id,
                    client=cognito).authenticate_user()  # fmt: skip
    return str(answer["AuthenticationResult"]["IdToken"])


def pool_and_client(client: Any) -> tuple[str, str]:
    """The stage's user pool and browser client, from the parameters the chat stack writes."""
    ssm = client("ssm")
    values = [ssm.get_parameter(Name=parameters.parameter_name(STAGE, name))["Parameter"]["Value"]
              for name in (chat.USER_POOL_PARAMETER, chat.CLIENT_PARAMETER)]  # fmt: skip
    return str(values[0]), str(values[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local.sign_in", description=__doc__.splitlines()[0])
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args(argv)
    client = clients(Ports.from_environment().emulator)
    pool_id, client_id = pool_and_client(client)
    try:
        print(id_token(client("cognito-idp"), pool_id, client_id, args.email, args.password))
    except Exception as error:  # the service's own sentence (NotAuthorizedException: Incorrect username or password.)
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
