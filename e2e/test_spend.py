"""Spend control end to end on this machine: a key on the local stage's trial plan runs out of its daily tokens
against the real local model and gets OpenAI's 429 through the openai SDK; GET /usage shows a key only itself; a
first model that answers 429 falls back to the local model, which the answer and the audit record name."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from lambda_src.contracts.audit import session_key
from stacks.stages import LOCAL_CONFIG_CACHE_SECONDS, STAGES, TRIAL_PLAN
from tools.local.launcher import MODEL_ALIAS, LocalPlatform, configure_model, create_key, set_model_parameters

# A question a 135M model answers at length: each answer spends most of its max_tokens.
QUESTION: list[Any] = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]


def client(platform: LocalPlatform, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=platform.base_url, api_key=key, max_retries=0, timeout=60)


def usage(platform: LocalPlatform, key: str) -> dict[str, Any]:
    url = f"{platform.base_url}/usage"  # the local API on 127.0.0.1
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        found = json.loads(response.read())
    assert isinstance(found, dict)
    return found


def test_a_trial_key_runs_out_of_its_daily_tokens_and_gets_openais_429(platform):
    """Each question reserves its input estimate and max_tokens and settles what the model counted: a few pass,
    then the day's budget has less left than a question may use."""
    key_id, key = create_key(platform.client, TRIAL_PLAN.name)
    sdk = client(platform, key)
    answered = 0
    refused: openai.RateLimitError | None = None
    for _ in range(15):
        try:
            sdk.chat.completions.create(model=MODEL_ALIAS, messages=QUESTION, max_tokens=250, temperature=0)
            answered += 1
        except openai.RateLimitError as error:
            if error.code == "rate_limit_exceeded":  # the usage plan's flood guard (2 requests/s): not the budget
                time.sleep(1)
                continue
            refused = error
            break
    assert refused is not None and answered >= 1, answered
    assert refused.code == "insufficient_quota" and refused.type == "insufficient_quota", (answered, refused.message)
    assert "tokens per day (UTC)" in refused.message
    resets = int(refused.response.headers["Retry-After"])
    assert 0 < resets <= 86_400
    mine = usage(platform, key)
    assert mine["limits"]["tokens_per_day"] == TRIAL_PLAN.budget.tokens_per_day
    used = mine["usage"]["tokens_today"]
    assert 0 < used <= TRIAL_PLAN.budget.tokens_per_day and used + 250 > TRIAL_PLAN.budget.tokens_per_day
    assert mine["usage"]["cost_this_month_usd"] == 0  # the local model is priced at nothing
    # Streams are refused the same way, before a byte of an answer.
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model=MODEL_ALIAS, messages=QUESTION, max_tokens=250, stream=True)
    # Another key (the platform's, on the standard plan) sees only its own use.
    theirs = usage(platform, platform.key)
    assert theirs["limits"] == STAGES["dev"].api.usage_plans[0].budget._asdict()
    assert key_id not in json.dumps(theirs)


class FlakyUpstream:
    """An OpenAI-compatible upstream that is always over capacity: 429 to every chat completion."""

    def __init__(self) -> None:
        self.requests = 0
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                upstream.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.dumps({"error": {"message": "over capacity", "type": "rate_limit_error"}}).encode()
                self.send_response(429)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky_first(platform: LocalPlatform) -> Iterator[FlakyUpstream]:
    """The stage's model list switched in Parameter Store, as an operator would: the flaky upstream first, the local
    model second; switched back afterwards."""
    flaky = FlakyUpstream()
    model_base_url = f"http://127.0.0.1:{platform.ports.model}/v1"
    prices = json.dumps({"flaky-model": {"input": 0, "output": 0}, MODEL_ALIAS: {"input": 0, "output": 0}})
    fallbacks = json.dumps([{"model_id": MODEL_ALIAS, "provider": "openai-compatible",
                             "upstream_base_url": model_base_url}])  # fmt: skip
    set_model_parameters(platform.client, model_id="flaky-model", upstream_base_url=flaky.base_url,
                         fallbacks=fallbacks, prices=prices)  # fmt: skip
    time.sleep(LOCAL_CONFIG_CACHE_SECONDS + 1)  # the functions' settings cache
    try:
        yield flaky
    finally:
        configure_model(platform.client, platform.ports.model, platform.upstream_key)
        time.sleep(LOCAL_CONFIG_CACHE_SECONDS + 1)
        flaky.close()


def test_a_first_model_answering_429_falls_back_to_the_local_model(platform, flaky_first):
    session_id = f"e2e-{uuid.uuid4().hex[:12]}"
    sdk = client(platform, platform.key)
    # The caller asks for the configured model (GET /models); the model that answered names itself.
    reply = sdk.chat.completions.create(model="flaky-model", max_tokens=20, temperature=0,
                                        messages=[{"role": "user", "content": "Capital of France?"}],
                                        extra_headers={"X-Session-Id": session_id})  # fmt: skip
    assert reply.model == MODEL_ALIAS and "Paris" in (reply.choices[0].message.content or "")
    stream = sdk.chat.completions.create(model="flaky-model", messages=[{"role": "user", "content": "Say hi."}],
                                         max_tokens=10, stream=True)  # fmt: skip
    assert {chunk.model for chunk in stream} == {MODEL_ALIAS}  # a stream falls back before its first byte
    assert flaky_first.requests == 2
    wanted = session_key(platform.key_id, session_id)
    (record,) = [r for r in platform.audit_records() if r.get("session_id") == wanted and r.get("phase") != "request"]
    assert record["model_id"] == MODEL_ALIAS and record["status_code"] == 200
