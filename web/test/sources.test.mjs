import { test } from "node:test";
import assert from "node:assert/strict";
import { sourceLink } from "../src/sources.js";

test("web sources link as they are, dataset documents to the S3 console, anything else not at all", () => {
  assert.equal(sourceLink("https://www.youtube.com/watch?v=abc"), "https://www.youtube.com/watch?v=abc");
  assert.equal(sourceLink("s3://my-bucket/knowledge/docs/a b.md"), "https://s3.console.aws.amazon.com/s3/object/my-bucket?prefix=knowledge%2Fdocs%2Fa%20b.md");
  assert.equal(sourceLink("javascript:alert(1)"), null);
  assert.equal(sourceLink(""), null);
});
