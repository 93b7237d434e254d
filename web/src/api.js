// The chat API (the platform's REST API, stage v1, conversation routes) as the app calls it: the caller's ID
// token on every request, the API's error shape turned into ApiError, and a streamed answer as events.

import { SseParser } from "./sse.js";

export class ApiError extends Error {
  constructor({ status, code = null, type = null, message, retryAfter = null }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.type = type;
    this.retryAfter = retryAfter;
  }

  get expired() {
    return this.status === 401;
  }

  get throttled() {
    return this.status === 429;
  }

  // A spent token or cost budget (the platform's 429 insufficient_quota): waiting until it resets helps, retrying
  // sooner does not.
  get budgetSpent() {
    return this.status === 429 && this.code === "insufficient_quota";
  }

  get connectionLost() {
    return this.status === 0;
  }
}

// Retry-After as seconds from now: a number of seconds or an HTTP date; null when absent or unreadable.
export function retryAfterSeconds(value, now = Date.now()) {
  if (value == null || value === "") return null;
  if (/^\d+$/.test(value.trim())) return parseInt(value, 10);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - now) / 1000));
}

// A wait in seconds as people read it: "45 s", "12 min", "4 h 55 min".
export function waitText(seconds) {
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 90) return `${whole} s`;
  const minutes = Math.round(whole / 60);
  if (minutes < 90) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
}

const FALLBACK = {
  0: "The connection to the server was lost.",
  401: "Your session has expired.",
  403: "You are not allowed to do that.",
  404: "That conversation no longer exists.",
  413: "The message is too long.",
  429: "Too many requests right now.",
};

// An error response of the API (OpenAI's shape: {"error": {message, type, code}}) or of the gateway in front
// of it ({"message": ...}), whatever the body holds; a body that is not JSON gives the status's own sentence.
export function errorFrom(status, headers, bodyText) {
  let message = null;
  let code = null;
  let type = null;
  try {
    const body = JSON.parse(bodyText);
    const error = body && typeof body.error === "object" && body.error ? body.error : body;
    if (error && typeof error.message === "string") message = error.message;
    if (error && typeof error.code === "string") code = error.code;
    if (error && typeof error.type === "string") type = error.type;
  } catch {
    // not JSON: keep the status's sentence
  }
  const retryAfter = retryAfterSeconds(headers && headers.get ? headers.get("Retry-After") : null);
  return new ApiError({ status, code, type, retryAfter, message: message || FALLBACK[status] || `The server answered ${status}.` });
}

export class ChatClient {
  // token({refresh}) gives the current ID token (a refreshed one when asked), or null when signed out.
  constructor({ baseUrl, token, fetch = globalThis.fetch.bind(globalThis) }) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
    this.fetch = fetch;
  }

  async send(method, path, body, { signal, accept = "application/json" } = {}) {
    for (const refresh of [false, true]) {
      const token = await this.token({ refresh });
      if (!token) throw new ApiError({ status: 401, message: FALLBACK[401] });
      let response;
      try {
        response = await this.fetch(this.baseUrl + path, {
          method,
          signal,
          headers: { Authorization: token, Accept: accept, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (error) {
        if (error && error.name === "AbortError") throw error;
        throw new ApiError({ status: 0, code: "connection_lost", message: FALLBACK[0] });
      }
      if (response.status === 401 && !refresh) continue; // an expired token: refresh it once and try again
      if (!response.ok) throw errorFrom(response.status, response.headers, await response.text().catch(() => ""));
      return response;
    }
    throw new ApiError({ status: 401, message: FALLBACK[401] });
  }

  async json(method, path, body) {
    const response = await this.send(method, path, body);
    return response.json();
  }

  listConversations(cursor = null, limit = 20) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor) query.set("cursor", cursor);
    return this.json("GET", `/conversations?${query}`);
  }

  createConversation() {
    return this.json("POST", "/conversations", {});
  }

  getConversation(id) {
    return this.json("GET", `/conversations/${encodeURIComponent(id)}`);
  }

  renameConversation(id, title) {
    return this.json("PATCH", `/conversations/${encodeURIComponent(id)}`, { title });
  }

  deleteConversation(id) {
    return this.json("DELETE", `/conversations/${encodeURIComponent(id)}`);
  }

  // A question and its streamed answer: yields {event, data} (data parsed) for start, delta, end and error.
  // A stream that stops before `end` or `error` throws ApiError with status 0 (the connection dropped).
  async *ask(id, content, { signal } = {}) {
    const response = await this.send("POST", `/conversations/${encodeURIComponent(id)}/messages`, { content }, { signal, accept: "text/event-stream" });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    let finished = false;
    try {
      for (;;) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (error && error.name === "AbortError") throw error;
          break;
        }
        if (chunk.done) break;
        for (const event of parser.push(decoder.decode(chunk.value, { stream: true }))) {
          let data;
          try {
            data = JSON.parse(event.data);
          } catch {
            continue; // not one of the API's events
          }
          if (event.event === "end" || event.event === "error") finished = true;
          yield { event: event.event, data };
        }
      }
    } finally {
      reader.releaseLock?.();
    }
    if (!finished) throw new ApiError({ status: 0, code: "connection_lost", message: "The connection dropped before the answer was complete." });
  }
}
