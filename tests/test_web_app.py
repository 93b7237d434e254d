"""The web app's own logic (web/src), run by Node's test runner with the venv's Node 24, and the parts of it
that must agree with something outside it: SRP with AWS's own Python client (pycognito), the routing function
with the web contract, the staged build with what the upload writes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pycognito import aws_srp

from constructs_lib.web.bundle import build_site
from lambda_src.contracts import web

ROOT = Path(__file__).resolve().parents[1]
NODE = Path(sys.executable).parent / "node"


def node(script: str) -> str:
    result = subprocess.run([str(NODE), "--input-type=module", "-e", script], cwd=ROOT / "web",
                            capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_apps_unit_tests_pass_in_node():
    tests = sorted(str(p.relative_to(ROOT / "web")) for p in (ROOT / "web" / "test").glob("*.test.mjs"))
    assert len(tests) >= 4
    result = subprocess.run([str(NODE), "--test", *tests], cwd=ROOT / "web", capture_output=True, text=True,
                            check=False, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = re.search(r"^\S pass (\d+)$", result.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) >= 15, result.stdout[-2000:]
    assert re.search(r"^\S fail 0$", result.stdout, re.MULTILINE)


def test_the_browsers_srp_answer_is_the_one_pycognito_computes():
    pool_id, user_id, password = "us-east-1_AbCdEf123", "5f8e9a2c-user", "Pässword-1!"
    small_a = int(hashlib.sha512(b"fixed a for the test").hexdigest() * 2, 16) % aws_srp.hex_to_long(aws_srp.N_HEX)
    salt = "8a3f1c2b9d"  # a leading high nibble: padded with 00, as Cognito does
    srp_b = format(pow(5, 123456789, aws_srp.hex_to_long(aws_srp.N_HEX)), "x")
    secret_block = base64.standard_b64encode(b"secret block bytes from cognito").decode()
    stamp = "Tue Mar 3 07:05:09 UTC 2026"

    client = aws_srp.AWSSRP(username=user_id, password=password, pool_id=pool_id, client_id="c", client=object())
    client.small_a_value = small_a
    client.large_a_value = client.calculate_a()
    key = client.get_password_authentication_key(user_id, password, aws_srp.hex_to_long(srp_b), salt)
    message = (pool_id.split("_")[1] + user_id).encode() + base64.standard_b64decode(secret_block) + stamp.encode()
    expected = base64.standard_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()

    challenge = {"USER_ID_FOR_SRP": user_id, "SRP_B": srp_b, "SALT": salt, "SECRET_BLOCK": secret_block}
    output = node(f"""
import {{ largeA, passwordVerifier }} from "./src/srp.js";
const smallA = BigInt("0x{small_a:x}");
const answer = await passwordVerifier({{ poolId: {json.dumps(pool_id)}, password: {json.dumps(password)}, smallA,
  challenge: {json.dumps(challenge)}, now: new Date(Date.UTC(2026, 2, 3, 7, 5, 9)) }});
console.log(JSON.stringify({{ A: largeA(smallA).toString(16), ...answer }}));
""")
    answer = json.loads(output)
    assert answer["A"] == format(client.large_a_value, "x")
    assert answer["TIMESTAMP"] == stamp
    assert answer["PASSWORD_CLAIM_SIGNATURE"] == expected
    assert answer["USERNAME"] == user_id and answer["PASSWORD_CLAIM_SECRET_BLOCK"] == secret_block


PATHS = ["/", "/index.html", "/c/c_0193abcd", "/c/c_0193abcd/", "/config.json", "/assets/0123/app.js",
         "/assets/0123/icon.svg", "/settings", "/favicon.ico", "/a.b/c"]  # fmt: skip


def test_the_distributions_routing_function_routes_as_the_web_contract_says():
    output = node(
        web.ROUTING_FUNCTION
        + f"""
const paths = {json.dumps(PATHS)};
console.log(JSON.stringify(paths.map((uri) => handler({{ request: {{ uri }} }}).uri)));
"""
    )
    assert json.loads(output) == [web.route(path) for path in PATHS]
    assert web.route("/c/c_0193abcd") == "/index.html" and web.route("/assets/0123/app.js") == "/assets/0123/app.js"


def test_the_build_hashes_every_shipped_file_into_one_assets_folder():
    build = build_site()
    page = (build.pages / web.INDEX).read_text()
    assert "{{ASSETS}}" not in page
    assert f'src="/assets/{build.build_id}/app.js"' in page and f'href="/assets/{build.build_id}/app.css"' in page
    shipped = sorted(p.relative_to(build.assets).as_posix() for p in build.assets.rglob("*") if p.is_file())
    assert [f"{web.ASSETS_PREFIX}{name}" for name in shipped] == list(build.asset_keys)
    assert all(key.startswith(f"assets/{build.build_id}/") for key in build.asset_keys)
    assert not any(key.endswith(".mjs") or "/test/" in key for key in build.asset_keys)
    # Every module the app imports is shipped (a missing one would 403 in the browser).
    for script in build.assets.rglob("*.js"):
        for imported in re.findall(r'from "\./([\w.-]+)"', script.read_text()):
            assert (script.parent / imported).is_file(), f"{script.name} imports {imported}"
    assert build_site() == build  # the same content stages to the same folders


def test_no_script_or_style_is_inline_or_from_another_origin():
    page = (ROOT / "web" / web.INDEX).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script"
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    for source in (ROOT / "web" / "src").glob("*.js"):
        text = source.read_text()
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "eval(" not in text, source.name


@pytest.mark.parametrize("connect", [("https://a.example",), ()])
def test_the_csp_allows_nothing_inline_and_nothing_from_elsewhere(connect):
    policy = web.content_security_policy(connect)
    directives = dict(part.split(" ", 1) for part in policy.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == " ".join(("'self'", *connect))
    assert "unsafe" not in policy
