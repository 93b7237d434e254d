// The markdown tree (markdown.js) as DOM nodes: elements from a fixed list, text as text nodes, links only with
// the href safeHref allowed. Nothing is ever parsed as HTML, so an answer cannot add markup, attributes or scripts.

const BLOCK_TAGS = { p: "p", ul: "ul", ol: "ol", li: "li", blockquote: "blockquote", strong: "strong", em: "em", span: "span" };

export function render(nodes, { doc = document, citationHref = () => null } = {}) {
  const fragment = doc.createDocumentFragment();
  for (const node of nodes) fragment.append(renderNode(node, doc, citationHref));
  return fragment;
}

function renderNode(node, doc, citationHref) {
  if (typeof node === "string") return doc.createTextNode(node);
  const children = (element) => {
    for (const child of node.c || []) element.append(renderNode(child, doc, citationHref));
    return element;
  };
  switch (node.t) {
    case "h": // answers sit under the page's own headings: their headings start at level 3
      return children(doc.createElement(`h${Math.min(6, node.level + 2)}`));
    case "hr":
      return doc.createElement("hr");
    case "pre": {
      const pre = doc.createElement("pre");
      const code = doc.createElement("code");
      if (/^[\w+#.-]+$/.test(node.lang)) code.dataset.lang = node.lang;
      code.textContent = node.text;
      pre.append(code);
      pre.tabIndex = 0; // long lines scroll: reachable from the keyboard
      return pre;
    }
    case "code": {
      const code = doc.createElement("code");
      code.textContent = node.text;
      return code;
    }
    case "a": {
      const link = children(doc.createElement("a"));
      link.href = node.href;
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      return link;
    }
    case "cite": {
      const href = citationHref(node.n);
      const label = `[${node.n}]`;
      if (!href) return doc.createTextNode(label);
      const link = doc.createElement("a");
      link.href = href;
      link.className = "cite";
      link.textContent = label;
      link.setAttribute("aria-label", `source ${node.n}`);
      return link;
    }
    case "ol": {
      const list = children(doc.createElement("ol"));
      if (Number.isInteger(node.start)) list.start = node.start;
      return list;
    }
    default: {
      const tag = BLOCK_TAGS[node.t];
      return tag ? children(doc.createElement(tag)) : doc.createTextNode("");
    }
  }
}
