"""ApiStack: the authenticated REST API (stage v1), its authorizer and key registry, and the functions
that serve the route table (lambda_src/contracts/api.py)."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from constructs_lib.foundation.nag import acknowledge
from constructs_lib.foundation.package_layer import PowertoolsLayer
from constructs_lib.foundation.python_function import PythonFunction, PythonFunctionProps
from constructs_lib.foundation.tables import TableProps
from constructs_lib.guardrails.guardrail import StageGuardrail
from constructs_lib.inference.bedrock_access import grant_invoke
from constructs_lib.inference.key_table import ApiKeyTable
from constructs_lib.inference.rest_api import InferenceApi, InferenceApiProps
from constructs_lib.inference.usage_table import SPEND_ACTIONS, UsageTable
from constructs_lib.inference.web_acl import ApiWebAcl, ApiWebAclProps
from constructs_lib.web.site_config import SiteConfig, SiteConfigProps
from lambda_src.contracts import guardrail as g
from lambda_src.contracts import metrics, parameters
from lambda_src.contracts.environment import (
    AuthorizerEnvironment,
    ChatEnvironment,
    InferenceEnvironment,
    RetrievalEnvironment,
)
from stacks.audit_stack import AuditStack
from stacks.base import PlatformStack
from stacks.chat_stack import ChatStack
from stacks.config_stack import ConfigStack
from stacks.knowledge_stack import KnowledgeStack
from stacks.stages import StageConfig
from stacks.web_stack import WebStack

# API Gateway's integration timeout: the function may not outlive the request it answers.
FUNCTION_TIMEOUT = cdk.Duration.seconds(29)
# The wrapper script AWS_LAMBDA_EXEC_WRAPPER names: it starts the project's Runtime API loop (response streaming)
# in place of the managed runtime's own (lambda_src/shared/runtime).
STREAMING_WRAPPER = "/var/task/lambda_src/shared/runtime/wrapper"


class ApiStack(PlatformStack):
    """Attributes: ``api`` (InferenceApi), ``inference``, ``retrieval`` and ``authorizer`` (PythonFunction),
    ``usage_table``, ``key_table``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        config: ConfigStack,
        audit: AuditStack,
        knowledge: KnowledgeStack,
        chat: ChatStack,
        web: WebStack | None = None,
        env: cdk.Environment | None = None,
    ) -> None:
        """``web``: the chat app's site; its browser origins (the distribution's domain, a token) are allowed by CORS
        beside the stage's ``api.cors_allowed_origins``, and its config.json is written here, after the API."""
        super().__init__(scope, construct_id, stage=stage, purpose="authenticated inference API", env=env)
        web_origins = web.origins if web is not None else ()
        self.cors_origins = (*stage.api.cors_allowed_origins, *web_origins)
        api_config = stage.api
        self.key = self.stage_key("ApiKey", description=f"Encrypts the {stage.name} API's key registry and logs")
        self.key_table = ApiKeyTable(self, "Keys", props=TableProps(key=self.key, retain=stage.retain_data))
        # Token and cost budgets of keys and signed-in users (lambda_src/contracts/spend.py).
        self.usage_table = UsageTable(self, "Usage", props=TableProps(key=self.key, retain=stage.retain_data))
        powertools = PowertoolsLayer(self, "Powertools").layer

        self.authorizer = self._function(
            "Authorizer",
            package="authorizer",
            description="Validates Bearer API keys for the inference API",
            timeout=cdk.Duration.seconds(5),
            memory_size=256,
            layer=powertools,
            environment={
                "POWERTOOLS_SERVICE_NAME": metrics.service_name("authorizer"),
                **AuthorizerEnvironment(key_table_name=self.key_table.table.table_name).variables(),
            },
        )
        self.key_table.grant_lookup(self.authorizer)

        streaming = api_config.streaming
        stream_timeout = api_config.stream_timeout_seconds if streaming else 0
        self.inference = self._function(
            "Inference",
            package="inference",
            description="OpenAI-compatible inference over Bedrock or an upstream",
            stream_seconds=stream_timeout,
            memory_size=512,
            layer=powertools,
            environment={
                "POWERTOOLS_SERVICE_NAME": metrics.service_name("inference"),
                **InferenceEnvironment(
                    model_parameter_path=config.model.path,
                    upstream_api_key_parameter=config.upstream_api_key.parameter_name,
                    stream_timeout_seconds=stream_timeout,
                    **self._request_environment(audit),
                    usage_table_name=self.usage_table.table.table_name,
                    plan_budgets=json.dumps({plan.name: plan.budget._asdict() for plan in api_config.usage_plans}),
                    apply_guardrail=int(self._guardrail(config, g.FAMILY_INFERENCE) is not None),
                ).variables(),
            },
        )
        self._grant_guardrail(self.inference, config, g.FAMILY_INFERENCE)
        self.usage_table.grant(self.inference, SPEND_ACTIONS)
        config.upstream_api_key.grant_read(self.inference)
        audit.audit.grant_write(self.inference)
        self._grant_model(self.inference, config)

        self.retrieval = self._retrieval(config, audit, knowledge, powertools)
        self.chat = self._chat(config, audit, knowledge, chat, layer=powertools, stream_timeout=stream_timeout)

        self.api = InferenceApi(
            self,
            "Api",
            props=InferenceApiProps(
                stage_name=stage.name,
                api=api_config,
                functions={
                    "inference": self.inference.function,
                    "retrieval": self.retrieval.function,
                    "chat": self.chat.function,
                },
                streaming_functions=frozenset({"inference", "chat"}) if streaming else frozenset(),
                user_pool=chat.users.pool,
                web_origins=web_origins,
                authorizer=self.authorizer.function,
                log_key=self.key,
                log_retention_days=stage.log_retention_days,
                retain_logs=stage.retain_data,
            ),
        )

        if api_config.waf_enabled:
            ApiWebAcl(
                self,
                "Firewall",
                props=ApiWebAclProps(
                    stage_arn=self.api.stage.stage_arn,
                    rate_limit=api_config.waf_rate_limit,
                    metric_prefix=stage.stack_name("api"),
                    log_key=self.key,
                    log_retention_days=stage.log_retention_days,
                    retain_logs=stage.retain_data,
                ),
            )

        if web is not None:
            self.web_config = self._web_config(web, chat)

        # Where `python -m tools.keys` finds the key table and the usage plans of this stage.
        ssm.StringParameter(self, "KeyTableParameter",
                            parameter_name=parameters.parameter_name(stage.name, parameters.KEY_TABLE),
                            string_value=self.key_table.table.table_name,
                            description="API key registry (DynamoDB table) of this stage")  # fmt: skip
        for name, plan in self.api.usage_plans.items():
            ssm.StringParameter(
                self,
                f"{name.title().replace('-', '')}PlanParameter",
                parameter_name=parameters.parameter_name(stage.name, f"{parameters.USAGE_PLANS}/{name}"),
                string_value=plan.usage_plan_id,
                description=f"Usage plan id of the {name} plan",
            )

        cdk.CfnOutput(self, "InvokeUrl", value=self.api.rest_api.url,
                      description="base_url for the openai SDK (stage v1)")  # fmt: skip
        cdk.CfnOutput(self, "RestApiId", value=self.api.rest_api.rest_api_id)
        ssm.StringParameter(self, "UsageTableParameter",
                            parameter_name=parameters.parameter_name(stage.name, parameters.USAGE_TABLE),
                            string_value=self.usage_table.table.table_name,
                            description="Token and cost budgets' usage table of this stage")  # fmt: skip
        cdk.CfnOutput(self, "KeyTableName", value=self.key_table.table.table_name)
        cdk.CfnOutput(self, "AdminCommand", value=f"python -m tools.keys create --stage {stage.name} --owner NAME "
                      "--plan " + api_config.usage_plans[0].name)  # fmt: skip

    def _web_config(self, web: WebStack, chat: ChatStack) -> SiteConfig:
        """The web app's config.json: this API's URL and the user pool's ids, into the site bucket."""
        values = {"stage": self.stage.name, "region": self.region, "apiUrl": self.api.rest_api.url,
                  "cognitoEndpoint": f"https://cognito-idp.{self.region}.{self.url_suffix}/",
                  "userPoolId": chat.users.pool.user_pool_id,
                  "clientId": chat.users.client.user_pool_client_id}  # fmt: skip
        return SiteConfig(self, "WebConfig", props=SiteConfigProps(
            bucket=web.bucket, key=web.key, log_key=self.key, values=values, retain=self.stage.retain_data,
            log_retention_days=self.stage.log_retention_days))  # fmt: skip

    def _retrieval(self, config: ConfigStack, audit: AuditStack, knowledge: KnowledgeStack,
                   layer: cdk.aws_lambda.ILayerVersion) -> PythonFunction:  # fmt: skip
        """POST /embeddings and /retrieve: the knowledge base's embedding model and a read of its index, no chat
        model, no write anywhere but the audit stream."""
        function = self._function(
            "Retrieval",
            package="retrieval",
            description="Embeddings and knowledge base retrieval for API clients",
            memory_size=512,
            layer=layer,
            environment={
                "POWERTOOLS_SERVICE_NAME": metrics.service_name("retrieval"),
                **RetrievalEnvironment(
                    upstream_api_key_parameter=config.upstream_api_key.parameter_name,
                    **knowledge.search_environment(),
                    **self._request_environment(audit),
                ).variables(),
            },
        )
        knowledge.grant_search(function)
        config.upstream_api_key.grant_read(function)
        audit.audit.grant_write(function)
        return function

    def _chat(self, config: ConfigStack, audit: AuditStack, knowledge: KnowledgeStack, chat: ChatStack, *,
              layer: cdk.aws_lambda.ILayerVersion, stream_timeout: int) -> PythonFunction:  # fmt: skip
        """The conversation routes: the history table, a read of the knowledge index and its embedding model, the
        chat model, the audit stream."""
        stage = self.stage
        settings = stage.chat
        function = self._function(
            "Chat",
            package="chat",
            description="Signed-in users' conversations, answered from the knowledge base with citations",
            stream_seconds=stream_timeout,
            memory_size=512,
            layer=layer,
            environment={
                "POWERTOOLS_SERVICE_NAME": metrics.service_name("chat"),
                **ChatEnvironment(
                    history_table_name=chat.history.table.table_name,
                    model_parameter_path=config.model.path,
                    upstream_api_key_parameter=config.upstream_api_key.parameter_name,
                    stream_timeout_seconds=stream_timeout,
                    **knowledge.search_environment(),
                    **self._request_environment(audit),
                    history_retention_days=settings.history_retention_days,
                    retrieval_top_k=settings.retrieval_top_k,
                    history_messages=settings.history_messages,
                    usage_table_name=self.usage_table.table.table_name,
                    user_budget=json.dumps(settings.user_budget._asdict()),
                    apply_guardrail=int(self._guardrail(config, g.FAMILY_CHAT) is not None),
                ).variables(),
            },
        )
        self._grant_guardrail(function, config, g.FAMILY_CHAT)
        self.usage_table.grant(function, ["dynamodb:UpdateItem"])
        chat.history.grant(function, ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                      "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:BatchWriteItem"])  # fmt: skip
        knowledge.grant_search(function)
        config.upstream_api_key.grant_read(function)
        audit.audit.grant_write(function)
        self._grant_model(function, config)
        return function

    def _guardrail(self, config: ConfigStack, family: str) -> StageGuardrail | None:
        """The stage's guardrail when this route family applies it."""
        return config.guardrail if family in self.stage.guardrails.families() else None

    def _grant_guardrail(self, function: PythonFunction, config: ConfigStack, family: str) -> None:
        """``bedrock:ApplyGuardrail`` on exactly the stage's guardrail, for a route family that applies it."""
        guardrail = self._guardrail(config, family)
        if guardrail is not None:
            guardrail.grant_apply(function)

    def _request_environment(self, audit: AuditStack) -> dict[str, Any]:
        """What every function serving API requests is told: its config cache, body limit, CORS origins, audit."""
        stage = self.stage
        return {"config_cache_seconds": stage.api.config_cache_seconds, "max_body_bytes": stage.api.max_body_bytes,
                "cors_allowed_origins": self.cors_origins, "audit_stream_name": audit.audit.stream.delivery_stream_name,
                "audit_mode": stage.audit.mode, "audit_content": stage.audit.content, "stage": stage.name}  # fmt: skip

    def _grant_model(self, function: PythonFunction, config: ConfigStack) -> None:
        """The model settings (read as one tree) and the stage's chat models, buffered and streamed (cross-region
        profiles: their acknowledged wildcard)."""
        config.model.grant_read_by_path(function)
        wildcard_findings = grant_invoke(self, function, self.stage.model.bedrock_model_ids())
        if wildcard_findings:
            acknowledge(
                function.policy,
                "A cross-region inference profile routes each call to a region AWS picks, so the foundation "
                "model ARN has a region wildcard; the statement only applies through the configured profile.",
                wildcard_findings,
            )

    def _function(self, construct_id: str, *, package: str, description: str, memory_size: int,
                  layer: cdk.aws_lambda.ILayerVersion, environment: dict[str, str],
                  timeout: cdk.Duration = FUNCTION_TIMEOUT, stream_seconds: int = 0) -> PythonFunction:  # fmt: skip
        """Shared settings of the API's functions: key, logs, concurrency, Powertools, invocation acks.
        ``stream_seconds`` > 0: the function answers behind a STREAM integration for up to that long, under the
        project's Runtime API loop (the wrapper script); otherwise within API Gateway's ``timeout``."""
        stage = self.stage
        if stream_seconds:
            timeout = cdk.Duration.seconds(stream_seconds)
            environment = {**environment, "AWS_LAMBDA_EXEC_WRAPPER": STREAMING_WRAPPER}
        function = PythonFunction(
            self,
            construct_id,
            props=PythonFunctionProps(
                package=package,
                description=description,
                timeout=timeout,
                memory_size=memory_size,
                log_key=self.key,
                log_retention_days=stage.log_retention_days,
                retain_logs=stage.retain_data,
                reserved_concurrency=stage.api.reserved_concurrency,
                layers=(layer,),
                environment={"LOG_LEVEL": "INFO", **environment},
            ),
        )
        function.acknowledge_dlq_and_vpc(
            dlq_reason="API Gateway invokes this function synchronously and returns its error to the caller; "
            "a dead-letter queue only receives failed asynchronous invocations, which never happen here.",
            vpc_reason="The function only calls AWS APIs (Bedrock, SSM, DynamoDB, S3 Vectors) and the configured HTTPS "
            "upstream; the platform has no VPC, and one with endpoints and NAT would add cost without less "
            "exposure.",
        )
        return function
