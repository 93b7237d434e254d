"""The weekly ingestion pipeline: EventBridge Scheduler starts a Standard state machine,

    Discover -> Documents (Distributed Map over the work list in S3, bounded concurrency)
                   Ingest (retried with backoff) --catch--> RecordFailure
             -> Report (fails the run past the failure threshold)

Discover writes the work list to the work bucket and the Map reads it from there (a Distributed Map: its
items are not bound by the 256 KB state payload, and each document is a child execution with its own
history, so a large knowledge base does not reach the 25,000-event limit of one execution).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from constructs_lib.foundation.logs import encrypted_log_group
from constructs_lib.foundation.nag import acknowledge, logical_id, nag_ref
from constructs_lib.foundation.python_function import ManagedPolicyRole
from constructs_lib.knowledge.settings import KnowledgeConfig
from lambda_src.contracts.knowledge import FRESHNESS_CHECK_HOURS, TRANSIENT_ERROR

# Lambda's own transient errors, retried like the functions' TransientError.
_LAMBDA_ERRORS = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                  "Lambda.TooManyRequestsException", "Lambda.Unknown"]  # fmt: skip
RUN_TIMEOUT = cdk.Duration.hours(12)


class _InvokeFunction(targets.LambdaInvoke):
    """CDK's LambdaInvoke schedule target, its role allowed to invoke the function itself only (CDK's also allows
    every version, ``ARN:*``, which the schedule never calls)."""

    def __init__(self, function: lambda_.IFunction, **props: Any) -> None:
        super().__init__(function, **props)
        self._function_arn = function.function_arn

    def _add_target_action_to_role(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self._function_arn])
        )


@dataclass(frozen=True, kw_only=True)
class IngestionPipelineProps:
    discover: lambda_.IFunction
    ingest: lambda_.IFunction
    report: lambda_.IFunction
    # Called every FRESHNESS_CHECK_HOURS by a schedule of its own: how long ago a run last succeeded (a metric).
    freshness: lambda_.IFunction
    work_bucket: s3.IBucket
    settings: KnowledgeConfig
    key: kms.Key
    log_retention_days: int
    retain_logs: bool


class IngestionPipeline(Construct):
    """Attributes: ``state_machine``, ``schedule``, ``freshness_schedule``, ``dead_letter_queue``, ``log_group``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: IngestionPipelineProps) -> None:
        super().__init__(scope, construct_id)
        settings = props.settings

        discover = self._invoke("Discover", props.discover, {
            "execution": sfn.JsonPath.string_at("$$.Execution.Name"),
            "started_at": sfn.JsonPath.string_at("$$.Execution.StartTime"),
        }, result_selector={"run_id": sfn.JsonPath.string_at("$.Payload.run_id"),
                            "items_key": sfn.JsonPath.string_at("$.Payload.items_key"),
                            "total": sfn.JsonPath.number_at("$.Payload.total")})  # fmt: skip
        ingest = self._invoke("Ingest", props.ingest, {"item": sfn.JsonPath.object_at("$.item")})
        record_failure = self._invoke("RecordFailure", props.ingest, {
            "item": sfn.JsonPath.object_at("$.item"), "error": sfn.JsonPath.object_at("$.error")})  # fmt: skip
        ingest.add_catch(record_failure, errors=[sfn.Errors.ALL], result_path="$.error")

        documents = sfn.DistributedMap(
            self,
            "Documents",
            item_reader=sfn.S3JsonItemReader(bucket=props.work_bucket, key=sfn.JsonPath.string_at("$.items_key")),
            item_selector={"item": sfn.JsonPath.object_at("$$.Map.Item.Value")},
            max_concurrency=settings.max_concurrency,
            map_execution_type=sfn.StateMachineType.STANDARD,
            result_path=sfn.JsonPath.DISCARD,
        )
        documents.item_processor(ingest)
        report = self._invoke("Report", props.report, {"run_id": sfn.JsonPath.string_at("$.run_id")})
        # Whatever stops the Map, the run is still closed (the report counts what was not done as failed).
        documents.add_catch(report, errors=[sfn.Errors.ALL], result_path="$.map_error")

        role = ManagedPolicyRole(self, "Role", policy_id="Policy", description="Runs the knowledge pipeline",
                                 assumed_by=iam.ServicePrincipal("states.amazonaws.com"))  # fmt: skip
        self.log_group = encrypted_log_group(self, "Logs", key=props.key, retention_days=props.log_retention_days,
                                             retain=props.retain_logs)  # fmt: skip
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(discover.next(documents).next(report)),
            state_machine_type=sfn.StateMachineType.STANDARD,
            role=role,
            timeout=RUN_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            encryption_configuration=sfn.CustomerManagedEncryptionConfiguration(props.key),
        )
        self._managed_child_execution_policy(role)
        acknowledge(
            role.policy,
            "Each of these wildcards is fixed by AWS or CDK, never by us: X-Ray and CloudWatch Logs' log delivery "
            "have no resource-level permissions (Resource '*'); LambdaInvoke allows the function's versions "
            "(ARN:*); the Map reads the run's work list, whose key is chosen at run time, from the work bucket.",
            ["AwsSolutions-IAM5[Resource::*]",
             *(f"AwsSolutions-IAM5[Resource::{nag_ref(f)}:*]" for f in (props.discover, props.ingest, props.report)),
             f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{nag_ref(props.work_bucket, None)}/*]"],
        )  # fmt: skip

        self.dead_letter_queue = sqs.Queue(
            self,
            "ScheduleDeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=props.key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "This queue is itself the dead-letter queue of the weekly schedule (failed starts land here); a "
            "dead-letter queue of its own would only move the same messages again.",
            ["AwsSolutions-SQS3", "Serverless-SQSRedrivePolicy"],
        )
        scheduler_role = ManagedPolicyRole(self, "SchedulerRole", policy_id="SchedulerPolicy",
                                           description="Starts the weekly knowledge pipeline run",
                                           assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"))  # fmt: skip
        expression = scheduler.ScheduleExpression.expression(
            f"cron({settings.schedule_cron})", time_zone=cdk.TimeZone.of(settings.schedule_time_zone)
        )
        self.schedule = scheduler.Schedule(
            self,
            "Weekly",
            schedule=expression,
            description="Weekly knowledge base ingestion",
            enabled=settings.schedule_enabled,
            key=props.key,
            target=targets.StepFunctionsStartExecution(
                self.state_machine,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=3,
                max_event_age=cdk.Duration.hours(6),
                role=scheduler_role,
            ),
        )
        # The late-pipeline alarm cannot look back past 7 days, the runs' own spacing, so a run's age is measured
        # here every few hours instead (constructs_lib/observability).
        freshness_role = ManagedPolicyRole(self, "FreshnessSchedulerRole", policy_id="FreshnessSchedulerPolicy",
                                           description="Starts the knowledge pipeline's freshness check",
                                           assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"))  # fmt: skip
        self.freshness_schedule = scheduler.Schedule(
            self,
            "Freshness",
            schedule=scheduler.ScheduleExpression.rate(cdk.Duration.hours(FRESHNESS_CHECK_HOURS)),
            description="How long ago a knowledge pipeline run last succeeded",
            enabled=settings.schedule_enabled,
            key=props.key,
            target=_InvokeFunction(
                props.freshness,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=2,
                max_event_age=cdk.Duration.hours(1),
                role=freshness_role,
            ),
        )

    def _managed_child_execution_policy(self, role: ManagedPolicyRole) -> None:
        """The Distributed Map's own statements (start, describe and stop its child executions) in a managed
        policy instead of the inline one CDK makes (it names the state machine, so it cannot join the role's
        policy, which the state machine waits for)."""
        inline = self.state_machine.node.try_find_child("DistributedMapPolicy")
        if not isinstance(inline, iam.Policy):
            return
        self.state_machine.node.try_remove_child("DistributedMapPolicy")
        policy = iam.ManagedPolicy(self, "ChildExecutionsPolicy", roles=[role], document=inline.document,
                                   description="Runs the knowledge pipeline's Distributed Map")  # fmt: skip
        # How cdk-nag prints the name part of the state machine's ARN in the finding.
        ref = {"Ref": logical_id(self.state_machine)}
        name = json.dumps({"Fn::Select": [6, {"Fn::Split": [":", ref]}]}, separators=(",", ":"))
        execution = f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}"
        acknowledge(
            policy,
            "A Distributed Map's child executions are named by Step Functions at run time, so describing and "
            "stopping them takes the state machine's execution ARN with a wildcard (CDK's statement).",
            [f"AwsSolutions-IAM5[Resource::{execution}:*]", f"AwsSolutions-IAM5[Resource::{execution}/*:*]"],
        )

    def _invoke(self, state_id: str, function: lambda_.IFunction, payload: dict[str, object],
                result_selector: dict[str, object] | None = None) -> tasks.LambdaInvoke:  # fmt: skip
        task = tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=function,
            payload=sfn.TaskInput.from_object(payload),
            result_selector=result_selector,
            result_path="$.result" if result_selector is None else None,
            retry_on_service_exceptions=False,
        )
        task.add_retry(errors=[TRANSIENT_ERROR, *_LAMBDA_ERRORS], interval=cdk.Duration.seconds(5),
                       backoff_rate=2, max_attempts=5, jitter_strategy=sfn.JitterType.FULL)  # fmt: skip
        return task
