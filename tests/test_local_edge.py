"""The local edge (CloudFront's stand-in in `make local`) against moto's S3: the distribution's routing, headers
and errors from the web contract, the objects' own metadata, gzip for the hashed assets, config.json's endpoints."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambda_src.contracts import web
from tools.local.edge import LocalEdge, local_config

DEPLOYED = {"stage": "dev", "region": "us-east-1", "apiUrl": "https://abc.execute-api.us-east-1.amazonaws.com/v1/",
            "cognitoEndpoint": "https://cognito-idp.us-east-1.amazonaws.com/", "userPoolId": "us-east-1_x",
            "clientId": "client"}  # fmt: skip
CONNECT = ("http://127.0.0.1:8080", "http://127.0.0.1:5000")


@pytest.fixture
def edge(aws_credentials: None) -> Iterator[LocalEdge]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="site")
        s3.put_object(Bucket="site", Key="index.html", Body=b"<!doctype html>", ContentType="text/html",
                      CacheControl=web.PAGE_CACHE_CONTROL)  # fmt: skip
        s3.put_object(Bucket="site", Key="assets/0123/app.js", Body=b"export const a = 1;\n" * 50,
                      ContentType="text/javascript", CacheControl=web.ASSET_CACHE_CONTROL)  # fmt: skip
        config = local_config(DEPLOYED, api_url="http://127.0.0.1:8080/v1", cognito_endpoint="http://127.0.0.1:5000/")
        served = LocalEdge(s3=s3, bucket="site", port=0, config=config, connect_sources=CONNECT).start()
        yield served
        served.stop()


def fetch(edge: LocalEdge, path: str, method: str = "GET", **headers: str) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(edge.url + path, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.mark.parametrize("path", ["/", "/c/c_0193", "/c/c_0193?x=1", "/settings/"])
def test_the_apps_own_routes_get_the_page_with_the_security_headers(edge, path):
    status, headers, body = fetch(edge, path)
    assert (status, body) == (200, b"<!doctype html>")
    for name, value in web.security_headers(CONNECT).items():
        assert headers[name] == value
    assert headers["Cache-Control"] == "no-cache" and headers["Content-Type"] == "text/html"


def test_hashed_assets_keep_their_metadata_and_are_gzipped_when_accepted(edge):
    status, headers, body = fetch(edge, "/assets/0123/app.js", **{"Accept-Encoding": "gzip, br"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == b"export const a = 1;\n" * 50
    assert headers["Cache-Control"] == web.ASSET_CACHE_CONTROL and headers["Content-Type"] == "text/javascript"
    assert "Content-Encoding" not in fetch(edge, "/assets/0123/app.js")[1]


def test_a_missing_file_and_other_methods_are_refused_as_cloudfront_with_oac_does(edge):
    status, headers, body = fetch(edge, "/assets/0123/missing.js")
    assert status == 403 and b"AccessDenied" in body and "Content-Security-Policy" in headers
    assert fetch(edge, "/", method="POST")[0] == 403
    assert fetch(edge, "/", method="HEAD")[2] == b""


def test_config_json_is_the_deployed_one_with_this_machines_endpoints(edge):
    status, headers, body = fetch(edge, "/config.json")
    assert status == 200 and headers["Cache-Control"] == "no-cache"
    assert json.loads(body) == {**DEPLOYED, "apiUrl": "http://127.0.0.1:8080/v1",
                                "cognitoEndpoint": "http://127.0.0.1:5000/"}  # fmt: skip
    with pytest.raises(ValueError, match="has keys"):
        local_config({"apiUrl": "x"}, api_url="a", cognito_endpoint="b")
