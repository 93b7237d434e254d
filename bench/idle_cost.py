"""P5: what a deployment costs per month with zero traffic, priced from the synthesized templates.

    .venv/bin/python bench/idle_cost.py

Only resources with a fixed monthly charge cost anything at idle; everything else here is priced per
request, per GB or per second of use and costs $0 without traffic or data. The table below is the
us-east-1 list price in USD from the AWS pricing pages as of 2025-2026 (not re-checked from this machine,
which cannot reach them); adjust the tables for your region. A resource type in no table fails the run:
a new stack cannot add a fixed charge unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# (resource type, monthly USD at idle, what the charge is)
FIXED_MONTHLY: dict[str, tuple[float, str]] = {
    "AWS::KMS::Key": (1.00, "customer-managed KMS key, per key-month (rotation included)"),
    "AWS::WAFv2::WebACL": (5.00, "WAF web ACL, per ACL-month"),
    "AWS::SecretsManager::Secret": (0.40, "Secrets Manager secret, per secret-month (+$0.05 per 10,000 calls)"),
    "AWS::CloudWatch::Dashboard": (
        3.00,
        "CloudWatch dashboard, per dashboard-month (the account's 3 free not counted)",
    ),
}
WAF_RULE_MONTHLY = 1.00  # per rule (each managed rule group and the rate-based rule) per month
# A standard-resolution alarm: per metric it evaluates, per month (a metric-math alarm pays for each metric it reads,
# not for its expressions); a period under 60 s would make it high-resolution ($0.30), which no alarm here is.
ALARM_METRIC_MONTHLY = 0.10
ZERO_AT_IDLE = {
    "AWS::S3::Bucket": "per GB stored and per request",
    "AWS::Lambda::Function": "per request and GB-second",
    "AWS::ApiGateway::RestApi": "per million requests",
    "AWS::DynamoDB::Table": "on-demand: per request; PITR per GB (empty table: 0)",
    "AWS::KinesisFirehose::DeliveryStream": "per GB ingested and converted",
    "AWS::Athena::WorkGroup": "per TB scanned",
    "AWS::Glue::Table": "Data Catalog: first million objects free",
    "AWS::Logs::LogGroup": "per GB ingested and stored",
    "AWS::SSM::Parameter": "Standard tier: free",
    "AWS::ApiGateway::Account": "account setting, in the account-wide stack every stage shares: free",
    "AWS::S3Vectors::VectorBucket": "per GB-month stored ($0.06), per GB written ($0.20), per query",
    "AWS::S3Vectors::Index": "billed through its vector bucket: storage, writes and queries only",
    "AWS::StepFunctions::StateMachine": "Standard: per state transition ($0.025 per 1,000)",
    "AWS::Scheduler::Schedule": "per invocation after 14 million free a month (weekly: 4-5)",
    "AWS::SQS::Queue": "per request (1 million free a month)",
    "AWS::Lambda::LayerVersion": "code storage (75 GB free per region)",
    "AWS::Cognito::UserPool": "per monthly active user (Plus $0.02; Essentials free up to 10,000): no users, $0",
    "AWS::CloudFront::Distribution": "per GB out and per 10,000 requests (pay-as-you-go; no flat-rate plan)",
    "AWS::CloudFront::Function": "per million invocations ($0.10)",
    "AWS::SNS::Topic": "per million publishes and per delivery (the first 1,000 emails a month free)",
    "AWS::Bedrock::Guardrail": "per 1,000 text units assessed, per policy (nothing stored is billed)",
    "AWS::Bedrock::GuardrailVersion": "billed through its guardrail: per text unit assessed",
}
# Configuration that has no charge of its own (what it configures is priced above).
NO_CHARGE = {"AWS::ApiGateway::Authorizer", "AWS::ApiGateway::Deployment", "AWS::ApiGateway::GatewayResponse",
             "AWS::ApiGateway::Method", "AWS::ApiGateway::Model", "AWS::ApiGateway::RequestValidator",
             "AWS::ApiGateway::Resource", "AWS::ApiGateway::Stage", "AWS::ApiGateway::UsagePlan",
             "AWS::ApiGateway::UsagePlanKey", "AWS::ApiGateway::ApiKey", "AWS::Athena::NamedQuery",
             "AWS::CDK::Metadata", "AWS::Glue::Database", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role",
             "AWS::IAM::Policy", "AWS::Lambda::Permission", "AWS::Logs::LogStream", "AWS::S3::BucketPolicy",
             "AWS::SQS::QueuePolicy", "AWS::WAFv2::WebACLAssociation", "AWS::WAFv2::LoggingConfiguration",
             "AWS::Cognito::UserPoolClient", "AWS::Cognito::UserPoolDomain",
             "Custom::S3AutoDeleteObjects", "Custom::SecureStringParameter", "Custom::CDKBucketDeployment",
             "AWS::CloudFront::ResponseHeadersPolicy", "AWS::CloudFront::OriginAccessControl",
             "AWS::SNS::TopicPolicy", "AWS::SNS::Subscription"}  # fmt: skip


def synth(stage: str, outdir: str) -> dict[str, dict[str, Any]]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"] | {"stage": stage}
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "CDK_OUTDIR": outdir,
           "CDK_CONTEXT_JSON": json.dumps(context)}  # fmt: skip
    subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, check=True, capture_output=True)
    return {p.name: json.loads(p.read_text()) for p in Path(outdir).glob("*.template.json")}


def alarm_metrics(alarm: dict[str, Any]) -> int:
    """The metrics a CloudWatch alarm evaluates: its one metric, or each metric (not expression) of its math."""
    props = alarm["Properties"]
    queries = props.get("Metrics")
    if not queries:
        if int(props.get("Period", 60)) < 60:
            raise SystemExit(f"High-resolution alarm {props.get('AlarmName')}: bench/idle_cost.py prices none.")
        return 1
    for query in queries:
        if "MetricStat" in query and int(query["MetricStat"]["Period"]) < 60:
            raise SystemExit(f"High-resolution alarm {props.get('AlarmName')}: bench/idle_cost.py prices none.")
    return sum(1 for query in queries if "MetricStat" in query)


def fixed_cost(template: dict[str, Any]) -> float:
    total = 0.0
    for resource in template["Resources"].values():
        total += FIXED_MONTHLY.get(resource["Type"], (0.0, ""))[0]
        if resource["Type"] == "AWS::WAFv2::WebACL":
            total += len(resource["Properties"].get("Rules", [])) * WAF_RULE_MONTHLY
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            total += alarm_metrics(resource) * ALARM_METRIC_MONTHLY
    return total


def idle_cost(templates: dict[str, dict[str, Any]]) -> tuple[float, list[str]]:
    counts: Counter[str] = Counter()
    waf_rules = alarm_metric_count = 0
    for template in templates.values():
        for resource in template["Resources"].values():
            counts[resource["Type"]] += 1
            if resource["Type"] == "AWS::WAFv2::WebACL":
                waf_rules += len(resource["Properties"].get("Rules", []))
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                alarm_metric_count += alarm_metrics(resource)
    unpriced = sorted(set(counts) - set(FIXED_MONTHLY) - set(ZERO_AT_IDLE) - NO_CHARGE - {"AWS::CloudWatch::Alarm"})
    if unpriced:
        raise SystemExit(f"Resource types with no price in bench/idle_cost.py: {', '.join(unpriced)}")
    lines, total = [], 0.0
    for kind, (price, what) in FIXED_MONTHLY.items():
        if counts[kind]:
            cost = counts[kind] * price
            total += cost
            lines.append(f"  {counts[kind]} x {kind}: ${cost:.2f} ({what})")
    if waf_rules:
        total += waf_rules * WAF_RULE_MONTHLY
        lines.append(f"  {waf_rules} x WAF rule: ${waf_rules * WAF_RULE_MONTHLY:.2f} (per rule-month)")
    if alarm_metric_count:
        cost = alarm_metric_count * ALARM_METRIC_MONTHLY
        total += cost
        lines.append(f"  {counts['AWS::CloudWatch::Alarm']} x AWS::CloudWatch::Alarm reading {alarm_metric_count} "
                     f"metrics: ${cost:.2f} (standard resolution, per metric-month)")  # fmt: skip
    for kind, why in ZERO_AT_IDLE.items():
        if counts[kind]:
            lines.append(f"  {counts[kind]} x {kind}: $0.00 at idle ({why})")
    return total, lines


def main() -> int:
    for stage in ("dev", "prod"):
        with tempfile.TemporaryDirectory() as outdir:
            templates = synth(stage, outdir)
            total, lines = idle_cost(templates)
        print(f"P5 idle monthly cost, {stage}: ${total:.2f}")
        print("\n".join(lines))
        by_stack = ", ".join(f"{name.removesuffix('.template.json')} ${fixed_cost(t):.2f}"
                             for name, t in sorted(templates.items()))  # fmt: skip
        print(f"  by stack: {by_stack}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
