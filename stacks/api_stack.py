"""ApiStack: the authenticated REST API (stage v1), its authorizer and key registry, and the inference Lambda."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from constructs_lib.api_key_table import ApiKeyTable, ApiKeyTableProps
from constructs_lib.bedrock_access import invoke_statements
from constructs_lib.defaults import customer_managed_key
from constructs_lib.inference_api import InferenceApi, InferenceApiProps
from constructs_lib.nag import acknowledge
from constructs_lib.powertools_layer import PowertoolsLayer
from constructs_lib.python_function import PythonFunction, PythonFunctionProps
from constructs_lib.web_acl import ApiWebAcl, ApiWebAclProps
from stacks.audit_stack import AuditStack
from stacks.base import PlatformStack
from stacks.config_stack import ConfigStack
from stacks.stages import StageConfig

# API Gateway's integration timeout: the function may not outlive the request it answers.
FUNCTION_TIMEOUT = cdk.Duration.seconds(29)


class ApiStack(PlatformStack):
    """Attributes: ``api`` (InferenceApi), ``inference`` and ``authorizer`` (PythonFunction), ``key_table``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        config: ConfigStack,
        audit: AuditStack,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(scope, construct_id, stage=stage, purpose="authenticated inference API", env=env)
        api_config = stage.api
        self.key = customer_managed_key(
            self,
            "ApiKey",
            description=f"Encrypts the {stage.name} API's key registry and logs",
            retain=stage.retain_data,
            pending_window_days=stage.kms_pending_window_days,
        )
        self.key_table = ApiKeyTable(self, "Keys", props=ApiKeyTableProps(key=self.key, retain=stage.retain_data))
        powertools = PowertoolsLayer(self, "Powertools").layer

        def api_function(
            construct_id: str,
            *,
            package: str,
            description: str,
            timeout: cdk.Duration,
            memory_size: int,
            environment: dict[str, str],
        ) -> PythonFunction:
            """Shared settings of the API's functions: key, logs, concurrency, Powertools, invocation acks."""
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
                    reserved_concurrency=api_config.reserved_concurrency,
                    layers=(powertools,),
                    environment={"POWERTOOLS_METRICS_NAMESPACE": "LlmPlatform", "LOG_LEVEL": "INFO", **environment},
                ),
            )
            function.acknowledge_dlq_and_vpc(
                dlq_reason="API Gateway invokes this function synchronously and returns its error to the caller; "
                "a dead-letter queue only receives failed asynchronous invocations, which never happen here.",
                vpc_reason="The function only calls AWS APIs (Bedrock, SSM, DynamoDB) and the configured HTTPS "
                "upstream; the platform has no VPC, and one with endpoints and NAT would add cost without less "
                "exposure.",
            )
            return function

        self.authorizer = api_function(
            "Authorizer",
            package="authorizer",
            description="Validates Bearer API keys for the inference API",
            timeout=cdk.Duration.seconds(5),
            memory_size=256,
            environment={
                "POWERTOOLS_SERVICE_NAME": "llm-authorizer",
                "KEY_TABLE_NAME": self.key_table.table.table_name,
            },
        )
        self.authorizer.policy.add_statements(*self.key_table.lookup_statements())

        self.inference = api_function(
            "Inference",
            package="inference",
            description="OpenAI-compatible inference over Bedrock or an upstream",
            timeout=FUNCTION_TIMEOUT,
            memory_size=512,
            environment={
                "POWERTOOLS_SERVICE_NAME": "llm-inference",
                "MODEL_PARAMETER_PATH": config.model.path,
                "UPSTREAM_API_KEY_PARAMETER": config.upstream_api_key.parameter_name,
                "CONFIG_CACHE_SECONDS": str(api_config.config_cache_seconds),
                "MAX_BODY_BYTES": str(api_config.max_body_bytes),
                "CORS_ALLOWED_ORIGINS": json.dumps(list(api_config.cors_allowed_origins)),
                "AUDIT_STREAM_NAME": audit.audit.stream.delivery_stream_name,
                "AUDIT_MODE": stage.audit.mode,
                "AUDIT_CONTENT": stage.audit.content,
                "STAGE": stage.name,
            },
        )
        self.inference.policy.add_statements(
            *config.model.read_statements(),
            *config.upstream_api_key.read_statements(),
            *audit.audit.writer_statements(),
        )
        bedrock, wildcard_findings = invoke_statements(self, stage.model.bedrock_model_ids())
        self.inference.policy.add_statements(*bedrock)
        if wildcard_findings:
            acknowledge(
                self.inference.policy,
                "A cross-region inference profile routes each call to a region AWS picks, so the foundation "
                "model ARN has a region wildcard; the statement only applies through the configured profile.",
                wildcard_findings,
            )

        self.api = InferenceApi(
            self,
            "Api",
            props=InferenceApiProps(
                stage_name=stage.name,
                api=api_config,
                handler=self.inference.function,
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

        # Where `python -m tools.keys` finds the key table and the usage plans of this stage.
        tooling_path = f"{stage.parameter_path}/api"
        ssm.StringParameter(self, "KeyTableParameter", parameter_name=f"{tooling_path}/key-table",
                            string_value=self.key_table.table.table_name,
                            description="API key registry (DynamoDB table) of this stage")  # fmt: skip
        for name, plan in self.api.usage_plans.items():
            ssm.StringParameter(self, f"{name.title().replace('-', '')}PlanParameter",
                                parameter_name=f"{tooling_path}/usage-plans/{name}", string_value=plan.usage_plan_id,
                                description=f"Usage plan id of the {name} plan")  # fmt: skip

        cdk.CfnOutput(self, "InvokeUrl", value=self.api.rest_api.url,
                      description="base_url for the openai SDK (stage v1)")  # fmt: skip
        cdk.CfnOutput(self, "RestApiId", value=self.api.rest_api.rest_api_id)
        cdk.CfnOutput(self, "KeyTableName", value=self.key_table.table.table_name)
        cdk.CfnOutput(self, "AdminCommand", value=f"python -m tools.keys create --stage {stage.name} --owner NAME "
                      "--plan " + api_config.usage_plans[0].name)  # fmt: skip
