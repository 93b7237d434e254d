"""ConfigStack: the model configuration in SSM Parameter Store, with real SecureString parameters."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.config_parameters import ConfigParameters, ConfigParametersProps
from constructs_lib.defaults import customer_managed_key
from constructs_lib.secure_parameter import (
    SecureParameter,
    SecureParameterProps,
    SecureParameterProvider,
    SecureParameterProviderProps,
)
from stacks.base import PlatformStack
from stacks.data_stack import DataStack
from stacks.stages import StageConfig


class ConfigStack(PlatformStack):
    """Parameter tree of one stage (``/llm-platform/<stage>/...``):

    - ``model/*`` String parameters the inference API reads;
    - ``data/sources`` StringList of the dataset ``s3://`` URIs from DataStack;
    - ``secrets/database-password`` (generated) and ``secrets/upstream-api-key`` (placeholder the
      operator replaces): SecureStrings encrypted with this stack's customer-managed key.

    Attributes: ``key``, ``model`` (ConfigParameters), ``data_sources``, ``database_password``,
    ``upstream_api_key`` (SecureParameter).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        data: DataStack,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(
            scope, construct_id, stage=stage, purpose="model configuration and secrets in SSM Parameter Store", env=env
        )
        self.key = customer_managed_key(
            self,
            "ConfigKey",
            description=f"Encrypts the {stage.name} stage's SecureString parameters and config logs",
            retain=stage.retain_data,
            pending_window_days=stage.kms_pending_window_days,
        )
        model = stage.model
        root = stage.parameter_path
        self.model = ConfigParameters(
            self,
            "Model",
            props=ConfigParametersProps(
                path=f"{root}/model",
                strings={
                    "id": model.model_id,
                    "provider": model.provider,
                    "temperature": str(model.temperature),
                    "top-p": str(model.top_p),
                    "max-output-tokens": str(model.max_output_tokens),
                    "request-timeout-seconds": str(model.request_timeout_seconds),
                    "system-prompt": model.system_prompt,
                    "learning-rate": str(model.learning_rate),
                    "upstream-base-url": model.upstream_base_url,
                },
                descriptions={
                    "id": "Bedrock model id or inference-profile id (or the upstream's model name)",
                    "provider": "bedrock or openai-compatible",
                    "temperature": "Sampling temperature, 0 to 1",
                    "top-p": "Nucleus sampling, greater than 0 and at most 1",
                    "max-output-tokens": "Upper bound on generated tokens per request",
                    "request-timeout-seconds": "Timeout of one model call",
                    "system-prompt": "System prompt sent with every conversation",
                    "learning-rate": "Training learning rate",
                    "upstream-base-url": "Base URL of the openai-compatible upstream",
                },
            ),
        )
        self.data_sources = ConfigParameters(
            self,
            "Data",
            props=ConfigParametersProps(
                path=f"{root}/data",
                strings={},
                string_lists={"sources": data.dataset_uris},
                descriptions={"sources": "s3:// URIs of the dataset prefixes LLM workloads read"},
            ),
        )

        provider = SecureParameterProvider(
            self,
            "SecureParameterProvider",
            props=SecureParameterProviderProps(
                key=self.key, log_retention_days=stage.log_retention_days, retain_logs=stage.retain_data
            ),
        )
        self.database_password = SecureParameter(
            self,
            "DatabasePassword",
            props=SecureParameterProps(
                provider=provider,
                key=self.key,
                name=f"{root}/secrets/database-password",
                value_kind="generated",
                description="Database credential owned by the platform (generated at creation)",
                retain=stage.retain_data,
            ),
        )
        self.upstream_api_key = SecureParameter(
            self,
            "UpstreamApiKey",
            props=SecureParameterProps(
                provider=provider,
                key=self.key,
                name=f"{root}/secrets/upstream-api-key",
                value_kind="placeholder",
                description="API key of the openai-compatible upstream (replace the placeholder)",
                retain=stage.retain_data,
            ),
        )

        cdk.CfnOutput(self, "ParameterPath", value=root, description="Root of this stage's parameters")
        cdk.CfnOutput(self, "ConfigKeyArn", value=self.key.key_arn, description="KMS key of the SecureStrings")
        cdk.CfnOutput(
            self,
            "UpstreamApiKeyParameter",
            value=self.upstream_api_key.parameter_name,
            description="Set the upstream API key here: aws ssm put-parameter --overwrite ...",
        )
