// Server-sent events (text/event-stream) parsed as they arrive: text goes in piece by piece, in whatever chunks
// the network delivers (an event may be split anywhere, even inside a CRLF), and whole events come out.

export class SseParser {
  constructor() {
    this.buffer = "";
    this.name = "";
    this.data = [];
    this.pendingCR = false;
  }

  // Feed decoded text; returns the events it completed, each {event, data}.
  push(text) {
    let chunk = text;
    if (this.pendingCR && chunk.startsWith("\n")) chunk = chunk.slice(1); // the LF of a CRLF split in two
    this.pendingCR = chunk.endsWith("\r");
    this.buffer += chunk;
    const events = [];
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop();
    for (const line of lines) this.line(line, events);
    return events;
  }

  // The stream ended: an event without its closing blank line is incomplete and dropped, as browsers do.
  end() {
    this.buffer = "";
    this.name = "";
    this.data = [];
    return [];
  }

  line(line, events) {
    if (line === "") {
      if (this.data.length) events.push({ event: this.name || "message", data: this.data.join("\n") });
      this.name = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.name = value;
    else if (field === "data") this.data.push(value);
  }
}
