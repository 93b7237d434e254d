"""The web app's config.json, written into the site bucket at deploy: the API's URL and the user pool's ids
(deploy-time values, so one build serves every stage). Made beside the API, which the site's distribution
comes before (the API's CORS origins are the distribution's)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from constructs_lib.foundation.deploy_time_upload import DeployTimeUpload, DeployTimeUploadProps
from lambda_src.contracts import web


@dataclass(frozen=True, kw_only=True)
class SiteConfigProps:
    bucket: s3.IBucket
    key: kms.IKey
    log_key: kms.IKey
    # Exactly the keys of web.CONFIG_KEYS (values may be deploy-time tokens).
    values: dict[str, str]
    retain: bool
    log_retention_days: int

    def __post_init__(self) -> None:
        if set(self.values) != set(web.CONFIG_KEYS):
            raise ValueError(f"SiteConfigProps.values must have exactly the keys {', '.join(web.CONFIG_KEYS)} "
                             f"(got {', '.join(sorted(self.values))}).")  # fmt: skip


class SiteConfig(Construct):
    """Attributes: ``upload`` (the DeployTimeUpload writing config.json)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: SiteConfigProps) -> None:
        super().__init__(scope, construct_id)
        self.upload = DeployTimeUpload(self, "Upload", props=DeployTimeUploadProps(
            bucket=props.bucket, key=props.key, log_key=props.log_key, purpose="the web app's config.json",
            retain=props.retain, log_retention_days=props.log_retention_days))  # fmt: skip
        self.upload.add("Config", sources=[s3_deployment.Source.json_data(web.CONFIG, props.values)],
                        object_keys=[web.CONFIG], cache_control=web.PAGE_CACHE_CONTROL)  # fmt: skip
