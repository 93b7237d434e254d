"""The web app's contract: where its files live in the site bucket, how each is cached, which paths are the
app's own routes, the keys of the `config.json` written at deploy, and the security headers every response
carries.

WebStack builds the distribution's cache behaviours, its response headers policy and its routing function from
these; the local edge (tools/local/edge.py) serves the deployed bucket with the same headers and routing; the
tests check both against this module.
"""

from __future__ import annotations

import posixpath

INDEX = "index.html"
CONFIG = "config.json"
# Hashed assets: /assets/<content hash>/<file>, so a path never changes content and is cached for a year.
ASSETS_PREFIX = "assets/"
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
# The page and the deploy-time configuration: always revalidated, so a deploy shows at the next load.
PAGE_CACHE_CONTROL = "no-cache"

# Keys of config.json (the one build serves every stage).
CONFIG_KEYS = ("stage", "region", "apiUrl", "cognitoEndpoint", "userPoolId", "clientId")

# Strict-Transport-Security max-age: two years, with subdomains (what hstspreload.org asks for).
HSTS_SECONDS = 63_072_000
REFERRER_POLICY = "strict-origin-when-cross-origin"


def content_security_policy(connect_sources: tuple[str, ...]) -> str:
    """No inline script or style, nothing from a third-party origin: scripts, styles, images and fonts come from
    the site itself; the page only talks to ``connect_sources`` (the API and Cognito) besides itself."""
    directives = {
        "default-src": ("'none'",),
        "script-src": ("'self'",),
        "style-src": ("'self'",),
        "img-src": ("'self'",),
        "font-src": ("'self'",),
        "manifest-src": ("'self'",),
        "connect-src": ("'self'", *connect_sources),
        "base-uri": ("'none'",),
        "form-action": ("'none'",),
        "frame-ancestors": ("'none'",),
        "object-src": ("'none'",),
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(connect_sources: tuple[str, ...]) -> dict[str, str]:
    """Every response's security headers, as the distribution's response headers policy sets them."""
    return {
        "Content-Security-Policy": content_security_policy(connect_sources),
        "Strict-Transport-Security": f"max-age={HSTS_SECONDS}; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": REFERRER_POLICY,
    }


def aws_connect_sources(region: str, url_suffix: str = "amazonaws.com") -> tuple[str, ...]:
    """What the page calls in AWS: Cognito's user pool API and the region's API Gateway endpoints (the API's
    own id is not known when the distribution is made: the API stack comes after it)."""
    return (f"https://cognito-idp.{region}.{url_suffix}", f"https://*.execute-api.{region}.{url_suffix}")


def route(path: str) -> str:
    """The object a viewer path is served from: a path whose last segment has no file extension is one of the
    app's own routes (the app routes in the browser), so it gets index.html; anything else is a file."""
    if path == "/" or "." not in posixpath.basename(path):
        return "/" + INDEX
    return path


# The same rule as a CloudFront Function (cloudfront-js-2.0), run on every viewer request before the cache.
ROUTING_FUNCTION = """function handler(event) {
  var request = event.request;
  var last = request.uri.substring(request.uri.lastIndexOf('/') + 1);
  if (request.uri === '/' || last.indexOf('.') === -1) {
    request.uri = '/index.html';
  }
  return request;
}
"""
