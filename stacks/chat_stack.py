"""ChatStack: the people who sign in to the chat (a Cognito user pool and the browser's app client) and the
history of their conversations. The chat routes and their function live in the api stack, beside the API."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from constructs_lib.chat.history_table import HistoryTable
from constructs_lib.chat.user_pool import ChatUsers, ChatUsersProps
from constructs_lib.foundation.tables import TableProps
from lambda_src.contracts import chat, parameters
from stacks.base import PlatformStack
from stacks.stages import StageConfig


class ChatStack(PlatformStack):
    """Attributes: ``users`` (ChatUsers: ``pool``, ``client``, ``domain``), ``history`` (HistoryTable), ``key``."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: StageConfig,
                 env: cdk.Environment | None = None) -> None:  # fmt: skip
        super().__init__(scope, construct_id, stage=stage, purpose="chat users and conversation history", env=env)
        self.key = self.stage_key("ChatKey", description=f"Encrypts the {stage.name} chat users' conversations")
        self.users = ChatUsers(self, "Users", props=ChatUsersProps(settings=stage.chat, stage_name=stage.name,
                                                                   retain=stage.retain_data))  # fmt: skip
        self.history = HistoryTable(self, "History", props=TableProps(key=self.key, retain=stage.retain_data))
        for parameter_id, name, value, description in (
            ("UserPoolParameter", chat.USER_POOL_PARAMETER, self.users.pool.user_pool_id, "The chat's user pool"),
            ("WebClientParameter", chat.CLIENT_PARAMETER, self.users.client.user_pool_client_id,
             "The browser's app client of the chat's user pool"),
        ):  # fmt: skip
            ssm.StringParameter(self, parameter_id, parameter_name=parameters.parameter_name(stage.name, name),
                                string_value=value, description=description)  # fmt: skip
        cdk.CfnOutput(self, "UserPoolId", value=self.users.pool.user_pool_id)
        cdk.CfnOutput(self, "WebClientId", value=self.users.client.user_pool_client_id)
        cdk.CfnOutput(self, "HistoryTableName", value=self.history.table.table_name)
        if self.users.domain is not None:
            cdk.CfnOutput(self, "LoginDomain", value=self.users.domain.base_url())
        cdk.CfnOutput(self, "AdminCommand", value=f"python -m tools.users create --stage {stage.name} --email EMAIL")
