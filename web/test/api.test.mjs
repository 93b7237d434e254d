import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, ChatClient, errorFrom, retryAfterSeconds, waitText } from "../src/api.js";

const headers = (values = {}) => new Headers(values);

test("the API's error shape, the gateway's, and a body that is not JSON", () => {
  const api = errorFrom(404, headers(), JSON.stringify({ error: { message: "No such conversation.", type: "invalid_request_error", code: "conversation_not_found" } }));
  assert.equal(api.message, "No such conversation.");
  assert.equal(api.code, "conversation_not_found");
  const gateway = errorFrom(429, headers({ "Retry-After": "7" }), JSON.stringify({ message: "Too Many Requests" }));
  assert.equal(gateway.message, "Too Many Requests");
  assert.equal(gateway.retryAfter, 7);
  assert.ok(gateway.throttled);
  const html = errorFrom(502, headers(), "<html>Bad gateway</html>");
  assert.equal(html.message, "The server answered 502.");
  assert.equal(html.status, 502);
});

test("a spent budget is told apart from throttling, and waits read as people read them", () => {
  const body = JSON.stringify({ error: { message: "This caller's budget of 100000 tokens per day (UTC) has 40 tokens left", type: "insufficient_quota", code: "insufficient_quota" } });
  const spent = errorFrom(429, headers({ "Retry-After": "17670" }), body);
  assert.ok(spent.throttled && spent.budgetSpent);
  assert.equal(spent.retryAfter, 17670);
  const throttled = errorFrom(429, headers({ "Retry-After": "7" }), JSON.stringify({ error: { message: "slow down", type: "rate_limit_error", code: "rate_limit_exceeded" } }));
  assert.ok(throttled.throttled && !throttled.budgetSpent);
  assert.deepEqual([45, 89, 90, 720, 5339, 5400, 17670, 86400].map(waitText), ["45 s", "89 s", "2 min", "12 min", "89 min", "1 h 30 min", "4 h 55 min", "24 h"]);
});

test("Retry-After as seconds or an HTTP date", () => {
  assert.equal(retryAfterSeconds("30"), 30);
  assert.equal(retryAfterSeconds(new Date(Date.now() + 10_500).toUTCString()) >= 9, true);
  assert.equal(retryAfterSeconds("soon"), null);
  assert.equal(retryAfterSeconds(null), null);
});

function client(responses) {
  const calls = [];
  const tokens = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    const next = responses.shift();
    if (next instanceof Error) throw next;
    return next;
  };
  const api = new ChatClient({ baseUrl: "https://api.example/v1/", fetch, token: async ({ refresh }) => {
    tokens.push(refresh);
    return refresh ? "fresh" : "stale";
  } });
  return { api, calls, tokens };
}

test("a 401 refreshes the token once and retries; a second 401 is an expired session", async () => {
  const ok = new Response(JSON.stringify({ object: "list", data: [], next_cursor: null }), { status: 200 });
  const first = client([new Response("{}", { status: 401 }), ok]);
  assert.deepEqual(await first.api.listConversations(), { object: "list", data: [], next_cursor: null });
  assert.deepEqual(first.tokens, [false, true]);
  assert.equal(first.calls[1].init.headers.Authorization, "fresh");
  assert.equal(first.calls[0].url, "https://api.example/v1/conversations?limit=20");
  const second = client([new Response("{}", { status: 401 }), new Response("{}", { status: 401 })]);
  await assert.rejects(second.api.listConversations(), (error) => error instanceof ApiError && error.expired);
});

test("the next page of conversations asks for the cursor of the last one", async () => {
  const page = new Response(JSON.stringify({ object: "list", data: [], next_cursor: null }), { status: 200 });
  const { api, calls } = client([page]);
  await api.listConversations("c_0193abcdef0123456789abcdef01");
  assert.equal(calls[0].url, "https://api.example/v1/conversations?limit=20&cursor=c_0193abcdef0123456789abcdef01");
});

test("a network failure is a lost connection, not a crash", async () => {
  const { api } = client([new TypeError("Failed to fetch")]);
  await assert.rejects(api.getConversation("c_1"), (error) => error instanceof ApiError && error.connectionLost);
});

test("a streamed answer yields its events; a stream that stops early is a lost connection", async () => {
  const body = 'event: start\ndata: {"message_id":"m_00002","citations":[]}\n\nevent: delta\ndata: {"text":"Hi"}\n\nevent: end\ndata: {"finish_reason":"stop"}\n\n';
  const whole = client([new Response(body, { status: 200 })]);
  const events = [];
  for await (const event of whole.api.ask("c_1", "Hello?")) events.push(event.event);
  assert.deepEqual(events, ["start", "delta", "end"]);
  assert.equal(JSON.parse(whole.calls[0].init.body).content, "Hello?");
  const cut = client([new Response(body.slice(0, 80), { status: 200 })]);
  await assert.rejects(async () => {
    for await (const event of cut.api.ask("c_1", "Hello?")) void event;
  }, (error) => error instanceof ApiError && error.connectionLost);
});

test("a 429 before the stream starts is an ApiError with when to retry", async () => {
  const { api } = client([new Response(JSON.stringify({ error: { message: "Slow down.", code: "rate_limit_exceeded" } }), { status: 429, headers: { "Retry-After": "3" } })]);
  await assert.rejects(async () => {
    for await (const event of api.ask("c_1", "x")) void event;
  }, (error) => error.throttled && error.retryAfter === 3 && error.code === "rate_limit_exceeded");
});
