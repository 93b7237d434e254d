"""ConfigStack: the model configuration in SSM Parameter Store, with real SecureString parameters."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.config.parameters import ConfigParameters, ConfigParametersProps
from constructs_lib.config.secure_parameter import (
    SecureParameter,
    SecureParameterProps,
    SecureParameterProvider,
    SecureParameterProviderProps,
)
from constructs_lib.guardrails.guardrail import StageGuardrail
from lambda_src.contracts import guardrail as g
from lambda_src.contracts import parameters
from lambda_src.contracts.naming import APP_NAME
from stacks.base import PlatformStack
from stacks.data_stack import DataStack
from stacks.stages import StageConfig


class ConfigStack(PlatformStack):
    """Parameter tree of one stage (``/llm-platform/<stage>/...``, names in lambda_src/contracts/parameters.py):

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
        self.key = self.stage_key(
            "ConfigKey", description=f"Encrypts the {stage.name} stage's SecureString parameters and config logs"
        )
        values = stage.model.parameter_values()
        strings = {p.leaf: values[p.field] for p in parameters.MODEL_PARAMETERS}
        descriptions = {p.leaf: p.description for p in parameters.MODEL_PARAMETERS}
        # The stage's guardrail, applied by version: its id, the numbered version and the stream scanning mode sit
        # beside the model settings, so the functions read them in the same call and an operator switches versions
        # with one put-parameter.
        self.guardrail: StageGuardrail | None = None
        if stage.guardrails.enabled:
            self.guardrail = StageGuardrail(self, "Guardrail", name=f"{APP_NAME}-{stage.name}", config=stage.guardrails)
            strings |= {g.ID_LEAF: self.guardrail.guardrail_id, g.VERSION_LEAF: self.guardrail.version_number,
                        g.STREAM_PROCESSING_LEAF: stage.guardrails.stream_processing}  # fmt: skip
            descriptions |= {
                g.ID_LEAF: "The stage's Bedrock Guardrail (its id)",
                g.VERSION_LEAF: "The guardrail's numbered version the API applies (never DRAFT)",
                g.STREAM_PROCESSING_LEAF: "How streamed answers are scanned: sync (can mask) or async",
            }
        self.model = ConfigParameters(
            self,
            "Model",
            props=ConfigParametersProps(
                path=parameters.parameter_name(stage.name, parameters.MODEL_PATH),
                strings=strings,
                descriptions=descriptions,
            ),
        )
        data_path, sources = parameters.DATA_SOURCES.rsplit("/", 1)
        self.data_sources = ConfigParameters(
            self,
            "Data",
            props=ConfigParametersProps(
                path=parameters.parameter_name(stage.name, data_path),
                strings={},
                string_lists={sources: data.dataset_uris},
                descriptions={sources: "s3:// URIs of the dataset prefixes LLM workloads read"},
            ),
        )

        provider = SecureParameterProvider(
            self,
            "SecureParameterProvider",
            props=SecureParameterProviderProps(
                key=self.key, log_retention_days=stage.log_retention_days, retain_logs=stage.retain_data
            ),
        )

        def secure(construct_id: str, name: str, value_kind: str, description: str) -> SecureParameter:
            return SecureParameter(
                self,
                construct_id,
                props=SecureParameterProps(
                    provider=provider,
                    key=self.key,
                    name=parameters.parameter_name(stage.name, name),
                    value_kind=value_kind,
                    description=description,
                    retain=stage.retain_data,
                ),
            )

        self.database_password = secure(
            "DatabasePassword", parameters.DATABASE_PASSWORD, "generated",
            "Database credential owned by the platform (generated at creation)",
        )  # fmt: skip
        self.upstream_api_key = secure(
            "UpstreamApiKey", parameters.UPSTREAM_API_KEY, "placeholder",
            "API key of the openai-compatible upstream (replace the placeholder)",
        )  # fmt: skip

        cdk.CfnOutput(self, "ParameterPath", value=stage.parameter_path, description="Root of this stage's parameters")
        cdk.CfnOutput(self, "ConfigKeyArn", value=self.key.key_arn, description="KMS key of the SecureStrings")
        cdk.CfnOutput(
            self,
            "UpstreamApiKeyParameter",
            value=self.upstream_api_key.parameter_name,
            description="Set the upstream API key here: aws ssm put-parameter --overwrite ...",
        )
