"""WebStack: the chat app in the browser, served from a private bucket through CloudFront. Its config.json
(the API's URL, the user pool's ids) is written by the api stack, which comes after it (the API's CORS
origins are this distribution's)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from constructs_lib.foundation.deploy_time_upload import DeployTimeUpload, DeployTimeUploadProps
from constructs_lib.web.bundle import build_site
from constructs_lib.web.site import WebSite, WebSiteProps, site_log_bucket
from lambda_src.contracts import web
from stacks.base import PlatformStack
from stacks.stages import StageConfig


class WebStack(PlatformStack):
    """Attributes: ``site`` (WebSite: ``distribution``), ``bucket``, ``key``, ``origins`` (the browser origins of
    the app, for the API's CORS), ``build`` (the staged files)."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: StageConfig,
                 env: cdk.Environment | None = None) -> None:  # fmt: skip
        super().__init__(scope, construct_id, stage=stage, purpose="web chat app (S3 + CloudFront)", env=env)
        logs = site_log_bucket(self, "Logs", retain=stage.retain_data, auto_delete_objects=stage.auto_delete_objects,
                               retention_days=stage.access_log_retention_days)  # fmt: skip
        files = self.secure_bucket("Files", purpose="website", access_log_bucket=logs)
        self.bucket, self.key = files.bucket, files.key
        self.site = WebSite(self, "Site", props=WebSiteProps(bucket=files.bucket, log_bucket=logs,
                                                             settings=stage.web, stage_name=stage.name))  # fmt: skip
        self.origins = self.site.origins
        # CloudFront's service principal may decrypt with the site key for any distribution of this account: the
        # key policy cannot name this distribution (key -> distribution -> bucket -> key would be a cycle).
        cdk.Annotations.of(files).acknowledge_warning(
            "@aws-cdk/aws-cloudfront-origins:wildcardKeyPolicyForOac",
            "The site key encrypts only the app's public files and the upload handler's logs (which CloudFront "
            "cannot read); the bucket policy still admits only this distribution.",
        )
        self.build = build = build_site()
        upload = DeployTimeUpload(self, "Upload", props=DeployTimeUploadProps(
            bucket=files.bucket, key=files.key, log_key=files.key, purpose="the web app's files",
            retain=stage.retain_data, log_retention_days=stage.log_retention_days))  # fmt: skip
        # The assets first: a page is never served before the files it names.
        assets = upload.add("Assets", sources=[s3_deployment.Source.asset(str(build.assets))],
                            object_keys=build.asset_keys, cache_control=web.ASSET_CACHE_CONTROL,
                            prefix=web.ASSETS_PREFIX)  # fmt: skip
        upload.add("Pages", sources=[s3_deployment.Source.asset(str(build.pages))], object_keys=build.page_keys,
                   cache_control=web.PAGE_CACHE_CONTROL, after=[assets])  # fmt: skip
        distribution = self.site.distribution
        cdk.CfnOutput(self, "Url", value=f"https://{distribution.distribution_domain_name}/",
                      description="The chat app")  # fmt: skip
        cdk.CfnOutput(self, "DistributionId", value=distribution.distribution_id)
        cdk.CfnOutput(self, "BucketName", value=files.bucket.bucket_name)
        cdk.CfnOutput(self, "BuildId", value=build.build_id, description="The hashed assets folder deployed")
