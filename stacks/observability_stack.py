"""ObservabilityStack: the stage's alarms, the encrypted SNS topic they publish to, and its CloudWatch dashboard, over
what the api, audit, knowledge and chat stacks deployed. Deployed last: it only reads the others."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from constructs_lib.observability.alarm_topic import AlarmTopic, AlarmTopicProps
from constructs_lib.observability.alarms import PlatformAlarms, PlatformAlarmsProps
from constructs_lib.observability.dashboard import PlatformDashboard, PlatformDashboardProps
from constructs_lib.observability.signals import ObservedPlatform
from stacks.api_stack import ApiStack
from stacks.audit_stack import AuditStack
from stacks.base import PlatformStack
from stacks.chat_stack import ChatStack
from stacks.knowledge_stack import KnowledgeStack
from stacks.stages import StageConfig


class ObservabilityStack(PlatformStack):
    """Attributes: ``topic`` (AlarmTopic), ``alarms`` (PlatformAlarms), ``dashboard`` (PlatformDashboard or None)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        api: ApiStack,
        audit: AuditStack,
        knowledge: KnowledgeStack,
        chat: ChatStack,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(scope, construct_id, stage=stage, purpose="alarms and dashboard", env=env)
        settings = stage.observability
        # The api stack's key: a key of its own would cost $1 a month (bench/idle_cost.py) for a few alarm messages.
        self.topic = AlarmTopic(
            self, "AlarmTopic", props=AlarmTopicProps(stage_name=stage.name, key=api.key, emails=settings.alarm_emails)
        )
        functions = {
            "inference": api.inference,
            "retrieval": api.retrieval,
            "chat": api.chat,
            "authorizer": api.authorizer,
        }
        platform = ObservedPlatform(
            stage_name=stage.name,
            api_name=api.api.api_name,
            access_logs=api.api.access_logs,
            functions={name: function.function for name, function in functions.items()},
            function_logs={name: function.log_group for name, function in functions.items()},
            audit_mode=stage.audit.mode,
            audit_stream_name=audit.audit.stream.delivery_stream_name,
            state_machine=knowledge.pipeline.state_machine,
            pipeline_scheduled=stage.knowledge.schedule_enabled,
            user_pool_id=chat.users.pool.user_pool_id,
            user_pool_client_id=chat.users.client.user_pool_client_id,
            bedrock_model_ids=tuple(stage.model.bedrock_model_ids()),
        )
        self.alarms = PlatformAlarms(
            self,
            "Alarms",
            props=PlatformAlarmsProps(
                settings=settings, platform=platform, topic=self.topic.topic, name_prefix=self.topic.alarm_name_prefix
            ),
        )
        self.dashboard: PlatformDashboard | None = None
        if settings.dashboard:
            self.dashboard = PlatformDashboard(
                self,
                "Dashboard",
                props=PlatformDashboardProps(
                    platform=platform,
                    alarms=list(self.alarms.alarms.values()),
                    topic_name=self.topic.topic_name,
                    pipeline_late_days=settings.pipeline_late_days,
                ),
            )
            cdk.CfnOutput(self, "DashboardName", value=self.dashboard.dashboard_name)
        cdk.CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.topic.topic.topic_arn,
            description="Subscribe more people: aws sns subscribe --protocol email --topic-arn ...",
        )
