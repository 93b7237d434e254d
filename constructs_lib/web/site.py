"""The chat app's site: a private bucket (SecureBucket) behind CloudFront with Origin Access Control, HTTPS
only, a response headers policy from the web contract (a strict CSP, HSTS, nosniff, no framing, a referrer
policy), access logs, the app's own routes answered with index.html by a CloudFront Function, hashed assets
cached for a year and the page and its config.json revalidated on every load."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.foundation.keys import removal_policy
from constructs_lib.foundation.nag import acknowledge
from constructs_lib.foundation.secure_bucket import log_bucket
from constructs_lib.web.settings import WebConfig
from lambda_src.contracts import web

# Where CloudFront's standard logs go in the log bucket (the site bucket's S3 access logs go under its purpose).
CLOUDFRONT_LOG_PREFIX = "cloudfront/"
_PRICE_CLASSES = {"100": cloudfront.PriceClass.PRICE_CLASS_100, "200": cloudfront.PriceClass.PRICE_CLASS_200,
                  "all": cloudfront.PriceClass.PRICE_CLASS_ALL}  # fmt: skip


def site_log_bucket(scope: Construct, construct_id: str, *, retain: bool, auto_delete_objects: bool,
                    retention_days: int) -> s3.Bucket:  # fmt: skip
    """The bucket for CloudFront's standard logs and the site bucket's S3 access logs. CloudFront's standard
    logging writes with object ACLs, so ACLs stay enabled (bucket owner preferred); public access is blocked."""
    return log_bucket(scope, construct_id, retention_days=retention_days, removal=removal_policy(retain),
                      auto_delete_objects=auto_delete_objects and not retain,
                      acl_writers="CloudFront's standard logging")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class WebSiteProps:
    bucket: s3.IBucket
    log_bucket: s3.IBucket
    settings: WebConfig
    stage_name: str


class WebSite(Construct):
    """Attributes: ``distribution``, ``headers`` (the response headers policy), ``routing`` (the function),
    ``origins`` (the browser origins the app is served from, for the API's CORS)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: WebSiteProps) -> None:
        super().__init__(scope, construct_id)
        settings = props.settings
        connect = web.aws_connect_sources(cdk.Aws.REGION, cdk.Aws.URL_SUFFIX)
        headers = web.security_headers(connect)
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment=f"LLM platform {props.stage_name} web app: security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=headers["Content-Security-Policy"], override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.seconds(web.HSTS_SECONDS), include_subdomains=True,
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN, override=True
                ),
            ),
        )  # fmt: skip
        self.routing = cloudfront.Function(
            self,
            "Routing",
            code=cloudfront.FunctionCode.from_inline(web.ROUTING_FUNCTION),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            comment="The app's own routes (paths without a file extension) are served index.html",
        )
        origin = origins.S3BucketOrigin.with_origin_access_control(props.bucket)
        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", settings.certificate_arn)
            if settings.certificate_arn
            else None
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"LLM platform {props.stage_name} web app",
            default_root_object=web.INDEX,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                # index.html and config.json: every load sees the latest deploy.
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                response_headers_policy=self.headers,
                function_associations=[cloudfront.FunctionAssociation(
                    function=self.routing, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST)],
            ),
            additional_behaviors={
                f"/{web.ASSETS_PREFIX}*": cloudfront.BehaviorOptions(
                    origin=origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                    # Hashed paths never change content: cached at the edge, compressed (gzip, brotli).
                    cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                    response_headers_policy=self.headers,
                    compress=True,
                ),
            },
            domain_names=[settings.domain_name] if settings.domain_name else None,
            certificate=certificate,
            # Only a custom certificate takes a security policy (CloudFront's own is fixed).
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if certificate else None,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=_PRICE_CLASSES[settings.price_class],
            enable_logging=True,
            log_bucket=props.log_bucket,
            log_file_prefix=CLOUDFRONT_LOG_PREFIX,
            web_acl_id=settings.web_acl_arn,
        )  # fmt: skip
        distribution_origin = f"https://{self.distribution.distribution_domain_name}"
        self.origins: tuple[str, ...] = (distribution_origin, *((settings.origin,) if settings.origin else ()))
        self._acknowledge(settings)

    def _acknowledge(self, settings: WebConfig) -> None:
        if settings.certificate_arn is None:
            acknowledge(
                self.distribution,
                "Without a custom domain (web.domain_name and web.certificate_arn in the stage config) CloudFront "
                "serves its *.cloudfront.net certificate, whose security policy it sets itself; viewers are "
                "redirected to HTTPS, and a custom domain gets TLS 1.2 or newer only.",
                ["AwsSolutions-CFR4"],
            )
        if settings.web_acl_arn is None:
            acknowledge(
                self.distribution,
                "The distribution serves only the app's static files (no request reaches code or data); the API it "
                "calls has its own regional WAF in prod; web.web_acl_arn attaches a CLOUDFRONT web ACL from "
                "us-east-1 where an organisation requires one on every site.",
                ["AwsSolutions-CFR2"],
            )
        acknowledge(
            self.distribution,
            "The app is for an organisation's signed-in users wherever they are; a geographic restriction would "
            "be a business rule chosen per deployment, not a security default.",
            ["AwsSolutions-CFR1"],
        )
