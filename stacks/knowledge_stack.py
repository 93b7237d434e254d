"""KnowledgeStack: the vector index, the manifest, the two third-party secrets and the weekly pipeline that
fills the index from the dataset bucket's knowledge prefix and YouTube playlists."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from constructs_lib.config.parameters import ConfigParameters, ConfigParametersProps
from constructs_lib.dataset.prefix_access import object_statements
from constructs_lib.foundation.nag import acknowledge, nag_ref
from constructs_lib.foundation.package_layer import KNOWLEDGE_PACKAGES, PackageLayer, PowertoolsLayer
from constructs_lib.foundation.python_function import PythonFunction, PythonFunctionProps
from constructs_lib.foundation.tables import TableProps
from constructs_lib.inference.bedrock_access import grant_invoke
from constructs_lib.knowledge.manifest_table import ManifestTable
from constructs_lib.knowledge.pipeline import IngestionPipeline, IngestionPipelineProps
from constructs_lib.knowledge.vector_store import VectorStore, VectorStoreProps
from lambda_src.contracts import knowledge, metrics, parameters
from lambda_src.contracts.environment import KnowledgeEnvironment
from stacks.base import PlatformStack
from stacks.config_stack import ConfigStack
from stacks.data_stack import DataStack
from stacks.stages import StageConfig

# How long secrets and embedding settings stay cached in a warm function.
CACHE_SECONDS = 300
STEP_DLQ_REASON = (
    "The state machine invokes this function synchronously, retries it with backoff and records "
    "what still fails in the manifest; a dead-letter queue only receives failed asynchronous "
    "invocations."
)
FRESHNESS_DLQ_REASON = (
    "EventBridge Scheduler invokes this check every few hours and Lambda retries it; a failed "
    "check leaves a gap the late-pipeline alarm counts as breaching, so a dead-letter queue would "
    "only hold an event with nothing to redo."
)


class KnowledgeStack(PlatformStack):
    """Attributes: ``vectors`` (VectorStore), ``manifest`` (ManifestTable), ``pipeline`` (IngestionPipeline),
    ``embedding`` (ConfigParameters: the embedding settings), ``youtube_secret``, ``proxy_secret``,
    ``functions`` (handler name -> PythonFunction: discover, ingest, report, freshness)."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: StageConfig, data: DataStack,
                 config: ConfigStack, env: cdk.Environment | None = None) -> None:  # fmt: skip
        super().__init__(scope, construct_id, stage=stage, purpose="knowledge base and its ingestion", env=env)
        settings = stage.knowledge
        self.key = self.stage_key(
            "KnowledgeKey",
            description=f"Encrypts the {stage.name} knowledge base: vectors, manifest, secrets, pipeline",
        )
        self.vectors = VectorStore(self, "Vectors", props=VectorStoreProps(
            key=self.key, dimension=settings.dimension, index_version=settings.index_version,
            retain=stage.retain_data))  # fmt: skip
        self.manifest = ManifestTable(self, "Manifest",
                                      props=TableProps(key=self.key, retain=stage.retain_data))  # fmt: skip
        # Work lists of runs (one JSON file each); rewritten every run, so the stage's retention does not apply.
        work = self.secure_bucket("Work", purpose="knowledge-work", retain=False, encryption_key=self.key)

        self.youtube_secret = self._secret("YoutubeApiKey", "api_key", "YouTube Data API v3 key of the pipeline")
        self.proxy_secret = self._secret("YoutubeProxy", "https_url",
                                         "Optional proxy for YouTube transcripts: {http_url, https_url}")  # fmt: skip

        self.embedding = ConfigParameters(self, "Embedding", props=ConfigParametersProps(
            path=parameters.parameter_name(stage.name, knowledge.EMBEDDING_PATH),
            strings={"provider": settings.embedding_provider, "model-id": settings.embedding_model_id,
                     "base-url": stage.model.upstream_base_url},
            descriptions={"provider": "bedrock or openai-compatible",
                          "model-id": "Embedding model (Titan Text Embeddings V2 on Bedrock)",
                          "base-url": "Base URL of the openai-compatible embeddings upstream"}))  # fmt: skip

        environment = KnowledgeEnvironment(
            manifest_table_name=self.manifest.table.table_name,
            dataset_bucket=data.bucket.bucket_name,
            knowledge_prefix=settings.prefix,
            work_bucket=work.bucket.bucket_name,
            vector_index_arn=self.vectors.index_arn,
            dimension=settings.dimension,
            embedding_parameter_path=self.embedding.path,
            upstream_api_key_parameter=config.upstream_api_key.parameter_name,
            youtube_secret_arn=self.youtube_secret.secret_arn,
            proxy_secret_arn=self.proxy_secret.secret_arn,
            playlist_ids=settings.youtube_playlist_ids,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap_tokens=settings.chunk_overlap_tokens,
            embedding_batch_size=settings.embedding_batch_size,
            max_document_bytes=settings.max_document_bytes,
            failure_threshold_percent=settings.failure_threshold_percent,
            config_cache_seconds=CACHE_SECONDS,
            stage=stage.name,
        ).variables()
        layers = (PowertoolsLayer(self, "Powertools").layer,
                  PackageLayer(self, "Readers", packages=KNOWLEDGE_PACKAGES, name="knowledge-readers",
                               description="pypdf, youtube-transcript-api, requests (pinned in requirements.txt)").layer)  # fmt: skip  # noqa: E501

        discover = self._function("Discover", "discover", "Lists the knowledge sources and diffs them against the "
                                  "manifest", environment, layers, timeout=300, memory=512, concurrency=2)  # fmt: skip
        ingest = self._function("Ingest", "ingest", "Fetches, chunks, embeds and stores one knowledge document",
                                environment, layers, timeout=600, memory=1024,
                                concurrency=settings.max_concurrency + 1)  # fmt: skip
        report = self._function("Report", "report", "Closes a knowledge pipeline run and applies its failure "
                                "threshold", environment, layers, timeout=60, memory=256, concurrency=2)  # fmt: skip
        freshness = self._function("Freshness", "freshness", "Reports how many days ago a knowledge pipeline run last "
                                   "succeeded", environment, layers, timeout=60, memory=256, concurrency=1,
                                   dlq_reason=FRESHNESS_DLQ_REASON)  # fmt: skip

        # Discover: list the prefix, read the manifest, open the run, write the work list, read the YouTube key.
        discover.role.add_managed_policy(data.knowledge_access.list_policy)
        ingest.role.add_managed_policy(data.knowledge_access.read_policy)
        self.manifest.grant(discover, ["dynamodb:Query", "dynamodb:PutItem"])
        for statement in object_statements(
            work.bucket,
            self.key,
            knowledge.WORK_PREFIX,
            object_actions=["s3:PutObject"],
            key_actions=["kms:GenerateDataKey"],
        ):
            discover.add_to_policy(statement)
        acknowledge(discover.policy, "Each run writes its own work list under the work prefix; the run's name is "
                    "chosen by Step Functions at run time, so the object ARN ends in the prefix wildcard.",
                    [f"AwsSolutions-IAM5[Resource::{nag_ref(work.bucket)}/{knowledge.WORK_PREFIX}*]"])  # fmt: skip
        self.youtube_secret.grant_read(discover)
        self.vectors.grant_write(discover)  # the vectors of a file that is now skipped
        # Ingest: read one document, embed it, write its vectors and its manifest item, count it in the run.
        self.manifest.grant(ingest, ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                     "dynamodb:DeleteItem"])  # fmt: skip
        self.vectors.grant_write(ingest)
        self.proxy_secret.grant_read(ingest)
        grant_invoke(self, ingest, [knowledge.TITAN_V2], actions=["bedrock:InvokeModel"])
        config.upstream_api_key.grant_read(ingest)
        self.embedding.grant_read(ingest)
        # Report: read and close the run.
        self.manifest.grant(report, ["dynamodb:GetItem", "dynamodb:UpdateItem"])
        # Freshness: read the newest runs, and when the table was made (no run succeeded yet).
        self.manifest.grant(freshness, ["dynamodb:Query", "dynamodb:DescribeTable"])

        self.functions = {"discover": discover, "ingest": ingest, "report": report, "freshness": freshness}
        self.pipeline = IngestionPipeline(self, "Pipeline", props=IngestionPipelineProps(
            discover=discover.function, ingest=ingest.function, report=report.function,
            freshness=freshness.function, work_bucket=work.bucket,
            settings=settings, key=self.key, log_retention_days=stage.log_retention_days,
            retain_logs=stage.retain_data))  # fmt: skip

        for name, value, description in (
            (knowledge.STATE_MACHINE_PARAMETER, self.pipeline.state_machine.state_machine_arn,
             "The knowledge pipeline's state machine"),
            (knowledge.MANIFEST_PARAMETER, self.manifest.table.table_name, "The knowledge manifest table"),
        ):  # fmt: skip
            ssm.StringParameter(self, name.split("/")[-1].title().replace("-", "") + "Parameter",
                                parameter_name=parameters.parameter_name(stage.name, name), string_value=value,
                                description=description)  # fmt: skip

        cdk.CfnOutput(self, "StateMachineArn", value=self.pipeline.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "VectorIndexArn", value=self.vectors.index_arn)
        cdk.CfnOutput(self, "YoutubeSecretArn", value=self.youtube_secret.secret_arn,
                      description='Set {"api_key": "..."} here to ingest the configured playlists')  # fmt: skip

    def search_environment(self) -> dict[str, Any]:
        """What a function searching the knowledge base is told (fields of the functions' environments): the
        embedding settings' path, the index, its dimension, the embedding batch size."""
        settings = self.stage.knowledge
        return {"embedding_parameter_path": self.embedding.path, "vector_index_arn": self.vectors.index_arn,
                "dimension": settings.dimension, "embedding_batch_size": settings.embedding_batch_size}  # fmt: skip

    def grant_search(self, grantee: iam.IGrantable) -> None:
        """Search the knowledge base: read the embedding settings, embed a query with Titan V2, query the index.
        (An openai-compatible embedding provider's key is the stage's upstream key: grant that beside.)"""
        self.vectors.grant_read(grantee)
        self.embedding.grant_read(grantee)
        grant_invoke(self, grantee, [knowledge.TITAN_V2], actions=["bedrock:InvokeModel"])

    def _secret(self, construct_id: str, field: str, description: str) -> secretsmanager.Secret:
        """A secret the operator fills in; created holding a placeholder (generated, never in the template)."""
        secret = secretsmanager.Secret(
            self,
            construct_id,
            description=f"{description} (set by an operator; holds a placeholder until then)",
            encryption_key=self.key,
            removal_policy=cdk.RemovalPolicy.RETAIN if self.stage.retain_data else cdk.RemovalPolicy.DESTROY,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({field: parameters.PLACEHOLDER_PREFIX + field}),
                generate_string_key="placeholder_nonce",
                exclude_punctuation=True,
            ),
        )
        acknowledge(
            secret,
            "The secret holds a third party's credential (a YouTube API key or a proxy login) that only its issuer "
            "can rotate; Secrets Manager has no rotation function for it, so rotation is the operator's step.",
            ["AwsSolutions-SMG4", "NIST.800.53.R5-SecretsManagerRotationEnabled",
             "HIPAA.Security-SecretsManagerRotationEnabled"],
        )  # fmt: skip
        return secret

    def _function(self, construct_id: str, handler: str, description: str, environment: dict[str, str],
                  layers: tuple[cdk.aws_lambda.ILayerVersion, ...], *, timeout: int, memory: int,
                  concurrency: int, dlq_reason: str = STEP_DLQ_REASON) -> PythonFunction:  # fmt: skip
        stage = self.stage
        function = PythonFunction(self, construct_id, props=PythonFunctionProps(
            package="knowledge", handler=handler, description=description, timeout=cdk.Duration.seconds(timeout),
            memory_size=memory, log_key=self.key, log_retention_days=stage.log_retention_days,
            retain_logs=stage.retain_data, reserved_concurrency=concurrency, layers=layers,
            environment={"LOG_LEVEL": "INFO", "POWERTOOLS_SERVICE_NAME": metrics.service_name(f"knowledge-{handler}"),
                         **environment}))  # fmt: skip
        function.acknowledge_dlq_and_vpc(
            dlq_reason=dlq_reason,
            vpc_reason="The function calls AWS APIs (S3, S3 Vectors, DynamoDB, Bedrock, Secrets Manager) and YouTube "
            "over HTTPS; the platform has no VPC, and one with endpoints and NAT would add idle cost.",
        )
        return function
