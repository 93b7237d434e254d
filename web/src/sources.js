// Where a citation's link goes: web sources (http, https) as they are; a document of the dataset bucket
// (s3://bucket/key) to its page in the S3 console, for readers with access to the bucket; anything else is
// shown as text.

import { safeHref } from "./markdown.js";

export function sourceLink(uri) {
  const value = String(uri || "");
  const s3 = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(value);
  if (s3) return `https://s3.console.aws.amazon.com/s3/object/${s3[1]}?prefix=${encodeURIComponent(s3[2])}`;
  const href = safeHref(value);
  return href && /^https?:/.test(href) ? href : null;
}
