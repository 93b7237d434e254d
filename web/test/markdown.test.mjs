import { test } from "node:test";
import assert from "node:assert/strict";
import { inline, parse, safeHref, textOf } from "../src/markdown.js";

const kinds = (nodes, out = []) => {
  for (const node of nodes) {
    if (typeof node === "string") continue;
    out.push(node.t);
    kinds(node.c || [], out);
  }
  return out;
};

test("paragraphs, headings, lists, quotes, rules and fenced code", () => {
  const tree = parse("# Title\n\nSome *em* and **strong** text.\n\n- one\n- two\n\n1. first\n2. second\n\n> quoted\n\n---\n\n```python\nprint('<b>')\n```");
  assert.deepEqual(tree.map((n) => n.t), ["h", "p", "ul", "ol", "blockquote", "hr", "pre"]);
  assert.equal(tree[6].lang, "python");
  assert.equal(tree[6].text, "print('<b>')");
  assert.deepEqual(kinds(tree[1].c), ["em", "strong"]);
  assert.equal(tree[2].c.length, 2);
});

test("an unclosed fence (an answer still streaming) is already a code block", () => {
  const tree = parse("Here:\n```js\nconst a = 1;");
  assert.equal(tree[1].t, "pre");
  assert.equal(tree[1].text, "const a = 1;");
});

test("markup in model output stays text: no node kind for HTML exists", () => {
  const payloads = ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "<a href=\"javascript:alert(1)\">x</a>"];
  for (const payload of payloads) {
    const tree = parse(payload);
    assert.deepEqual(kinds(tree), ["p"]);
    assert.equal(textOf(tree), payload);
  }
});

test("links keep only http, https and mailto targets", () => {
  assert.equal(safeHref("https://example.com/a?b=1"), "https://example.com/a?b=1");
  assert.equal(safeHref("mailto:a@example.com"), "mailto:a@example.com");
  for (const bad of ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "data:text/html,<b>", "vbscript:x", "/relative", "file:///etc/passwd"]) {
    assert.equal(safeHref(bad), null, bad);
  }
  const [node] = inline("[click](javascript:alert(1))");
  assert.equal(node.t, "span");
  assert.equal(textOf([node]), "click");
  const [link] = inline("[docs](https://example.com)");
  assert.deepEqual(link, { t: "a", href: "https://example.com/", c: ["docs"] });
});

test("images become their alt text (no remote fetches from an answer)", () => {
  const [node] = inline("![a cat](https://tracker.example/pixel.png)");
  assert.equal(node.t, "span");
  assert.equal(textOf([node]), "a cat");
});

test("citation numbers, inline code and escapes", () => {
  const nodes = inline("See [1] and [2], `x < y`, \\*not em\\*.");
  assert.deepEqual(nodes.filter((n) => typeof n !== "string").map((n) => n.t), ["cite", "cite", "code"]);
  assert.equal(textOf(nodes), "See [1] and [2], x < y, *not em*.");
});

test("deeply nested input does not recurse without bound", () => {
  const deep = ">".repeat(500) + " x";
  assert.ok(parse(deep).length >= 1);
  const stars = "**".repeat(2000) + "x";
  assert.ok(textOf(inline(stars)).includes("x"));
});
