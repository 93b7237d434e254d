"""End to end on this machine: the deployed dev stage, called with the official openai SDK, answered by
SmolLM2-135M-Instruct through the openai-compatible provider, audited into the emulator's audit bucket."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import openai
import pytest

from lambda_src.contracts.audit import session_key
from lambda_src.contracts.keys import KEY_PREFIX
from stacks.stages import STAGES
from tools.local.launcher import LOCAL_USER_EMAIL, MODEL_ALIAS, STAGE, LocalPlatform, create_key


def client(platform: LocalPlatform, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=platform.base_url, api_key=key or platform.key, max_retries=0, timeout=60)


def test_every_deploy_check_passed(platform):
    assert platform.rows and all(ok for _, _, ok in platform.rows), platform.rows


def test_models_list_shows_the_configured_model(platform):
    assert [m.id for m in client(platform).models.list()] == [MODEL_ALIAS]


def test_chat_completion_is_answered_by_the_model_and_audited(platform):
    session_id = f"e2e-{uuid.uuid4().hex[:12]}"
    reply = client(platform).chat.completions.create(
        model=MODEL_ALIAS,
        temperature=0,
        max_tokens=30,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        extra_headers={"X-Session-Id": session_id},
    )
    text = reply.choices[0].message.content or ""
    assert "Paris" in text, text
    assert reply.usage is not None and reply.usage.completion_tokens > 0

    # The record keeps the caller's session inside its key's namespace.
    records = [r for r in platform.audit_records() if r.get("session_id") == session_key(platform.key_id, session_id)]
    assert len(records) == 1, records
    (record,) = records
    assert record["user_id"] == "local-user"  # the key's owner, from the authorizer's context
    assert record["api_key_id"] == platform.key_id
    assert record["status_code"] == 200 and record["model_id"] == MODEL_ALIAS


def test_an_invalid_key_is_an_authentication_error(platform):
    with pytest.raises(openai.AuthenticationError):
        client(platform, key=KEY_PREFIX + "x" * 43).models.list()


def test_an_invalid_body_is_a_bad_request_error(platform):
    with pytest.raises(openai.BadRequestError):
        client(platform).chat.completions.create(model=MODEL_ALIAS, messages=[], temperature=0)


def test_every_route_of_the_cloud_assembly_is_served_by_its_function(platform):
    """Derived from cdk.out: each deployed route reaches the function (an empty body is the function's 400 or a
    GET's 200), never the gateway's unknown-route 404 or a failed integration."""
    assert platform.assembly is not None and platform.assembly.routes
    _, key = create_key(platform.client)  # its own usage-plan bucket; paced by the plan's Retry-After
    token = platform.sign_in(LOCAL_USER_EMAIL, platform.user_password)  # the user routes' credentials
    for route in platform.assembly.routes:
        user_route = route.authorization == "COGNITO_USER_POOLS"
        path = route.path
        if "{conversation_id}" in path:  # a conversation of the user's own, made for this route
            headers = {"Authorization": token, "Content-Type": "application/json"}
            made = urllib.request.Request(platform.base_url + "/conversations", method="POST", data=b"{}",  # noqa: S310
                                          headers=headers)  # fmt: skip
            with urllib.request.urlopen(made, timeout=30) as reply:  # noqa: S310
                path = path.replace("{conversation_id}", json.loads(reply.read())["id"])
        request = urllib.request.Request(  # noqa: S310 - the local gateway on 127.0.0.1
            platform.base_url + path, method=route.method,
            data=b"{}" if route.method not in ("GET", "DELETE") else None,
            headers={"Authorization": token if user_route else f"Bearer {key}", "Content-Type": "application/json"},
        )  # fmt: skip
        for _attempt in range(3):
            try:
                with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
                    status, body = reply.status, json.loads(reply.read())
            except urllib.error.HTTPError as error:
                status, body = error.code, json.loads(error.read())
                if status == 429:
                    time.sleep(float(error.headers.get("Retry-After") or 1))
                    continue
            break
        assert status in (200, 400), (route, status, body)
        assert status == 200 or body["error"]["type"] == "invalid_request_error", (route, body)


def send(platform: LocalPlatform, method: str, path: str, headers: dict[str, str]) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(platform.base_url + path, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - the local gateway on 127.0.0.1
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_a_browser_preflight_gets_the_stages_cors_answer_and_patch_the_error_shape(platform):
    (origin,) = STAGES[STAGE].api.cors_allowed_origins
    status, headers, body = send(platform, "OPTIONS", "/chat/completions",
                                 {"Origin": origin, "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert status == 204 and body == b""
    assert headers["Access-Control-Allow-Origin"] == origin and "POST" in headers["Access-Control-Allow-Methods"]
    status, _, body = send(platform, "PATCH", "/models", {"Authorization": f"Bearer {platform.key}"})
    assert status == 404 and json.loads(body)["error"]["code"] == "unknown_route"


def test_a_burst_beyond_the_keys_usage_plan_is_a_429_with_retry_after(platform):
    """A fresh key on the first plan (its own token bucket): the burst passes, then API Gateway's 429. Each
    request would have to take longer than 1/rate seconds for the bucket never to run dry."""
    _, key = create_key(platform.client)
    plan = STAGES[STAGE].api.usage_plans[0]
    statuses = []
    for _ in range(plan.burst_limit * 10):
        status, headers, body = send(platform, "GET", "/models", {"Authorization": f"Bearer {key}"})
        statuses.append(status)
        if status == 429:
            break
    assert statuses[-1] == 429 and statuses[: plan.burst_limit] == [200] * plan.burst_limit, statuses
    assert headers["Retry-After"] and json.loads(body)["error"]["code"] == "rate_limit_exceeded"


def _session_records(platform: LocalPlatform, key_id: str, session_id: str) -> list[dict[str, Any]]:
    wanted = session_key(key_id, session_id)
    return [r for r in platform.audit_records() if r.get("session_id") == wanted]


def test_a_streamed_answer_arrives_while_it_is_generated_with_usage_and_is_audited(platform):
    """Through the Runtime API loop, the local Runtime API and the gateway's chunk relay: the first piece arrives
    long before the last (the model generates ~45 tokens/s here), usage comes last, the record holds it all. The
    stage's guardrail scans in sync mode (it masks): text comes in assessed pieces of 128 characters, then 256..."""
    session_id = f"e2e-{uuid.uuid4().hex[:12]}"
    key_id, key = create_key(platform.client)  # its own usage-plan bucket, whatever ran before
    started = time.monotonic()
    stream = client(platform, key).chat.completions.create(
        model=MODEL_ALIAS, temperature=0, max_tokens=120, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Write a short story about a lighthouse keeper."}],
        extra_headers={"X-Session-Id": session_id},
    )  # fmt: skip
    arrivals, pieces, chunks = [], [], []
    for chunk in stream:
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
            pieces.append(chunk.choices[0].delta.content)
    assert len(pieces) >= 3, pieces
    assert arrivals[-1] - arrivals[0] > 0.5, arrivals  # streamed, not one buffered answer
    assert chunks[0].choices[0].delta.role == "assistant" and len({c.id for c in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 10
    (record,) = _session_records(platform, key_id, session_id)
    assert record["output_text"] == "".join(pieces) and record["streamed"] is True
    assert record["disconnected"] is False and record["status_code"] == 200
    assert record["completion_tokens"] == chunks[-1].usage.completion_tokens


def test_a_client_that_goes_away_mid_stream_stops_the_model_call_and_is_recorded(platform):
    session_id = f"e2e-{uuid.uuid4().hex[:12]}"
    key_id, key = create_key(platform.client)
    stream = client(platform, key).chat.completions.create(
        model=MODEL_ALIAS, temperature=0, max_tokens=400, stream=True,
        messages=[{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        extra_headers={"X-Session-Id": session_id},
    )  # fmt: skip
    # The role, then the guardrail's first assessed piece (128 characters of up to ~1,600: a socket closed by its
    # peer fails only the writes after the next one, so a few pieces must still be to come).
    received = [chunk for _, chunk in zip(range(2), stream, strict=False)]
    stream.close()  # the HTTP connection goes away mid-answer
    assert len(received) == 2
    deadline = time.monotonic() + 30
    records = _session_records(platform, key_id, session_id)
    while not records and time.monotonic() < deadline:
        time.sleep(0.5)
        records = _session_records(platform, key_id, session_id)
    (record,) = records
    assert record["disconnected"] is True and record["streamed"] is True
    # What had been generated when the caller left (the model call is closed then; no usage chunk came).
    assert record["output_text"] and record["status_code"] == 200, record
