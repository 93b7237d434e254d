"""Secure defaults shared by every construct: customer-managed KMS keys and encrypted log groups."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from constructs_lib.retention import retention


def removal_policy(retain: bool) -> cdk.RemovalPolicy:
    return cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY


def customer_managed_key(
    scope: Construct, construct_id: str, *, description: str, retain: bool, pending_window_days: int = 30
) -> kms.Key:
    """A symmetric key with yearly automatic rotation; retained with the data it protects when ``retain``."""
    return kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        pending_window=cdk.Duration.days(pending_window_days),
        removal_policy=removal_policy(retain),
    )


def encrypted_log_group(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey,
    retention_days: int,
    retain: bool,
    log_group_name: str | None = None,
) -> logs.LogGroup:
    """A log group encrypted with ``key`` (CloudWatch Logs is allowed to use it) and a fixed retention."""
    region = cdk.Stack.of(scope).region
    key.grant_encrypt_decrypt(iam.ServicePrincipal(f"logs.{region}.amazonaws.com"))
    return logs.LogGroup(
        scope,
        construct_id,
        encryption_key=key,
        retention=retention(retention_days),
        removal_policy=removal_policy(retain),
        log_group_name=log_group_name,
    )
