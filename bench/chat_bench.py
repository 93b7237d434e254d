"""The chat on `make local`, measured in one run: what the history adds to each message, and what grounding (the
knowledge base search, the history, the sources in the prompt) adds to the time to the first token.

    .venv/bin/python bench/chat_bench.py [--messages 30] [--questions 15]

Starts the LocalPlatform `make local` starts (free ports, state in .local/bench-chat/, the sample corpus ingested),
then:
- history: the chat function's own History code against the emulator's history table, per message: the read a
  question makes (its place reserved, the conversation's messages read for context) and the write its answer makes
  (question and answer stored, the conversation updated); p50 of each over ``--messages`` messages;
- time to first token through the whole path, same question, same local model (SmolLM2-135M), interleaved: a
  grounded answer (POST /conversations/{id}/messages, signed in, a new conversation each time: no history) against a
  plain chat completion (POST /chat/completions, stream), p50 of each and the difference; a different question each
  round (the model server would otherwise reuse its cache of the same prompt). Each stream is closed at its first
  token.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambda_src.chat.history import History, Message  # noqa: E402 - after the path set-up
from stacks.stages import STAGES  # noqa: E402
from tools.local.deploy import stack_output  # noqa: E402
from tools.local.launcher import LOCAL_USER_EMAIL, MODEL_ALIAS, STAGE, STATE, LocalPlatform  # noqa: E402
from tools.local.processes import Ports  # noqa: E402

# Different questions, so neither path answers from the model server's cache of an earlier prompt.
QUESTIONS = ("How do I add a capability to the platform?", "What does make local start?",
             "How are API keys stored?", "Which cdk-nag packs does the app run?", "What does the audit log record?",
             "How long does the test suite take?", "How is the upstream API key rotated?",
             "What does the knowledge pipeline do each week?", "How are stateful logical ids protected?",
             "What does the WAF block?", "How is streaming done from a Python Lambda?",
             "What is the idle cost of the dev stage?", "How do I deploy to a real account?",
             "What does the compliance report contain?", "Which sources does the knowledge base read?")  # fmt: skip


def first_token(platform: LocalPlatform, path: str, headers: dict[str, str], body: dict[str, object],
                marker: bytes) -> float:  # fmt: skip
    """Milliseconds until the first piece of the answer (``marker`` in the stream), then the stream is closed."""
    connection = http.client.HTTPConnection("127.0.0.1", platform.ports.api, timeout=120)
    started = time.perf_counter()
    connection.request("POST", f"/v1{path}", json.dumps(body), {"Content-Type": "application/json", **headers})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}: {response.read()[:300]!r}")
    seen = b""
    while marker not in seen:
        piece = response.read1(65_536)
        if not piece:
            raise RuntimeError(f"{path} ended before its first token")
        seen += piece
    elapsed = (time.perf_counter() - started) * 1000
    connection.close()
    return elapsed


def prompt_tokens(platform: LocalPlatform, path: str, headers: dict[str, str], body: dict[str, object]) -> int:
    """The prompt's size as the model counted it: the stream read to its end, its usage."""
    connection = http.client.HTTPConnection("127.0.0.1", platform.ports.api, timeout=300)
    connection.request("POST", f"/v1{path}", json.dumps(body), {"Content-Type": "application/json", **headers})
    text = connection.getresponse().read().decode()
    connection.close()
    found = re.findall(r'"prompt_tokens": ?(\d+)', text)
    return int(found[-1]) if found else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--questions", type=int, default=15)
    args = parser.parse_args()
    platform = LocalPlatform(ports=Ports.free(), state=STATE / "bench-chat")
    try:
        platform.start()
        table_name = stack_output(platform.client, STAGES[STAGE].stack_name("chat"), "HistoryTableName")
        history = History(
            platform.dynamodb().Table(table_name), retention_days=STAGES[STAGE].chat.history_retention_days
        )
        user = "bench-user"
        conversation = history.create(user, None)
        reads, writes = [], []
        for n in range(args.messages):
            begin = time.perf_counter()
            reserved = history.reserve(user, conversation.id)
            assert reserved is not None
            history.messages(user, conversation.id)
            reads.append((time.perf_counter() - begin) * 1000)
            answer = Message(reserved[1] + 1, "assistant", f"Answer {n}. " * 40, "", [{"number": 1, "title": "t"}],
                             {"prompt_tokens": 900, "completion_tokens": 120}, False, "stop")  # fmt: skip
            begin = time.perf_counter()
            history.record(user, reserved[0], reserved[1], f"Question {n}?", answer)
            writes.append((time.perf_counter() - begin) * 1000)

        token = platform.sign_in(LOCAL_USER_EMAIL, platform.user_password)
        interval = 1 / STAGES[STAGE].api.usage_plans[0].rate_limit
        grounded, plain = [], []
        for n in range(args.questions):
            question = QUESTIONS[n % len(QUESTIONS)]
            connection = http.client.HTTPConnection("127.0.0.1", platform.ports.api, timeout=60)
            headers = {"Authorization": token, "Content-Type": "application/json"}
            connection.request("POST", "/v1/conversations", "{}", headers)
            chat_id = json.loads(connection.getresponse().read())["id"]
            connection.close()
            grounded.append(first_token(platform, f"/conversations/{chat_id}/messages", {"Authorization": token},
                                        {"content": question}, b"event: delta"))  # fmt: skip
            # The first chunk our API sends follows the model's first event (lambda_src/inference/streaming.py).
            body = {"model": MODEL_ALIAS, "stream": True, "max_tokens": 30,
                    "messages": [{"role": "user", "content": question}]}  # fmt: skip
            plain.append(first_token(platform, "/chat/completions", {"Authorization": f"Bearer {platform.key}"}, body,
                                     b"data: "))  # fmt: skip
            time.sleep(interval)
        sizes = (prompt_tokens(platform, f"/conversations/{chat_id}/messages", {"Authorization": token},
                               {"content": QUESTIONS[0]}),
                 prompt_tokens(platform, "/chat/completions", {"Authorization": f"Bearer {platform.key}"},
                               {**body, "stream_options": {"include_usage": True},
                                "messages": [{"role": "user", "content": QUESTIONS[0]}]}))  # fmt: skip
    finally:
        platform.stop()
    print(f"history per message ({args.messages} messages, one conversation): read (reserve + the messages for "
          f"context) p50 {statistics.median(reads):.1f} ms, write (question, answer, conversation) p50 "
          f"{statistics.median(writes):.1f} ms")  # fmt: skip
    g, p = statistics.median(grounded), statistics.median(plain)
    print(f"time to first token, {args.questions} questions: grounded p50 {g:.0f} ms vs plain chat p50 {p:.0f} ms: "
          f"+{g - p:.0f} ms (prompts of {sizes[0]} and {sizes[1]} tokens: the sources and the rules the model reads "
          "first, beside the history read and the knowledge base search)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
