"""A regional WAFv2 web ACL for an API Gateway stage: AWS managed rules plus a per-IP rate limit."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from constructs_lib.foundation.logs import encrypted_log_group


@dataclass(frozen=True, kw_only=True)
class ApiWebAclProps:
    stage_arn: str
    # Requests per 5 minutes from one IP address before it is blocked.
    rate_limit: int
    metric_prefix: str
    log_key: kms.IKey
    log_retention_days: int
    retain_logs: bool


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _managed(name: str, priority: int, prefix: str, count_rules: tuple[str, ...] = ()) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS",
                name=name,
                rule_action_overrides=[
                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                    )
                    for rule in count_rules
                ]
                or None,
            )
        ),
        visibility_config=_visibility(f"{prefix}-{name}"),
    )


class ApiWebAcl(Construct):
    """Attributes: ``web_acl``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ApiWebAclProps) -> None:
        super().__init__(scope, construct_id)
        prefix = props.metric_prefix
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{prefix}-web-acl"),
            rules=[
                # Prompts are routinely larger than the common rule set's 8 KB body limit; the API enforces
                # its own body limit, so that one rule only counts.
                _managed("AWSManagedRulesCommonRuleSet", 0, prefix, count_rules=("SizeRestrictions_BODY",)),
                _managed("AWSManagedRulesKnownBadInputsRuleSet", 1, prefix),
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=2,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=props.rate_limit, aggregate_key_type="IP", evaluation_window_sec=300
                        )
                    ),
                    visibility_config=_visibility(f"{prefix}-rate-limit"),
                ),
            ],
        )
        wafv2.CfnWebACLAssociation(self, "Association", resource_arn=props.stage_arn, web_acl_arn=self.web_acl.attr_arn)
        # WAF only delivers to log groups whose name starts with "aws-waf-logs-".
        log_group_name = f"aws-waf-logs-{prefix}"
        self.log_group = encrypted_log_group(
            self, "Logs", key=props.log_key, retention_days=props.log_retention_days, retain=props.retain_logs,
            log_group_name=log_group_name,
        )  # fmt: skip
        logging = wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[
                cdk.Stack.of(self).format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=log_group_name,
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            # API keys travel in this header: they never reach the firewall's logs.
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "authorization"})
            ],
        )
        logging.node.add_dependency(self.log_group)
