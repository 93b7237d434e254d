"""Customer-managed KMS keys and the removal policy that goes with what they protect."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from constructs import Construct


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
