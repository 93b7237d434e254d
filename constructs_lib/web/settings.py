"""The web app's part of the stage configuration (CDK-free): its address and who may front it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from constructs_lib.foundation.settings import Check, Settings

# CloudFront only takes certificates from ACM in us-east-1, and web ACLs of scope CLOUDFRONT, which live there too.
_CERTIFICATE = re.compile(r"^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[0-9a-f-]{36}$")
_WEB_ACL = re.compile(r"^arn:aws[a-z-]*:wafv2:us-east-1:\d{12}:global/webacl/[A-Za-z0-9_-]{1,128}/[0-9a-f-]{36}$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
PRICE_CLASSES = ("100", "200", "all")


@dataclass(frozen=True)
class WebConfig(Settings):
    """Where the chat app is served: CloudFront's own *.cloudfront.net name, or a custom domain."""

    # A custom domain (e.g. chat.example.com) and its ACM certificate in us-east-1: both or neither. With
    # them CloudFront serves TLS 1.2+ only; point the domain's DNS (CNAME or alias) at the distribution.
    domain_name: str | None = None
    certificate_arn: str | None = None
    # An existing AWS WAF web ACL of scope CLOUDFRONT (us-east-1) to put in front of the distribution, for
    # organisations that require one on every site; None: none (README, "The web app").
    web_acl_arn: str | None = None
    # CloudFront edge locations to serve from: 100 (North America, Europe), 200 (+ Asia, Middle East, Africa), all.
    price_class: str = "100"

    def checks(self) -> list[Check]:
        return [
            (self.domain_name is None or (isinstance(self.domain_name, str) and bool(_DOMAIN.match(self.domain_name))),
             "domain_name", "must be None or a lowercase domain name such as 'chat.example.com'"),
            (self.certificate_arn is None or (isinstance(self.certificate_arn, str)
                                              and bool(_CERTIFICATE.match(self.certificate_arn))),
             "certificate_arn", "must be None or the ARN of an ACM certificate in us-east-1 (CloudFront's region)"),
            ((self.domain_name is None) == (self.certificate_arn is None), "certificate_arn",
             "must be given together with domain_name (a custom domain needs its certificate), or both left None"),
            (self.web_acl_arn is None or (isinstance(self.web_acl_arn, str)
                                          and bool(_WEB_ACL.match(self.web_acl_arn))),
             "web_acl_arn", "must be None or the ARN of a WAF web ACL of scope CLOUDFRONT (us-east-1)"),
            (self.price_class in PRICE_CLASSES, "price_class", f"must be one of {', '.join(PRICE_CLASSES)}"),
        ]  # fmt: skip

    @property
    def origin(self) -> str | None:
        """The custom domain's browser origin, when there is one."""
        return f"https://{self.domain_name}" if self.domain_name else None
