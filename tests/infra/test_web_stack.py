"""The web stack: the private site bucket behind CloudFront (origin access control, HTTPS, the headers policy of
the web contract, logging, the routing function, cache behaviours), the files the deploy writes and the exact
policy that writes them, config.json from the api stack, the custom domain and web ACL switches."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from constructs_lib.foundation.settings import ConfigError
from constructs_lib.web.bundle import build_site
from constructs_lib.web.settings import WebConfig
from lambda_src.contracts import web
from stacks.stages import DEV
from tests.infra.conftest import WEB_ACL as WEB_ACL_ARN
from tests.infra.conftest import WEB_CERTIFICATE, Synth, ref
from tests.infra.templates import by_type, only, rendered

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CERTIFICATE, WEB_ACL = WEB_CERTIFICATE, WEB_ACL_ARN


def distribution(synth: Synth) -> dict[str, Any]:
    config: dict[str, Any] = only(synth.raw("web"), "AWS::CloudFront::Distribution")["DistributionConfig"]
    return config


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_the_distribution_serves_the_private_bucket_over_https_only_with_logs(variant, variants):
    synth = variants[variant]
    config = distribution(synth)
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": [synth.logical_id("web", "Files/Bucket"), "RegionalDomainName"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""} and "OriginAccessControlId" in origin
    oac = only(synth.raw("web"), "AWS::CloudFront::OriginAccessControl")["OriginAccessControlConfig"]
    assert (oac["SigningBehavior"], oac["SigningProtocol"], oac["OriginAccessControlOriginType"]) == (
        "always",
        "sigv4",
        "s3",
    )
    assert config["DefaultRootObject"] == web.INDEX
    assert config["Logging"] == {"Bucket": {"Fn::GetAtt": [synth.logical_id("web", "Logs"), "RegionalDomainName"]},
                                 "Prefix": "cloudfront/"}  # fmt: skip
    behaviours = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    assert all(b["ViewerProtocolPolicy"] == "redirect-to-https" and b["AllowedMethods"] == ["GET", "HEAD"]
               for b in behaviours)  # fmt: skip
    headers = ref(synth, "web", "Site/Headers")
    assert all(b["ResponseHeadersPolicyId"] == headers for b in behaviours)
    # No custom domain in dev or prod: CloudFront's own certificate (its policy is CloudFront's).
    assert "ViewerCertificate" not in config and "Aliases" not in config and "WebACLId" not in config
    # The bucket admits only this distribution; the key lets CloudFront decrypt through it.
    statements = [s for p in by_type(synth.raw("web"), "AWS::S3::BucketPolicy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]
                  if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]  # fmt: skip
    (statement,) = statements
    assert statement["Action"] == "s3:GetObject"
    assert rendered(statement["Condition"]["StringEquals"]["AWS:SourceArn"]).endswith(
        "${" + synth.logical_id("web", "Site/Distribution") + "}"
    )


def test_the_page_and_config_are_never_cached_and_hashed_assets_for_a_year(dev):
    config = distribution(dev)
    default = config["DefaultCacheBehavior"]
    assert default["CachePolicyId"] == CACHING_DISABLED
    (function,) = default["FunctionAssociations"]
    assert function == {
        "EventType": "viewer-request",
        "FunctionARN": {"Fn::GetAtt": [dev.logical_id("web", "Site/Routing"), "FunctionARN"]},
    }
    (assets,) = config["CacheBehaviors"]
    assert assets["PathPattern"] == "/assets/*" and assets["CachePolicyId"] == CACHING_OPTIMIZED and assets["Compress"]
    routing = dev.properties("web", "Site/Routing")
    assert routing["FunctionCode"] == web.ROUTING_FUNCTION
    assert routing["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0" and routing["AutoPublish"] is True
    found = by_type(dev.raw("web"), "Custom::CDKBucketDeployment").values()
    deployments = {d["Properties"].get("DestinationBucketKeyPrefix", ""): d["Properties"] for d in found}
    assert deployments["assets/"]["SystemMetadata"] == {"cache-control": web.ASSET_CACHE_CONTROL}
    assert deployments[""]["SystemMetadata"] == {"cache-control": web.PAGE_CACHE_CONTROL}
    assert all(d["Prune"] is False for d in deployments.values())


def test_the_headers_policy_is_the_web_contracts(dev):
    policy = dev.properties("web", "Site/Headers")["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    expected = web.security_headers(web.aws_connect_sources("${AWS::Region}", "${AWS::URLSuffix}"))
    csp = policy["ContentSecurityPolicy"]
    assert rendered(csp["ContentSecurityPolicy"]) == expected["Content-Security-Policy"] and csp["Override"]
    assert "'unsafe" not in rendered(csp["ContentSecurityPolicy"])
    hsts = policy["StrictTransportSecurity"]
    assert (hsts["AccessControlMaxAgeSec"], hsts["IncludeSubdomains"], hsts["Override"]) == (web.HSTS_SECONDS, True,
                                                                                              True)  # fmt: skip
    assert policy["ContentTypeOptions"] == {"Override": True}
    assert policy["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert policy["ReferrerPolicy"] == {"ReferrerPolicy": web.REFERRER_POLICY, "Override": True}


def test_the_upload_may_write_exactly_the_builds_files(dev):
    build = build_site()
    bucket = dev.logical_id("web", "Files/Bucket")
    (document,) = [
        p["Properties"]["PolicyDocument"] for p in by_type(dev.raw("web"), "AWS::IAM::ManagedPolicy").values()
    ]
    writes = [s for s in document["Statement"] if s["Action"] == "s3:PutObject"]
    written = sorted(rendered(r).removeprefix("${" + bucket + ".Arn}/") for s in writes
                     for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]))  # fmt: skip
    assert written == sorted([*build.asset_keys, *build.page_keys])
    assert all("*" not in json.dumps(s["Resource"]) for s in document["Statement"])
    actions = sorted({a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                                  else s["Action"])})  # fmt: skip
    assert actions == ["kms:Decrypt", "kms:GenerateDataKey", "logs:CreateLogStream", "logs:PutLogEvents",
                       "s3:GetObject", "s3:ListBucket", "s3:PutObject"]  # fmt: skip


def test_the_api_stack_writes_config_json_with_the_apis_url_and_the_pools_ids(dev):
    (deployment,) = by_type(dev.raw("api"), "Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    assert props["SystemMetadata"] == {"cache-control": web.PAGE_CACHE_CONTROL} and props["Prune"] is False
    assert rendered(props["DestinationBucketName"]).startswith("<import:llm-platform-dev-web:")
    markers = {rendered(v) for v in props["SourceMarkers"][0].values()}
    api = dev.logical_id("api", "Api/Api")
    assert any(m.startswith(f'"https://${{{api}}}.execute-api.') for m in markers)
    assert any("chat:ExportsOutputRefUsersPool" in m and "WebClient" not in m for m in markers)
    assert any("UsersPoolWebClient" in m for m in markers)
    # The handler may write config.json and nothing else of the site.
    policies = by_type(dev.raw("api"), "AWS::IAM::ManagedPolicy")
    (document,) = [p["Properties"]["PolicyDocument"] for logical_id, p in policies.items() if "WebConfig" in logical_id]
    (write,) = [s for s in document["Statement"] if s["Action"] == "s3:PutObject"]
    assert re.fullmatch(
        r"<import:llm-platform-dev-web:\w*FilesBucket\w*Arn\w*>/config\.json", rendered(write["Resource"])
    )


def test_a_custom_domain_gets_its_certificate_tls_1_2_and_a_web_acl_and_clears_the_findings(dev_upload):
    custom = dev_upload  # the stage switches' synth sets web.domain_name, web.certificate_arn, web.web_acl_arn
    config = distribution(custom)
    assert config["Aliases"] == ["chat.example.com"]
    assert config["ViewerCertificate"] == {"AcmCertificateArn": CERTIFICATE, "MinimumProtocolVersion": "TLSv1.2_2021",
                                           "SslSupportMethod": "sni-only"}  # fmt: skip
    assert config["WebACLId"] == WEB_ACL
    acknowledged = {a.rule_id for a in custom.report.acknowledgments if a.stack.endswith("-web")}
    assert "AwsSolutions-CFR4" not in acknowledged and "AwsSolutions-CFR2" not in acknowledged
    assert custom.report.passed
    variables = [f["Properties"]["Environment"]["Variables"]
                 for f in by_type(custom.raw("api"), "AWS::Lambda::Function").values()]  # fmt: skip
    origins = [json.loads(rendered(v["CORS_ALLOWED_ORIGINS"])) for v in variables if "CORS_ALLOWED_ORIGINS" in v]
    assert origins and all("https://chat.example.com" in o for o in origins)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (WebConfig(domain_name="chat.example.com"), "web.certificate_arn must be given together with domain_name"),
        (WebConfig(domain_name="Chat Example", certificate_arn=CERTIFICATE), "web.domain_name must be None or"),
        (
            WebConfig(domain_name="chat.example.com", certificate_arn=CERTIFICATE.replace("us-east-1", "eu-west-1")),
            "web.certificate_arn must be None or the ARN of an ACM certificate in us-east-1",
        ),
        (WebConfig(web_acl_arn=WEB_ACL.replace("global", "regional")), "web.web_acl_arn must be None or the ARN"),
        (WebConfig(price_class="cheap"), "web.price_class must be one of 100, 200, all"),
    ],
)
def test_bad_web_settings_fail_with_a_sentence_naming_the_field(settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        dataclasses.replace(DEV, web=settings)
