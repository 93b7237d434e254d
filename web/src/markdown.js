// Markdown for model output, which is untrusted: parsed into a plain tree of a few node kinds, never into HTML.
// render.js turns the tree into DOM nodes with createElement and text nodes only, so markup in an answer
// (<script>, <img onerror>, a javascript: link) stays text and nothing in it can run. No DOM here: Node's
// tests use it as it is.
//
// Blocks: paragraphs, headings, fenced code, lists, block quotes, rules. Inline: code, bold, italic, links
// (http, https and mailto only), citation numbers [n]. Images become their alt text (no remote fetches).

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}>[ ]?(.*)$/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;

export function safeHref(raw) {
  const value = String(raw).trim();
  if (/^#[\w-]*$/.test(value)) return value;
  let url;
  try {
    url = new URL(value);
  } catch {
    return null; // relative links in an answer point nowhere the reader expects
  }
  return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

export function parse(text) {
  const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
  return blocks(lines, 0);
}

function blocks(lines, depth) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*$/.test(line)) {
      i += 1;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1];
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(marker)) body.push(lines[i++]);
      i += 1; // the closing fence (an answer still streaming may not have it yet)
      out.push({ t: "pre", lang: fence[2] || "", text: body.join("\n") });
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      out.push({ t: "h", level: heading[1].length, c: inline(heading[2]) });
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      out.push({ t: "hr" });
      i += 1;
      continue;
    }
    if (QUOTE.test(line) && depth < 8) {
      const inner = [];
      while (i < lines.length && QUOTE.test(lines[i])) inner.push(QUOTE.exec(lines[i++])[1]);
      out.push({ t: "blockquote", c: blocks(inner, depth + 1) });
      continue;
    }
    const item = ITEM.exec(line);
    if (item && depth < 8) {
      const ordered = /\d/.test(item[2]);
      const list = { t: ordered ? "ol" : "ul", c: [] };
      if (ordered && parseInt(item[2], 10) !== 1) list.start = parseInt(item[2], 10);
      while (i < lines.length) {
        const current = ITEM.exec(lines[i]);
        if (!current || /\d/.test(current[2]) !== ordered) break;
        const body = [current[3]];
        i += 1;
        while (i < lines.length && (/^( {2,}|\t)\S/.test(lines[i]) || (/^\s*$/.test(lines[i]) && /^( {2,}|\t)\S/.test(lines[i + 1] || "")))) {
          body.push(lines[i].replace(/^( {1,4}|\t)/, ""));
          i += 1;
        }
        const content = blocks(body, depth + 1);
        list.c.push({ t: "li", c: content.length === 1 && content[0].t === "p" ? content[0].c : content });
      }
      out.push(list);
      continue;
    }
    const paragraph = [];
    while (i < lines.length && !/^\s*$/.test(lines[i]) && !(paragraph.length && startsBlock(lines[i]))) {
      paragraph.push(lines[i].trim());
      i += 1;
    }
    out.push({ t: "p", c: inline(paragraph.join("\n")) });
  }
  return out;
}

// Inline text: a left-to-right scan; anything that is not one of the forms below is text, markup included.
export function inline(text, depth = 0) {
  const out = [];
  let plain = "";
  const flush = () => {
    if (plain) out.push(plain);
    plain = "";
  };
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    const ch = text[i];
    if (ch === "\\" && i + 1 < text.length && /[\\`*_{}[\]()#+\-.!<>|~]/.test(text[i + 1])) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === "\n") {
      plain += " ";
      i += 1;
      continue;
    }
    if (ch === "`") {
      const run = /^`+/.exec(rest)[0];
      const end = text.indexOf(run, i + run.length);
      if (end !== -1) {
        flush();
        out.push({ t: "code", text: text.slice(i + run.length, end).replace(/\n/g, " ") });
        i = end + run.length;
        continue;
      }
      plain += run;
      i += run.length;
      continue;
    }
    const cite = /^\[(\d{1,3})\](?!\()/.exec(rest);
    if (cite) {
      flush();
      out.push({ t: "cite", n: parseInt(cite[1], 10) });
      i += cite[0].length;
      continue;
    }
    const link = /^(!?)\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/.exec(rest);
    if (link) {
      flush();
      const href = link[1] ? null : safeHref(link[3]);
      const label = depth < 4 ? inline(link[2], depth + 1) : [link[2]];
      out.push(href ? { t: "a", href, c: label.length ? label : [href] } : { t: "span", c: label });
      i += link[0].length;
      continue;
    }
    const auto = /^<(https?:\/\/[^\s<>]+)>/.exec(rest);
    if (auto && safeHref(auto[1])) {
      flush();
      out.push({ t: "a", href: safeHref(auto[1]), c: [auto[1]] });
      i += auto[0].length;
      continue;
    }
    const strong = /^(\*\*|__)(?=\S)([\s\S]*?\S)\1/.exec(rest);
    if (strong && depth < 4) {
      flush();
      out.push({ t: "strong", c: inline(strong[2], depth + 1) });
      i += strong[0].length;
      continue;
    }
    const em = /^(\*|_)(?=[^\s*_])([\s\S]*?[^\s\\])\1(?![\w*])/.exec(rest);
    if (em && depth < 4 && (ch === "*" || !/\w/.test(text[i - 1] || ""))) {
      flush();
      out.push({ t: "em", c: inline(em[2], depth + 1) });
      i += em[0].length;
      continue;
    }
    plain += ch;
    i += 1;
  }
  flush();
  return out;
}

// The text of a tree, for tests and accessible names.
export function textOf(nodes) {
  return nodes
    .map((node) => (typeof node === "string" ? node : node.text ?? (node.n !== undefined ? `[${node.n}]` : textOf(node.c || []))))
    .join("");
}
