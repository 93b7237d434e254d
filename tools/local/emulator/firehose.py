"""Firehose: `AWS::KinesisFirehose::DeliveryStream`, which moto's CloudFormation does not model.

Records land in the destination bucket as the raw JSON lines they were put as (no Parquet conversion).
"""

from __future__ import annotations

from typing import Any

from moto.firehose.models import firehose_backends

from tools.local.emulator.cloudformation import register_model


def _delivery_stream(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    backend = firehose_backends[account][region]
    name = properties.get("DeliveryStreamName") or name
    unused = ("s3", "redshift", "elasticsearch", "splunk", "http_endpoint", "snowflake", "iceberg")
    backend.create_delivery_stream(
        region,
        delivery_stream_name=name,
        delivery_stream_type=properties.get("DeliveryStreamType", "DirectPut"),
        kinesis_stream_source_configuration=None,
        delivery_stream_encryption_configuration_input=properties.get("DeliveryStreamEncryptionConfigurationInput"),
        extended_s3_destination_configuration=properties.get("ExtendedS3DestinationConfiguration"),
        tags=properties.get("Tags", []),
        **{f"{key}_destination_configuration": None for key in unused},
    )
    return name, {"Arn": backend.delivery_streams[name].delivery_stream_arn}


def install() -> None:
    register_model("AWS::KinesisFirehose::DeliveryStream", "firehose", _delivery_stream)
