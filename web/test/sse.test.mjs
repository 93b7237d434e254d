import { test } from "node:test";
import assert from "node:assert/strict";
import { SseParser } from "../src/sse.js";

const STREAM = 'event: start\ndata: {"message_id":"m_00002","citations":[]}\n\n: keep-alive\n\nevent: delta\ndata: {"text":"Hel"}\n\nevent: delta\ndata: {"text":"lo"}\n\nevent: end\ndata: {"finish_reason":"stop"}\n\n';

test("whole events come out whatever the chunking", () => {
  for (const size of [1, 2, 3, 7, 64, STREAM.length]) {
    const parser = new SseParser();
    const events = [];
    for (let i = 0; i < STREAM.length; i += size) events.push(...parser.push(STREAM.slice(i, i + size)));
    assert.deepEqual(events.map((e) => e.event), ["start", "delta", "delta", "end"], `chunks of ${size}`);
    assert.equal(events.filter((e) => e.event === "delta").map((e) => JSON.parse(e.data).text).join(""), "Hello");
  }
});

test("CRLF and CR line ends, a CRLF split across chunks, multi-line data", () => {
  const parser = new SseParser();
  const events = [...parser.push("event: delta\r"), ...parser.push("\ndata: a\r\ndata: b\r\r\n"), ...parser.push("data: c\n\n")];
  assert.deepEqual(events, [{ event: "delta", data: "a\nb" }, { event: "message", data: "c" }]);
});

test("an event cut off by the end of the stream is dropped", () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push('event: delta\ndata: {"text":"x"}'), []);
  assert.deepEqual(parser.end(), []);
});
