// The chat app: sign in, conversations (list, new, rename, delete), a streamed answer rendered as markdown with
// its numbered sources. Everything the page shows from the API or the model goes in as text (render.js).

import { ApiError, ChatClient, waitText } from "./api.js";
import { Auth, AuthError } from "./auth.js";
import { parse } from "./markdown.js";
import { render } from "./render.js";
import { sourceLink } from "./sources.js";

const $ = (selector) => document.querySelector(selector);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};
const DRAFT_KEY = "llm-chat.draft";

const state = { auth: null, api: null, conversations: [], cursor: null, current: null, busy: false, lastQuestion: "" };

async function loadConfig() {
  const response = await fetch("/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: ${response.status}`);
  return response.json();
}

function show(section) {
  for (const id of ["#sign-in", "#app", "#loading"]) $(id).hidden = id !== section;
}

function notice(text, { retry = null, kind = "info" } = {}) {
  const box = $("#notice");
  box.replaceChildren();
  box.dataset.kind = kind;
  if (!text) return;
  box.append(el("span", { textContent: text }));
  if (retry) {
    const button = el("button", { type: "button", textContent: "Retry", className: "link" });
    button.addEventListener("click", () => {
      notice("");
      retry();
    });
    box.append(" ", button);
  }
}

// What a failed call tells the user; an expired session opens the sign-in form with the draft kept.
function explain(error, retry) {
  if (error instanceof ApiError) {
    if (error.expired) return expired();
    if (error.budgetSpent) {
      const when = error.retryAfter != null ? ` It resets in ${waitText(error.retryAfter)}.` : "";
      return notice(`You have used your token budget for now.${when} What you typed is kept.`, { kind: "warn" });
    }
    if (error.throttled) {
      const wait = error.retryAfter != null ? ` Try again in ${waitText(error.retryAfter)}.` : " Try again in a moment.";
      return notice(`${error.message}${wait}`, { retry, kind: "warn" });
    }
    if (error.connectionLost) return notice(error.message, { retry, kind: "warn" });
    return notice(error.message, { kind: "error" });
  }
  console.error(error);
  return notice("Something went wrong; reload the page and try again.", { kind: "error" });
}

function expired() {
  $("#sign-in-reason").textContent = "Your session has expired. Sign in again: what you typed is kept.";
  startSignIn();
}

// --- signing in ---------------------------------------------------------------------------------------------

function startSignIn() {
  for (const form of document.querySelectorAll("#sign-in form")) form.hidden = form.id !== "sign-in-form";
  $("#sign-in-error").textContent = "";
  show("#sign-in");
  $("#email").value = state.auth.email || $("#email").value;
  ($("#email").value ? $("#password") : $("#email")).focus();
}

async function signInStep(action) {
  const error = $("#sign-in-error");
  error.textContent = "";
  const buttons = document.querySelectorAll("#sign-in button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    const result = await action();
    if (result && result.challenge) return challenge(result.challenge);
    $("#password").value = "";
    $("#sign-in-reason").textContent = "";
    await signedIn();
  } catch (failure) {
    error.textContent = failure instanceof AuthError ? failure.message : "Signing in failed; try again.";
    if (!(failure instanceof AuthError)) console.error(failure);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

async function challenge(name) {
  const forms = { NEW_PASSWORD_REQUIRED: "#new-password-form", SOFTWARE_TOKEN_MFA: "#mfa-form", MFA_SETUP: "#mfa-setup-form" };
  for (const form of document.querySelectorAll("#sign-in form")) form.hidden = `#${form.id}` !== forms[name];
  if (name === "MFA_SETUP") $("#mfa-secret").textContent = await state.auth.startMfaSetup();
  $(forms[name]).querySelector("input").focus();
}

async function signedIn() {
  $("#who").textContent = state.auth.email || "";
  $("#account").hidden = false;
  show("#app");
  // Signed in again after an expired session: the list on the page is still this user's.
  if (!state.conversations.length) await refreshList();
  const id = location.pathname.startsWith("/c/") ? decodeURIComponent(location.pathname.slice(3)) : null;
  if (id && (!state.current || state.current.id !== id)) await open(id, { push: false });
  $("#composer-input").focus();
}

// --- conversations ------------------------------------------------------------------------------------------

async function refreshList() {
  try {
    const page = await state.api.listConversations();
    state.conversations = page.data;
    state.cursor = page.next_cursor;
    drawList();
  } catch (error) {
    explain(error, refreshList);
  }
}

async function moreConversations() {
  try {
    const page = await state.api.listConversations(state.cursor);
    state.conversations.push(...page.data);
    state.cursor = page.next_cursor;
    drawList();
  } catch (error) {
    explain(error, moreConversations);
  }
}

function drawList() {
  const list = $("#conversations");
  list.replaceChildren();
  for (const conversation of state.conversations) {
    const current = state.current && state.current.id === conversation.id;
    const button = el("button", { type: "button", className: "conversation", textContent: conversation.title || "New chat" });
    if (current) button.setAttribute("aria-current", "page");
    button.addEventListener("click", () => open(conversation.id));
    list.append(el("li", {}, button));
  }
  $("#empty-list").hidden = state.conversations.length > 0;
  $("#more").hidden = !state.cursor;
}

async function open(id, { push = true } = {}) {
  try {
    const conversation = await state.api.getConversation(id);
    state.current = conversation;
    if (push) history.pushState({}, "", `/c/${encodeURIComponent(id)}`);
    drawConversation();
    drawList();
    closeMenu();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      history.replaceState({}, "", "/");
      newChat();
      return notice("That conversation no longer exists.", { kind: "warn" });
    }
    explain(error, () => open(id, { push }));
  }
}

function newChat() {
  state.current = null;
  if (location.pathname !== "/") history.pushState({}, "", "/");
  drawConversation();
  drawList();
  closeMenu();
  $("#composer-input").focus();
}

function drawConversation() {
  const conversation = state.current;
  $("#chat-title").textContent = conversation ? conversation.title || "New chat" : "New chat";
  $("#rename").hidden = $("#delete").hidden = !conversation;
  const list = $("#messages");
  list.replaceChildren();
  for (const message of (conversation && conversation.messages) || []) list.append(messageView(message));
  $("#welcome").hidden = list.children.length > 0;
  const draft = sessionStorage.getItem(draftKey());
  if (draft !== null && !$("#composer-input").value) $("#composer-input").value = draft;
  notice("");
}

function draftKey() {
  return `${DRAFT_KEY}.${state.current ? state.current.id : "new"}`;
}

function messageView(message) {
  const item = el("article", { className: `message ${message.role}` });
  item.append(el("p", { className: "role", textContent: message.role === "user" ? "You" : "Assistant" }));
  const body = el("div", { className: "body" });
  item.append(body);
  if (message.role === "user") {
    body.append(el("p", { textContent: message.content }));
  } else {
    fillAnswer(item, message.id, message.content, message.citations || []);
    if (message.partial) item.append(el("p", { className: "partial", textContent: "This answer was cut off before it was complete." }));
    // The stage's guardrail blocked the question or the answer (its message is the answer), or masked part of it.
    if (message.finish_reason === "content_filter") item.append(el("p", { className: "partial filtered", textContent: "The organisation's content policy withheld or changed this answer." }));
  }
  return item;
}

function fillAnswer(item, messageId, text, citations) {
  const body = item.querySelector(".body");
  const numbers = new Set(citations.map((c) => c.number));
  body.replaceChildren(render(parse(text), { citationHref: (n) => (numbers.has(n) ? `#${messageId}-source-${n}` : null) }));
  let sources = item.querySelector(".sources");
  if (!sources) {
    sources = el("div", { className: "sources" });
    item.append(sources);
  }
  sources.replaceChildren();
  if (!citations.length) {
    sources.append(el("p", { className: "no-sources", textContent: "No documents of the knowledge base matched this question; the answer is not grounded in any source." }));
    return;
  }
  const list = el("ol", { className: "source-list", ariaLabel: "Sources" });
  for (const citation of citations) {
    const entry = el("li", { id: `${messageId}-source-${citation.number}`, value: citation.number });
    const href = sourceLink(citation.uri);
    const title = citation.title || citation.uri || `Source ${citation.number}`;
    entry.append(href ? el("a", { href, textContent: title, rel: "noopener noreferrer", target: "_blank" }) : el("span", { textContent: title }));
    if (citation.uri && citation.uri !== title) entry.append(" ", el("span", { className: "uri", textContent: citation.uri }));
    list.append(entry);
  }
  sources.append(el("p", { className: "sources-title", textContent: "Sources" }), list);
}

// --- asking -------------------------------------------------------------------------------------------------

async function ask(question) {
  if (state.busy || !question.trim()) return;
  state.busy = true;
  $("#send").disabled = true;
  notice("");
  let answerItem = null;
  let questionItem = null;
  let started = false;
  try {
    if (!state.current) {
      const created = await state.api.createConversation();
      state.current = { ...created, messages: [] };
      history.pushState({}, "", `/c/${encodeURIComponent(created.id)}`);
      state.conversations.unshift(created);
      drawList();
    }
    const conversationId = state.current.id;
    state.lastQuestion = question;
    $("#welcome").hidden = true;
    questionItem = messageView({ role: "user", content: question });
    $("#messages").append(questionItem);
    answerItem = messageView({ role: "assistant", id: "pending", content: "", citations: [] });
    answerItem.setAttribute("aria-busy", "true");
    answerItem.querySelector(".sources").replaceChildren();
    $("#messages").append(answerItem);
    let text = "";
    let citations = [];
    let messageId = "pending";
    let frame = 0;
    const paint = () => {
      frame = 0;
      fillAnswer(answerItem, messageId, text, citations);
    };
    for await (const { event, data } of state.api.ask(conversationId, question)) {
      if (event === "start") {
        started = true;
        citations = data.citations || [];
        messageId = data.message_id || messageId;
        answerItem.id = messageId;
        // The question is stored: the draft is no longer needed.
        $("#composer-input").value = "";
        sessionStorage.removeItem(draftKey());
      } else if (event === "delta") {
        text += data.text || "";
        if (!frame) frame = requestAnimationFrame(paint);
      } else if (event === "error") {
        throw new ApiError({ status: 502, code: data.error && data.error.code, message: (data.error && data.error.message) || "The answer failed." });
      }
    }
    if (frame) cancelAnimationFrame(frame);
    paint();
    answerItem.removeAttribute("aria-busy");
    await reloadCurrent();
  } catch (error) {
    if (answerItem) answerItem.removeAttribute("aria-busy");
    if (error instanceof ApiError && error.connectionLost) {
      // What was stored (the question, the answer so far) comes back with the conversation; the question is
      // back in the box for a retry.
      await reloadCurrent().catch(() => {});
      $("#composer-input").value = $("#composer-input").value || question;
      notice("The connection dropped before the answer was complete.", { retry: () => ask($("#composer-input").value), kind: "warn" });
    } else {
      // Refused before it started (429, 4xx): nothing was stored, so nothing of it stays on the page but the
      // question, back in the box.
      if (!started && questionItem) questionItem.remove();
      if (!started) $("#composer-input").value = $("#composer-input").value || question;
      if (answerItem && !answerItem.querySelector(".body").textContent) answerItem.remove();
      explain(error, () => ask($("#composer-input").value || question));
    }
  } finally {
    state.busy = false;
    $("#send").disabled = false;
  }
}

async function reloadCurrent() {
  if (!state.current) return;
  state.current = await state.api.getConversation(state.current.id);
  const index = state.conversations.findIndex((c) => c.id === state.current.id);
  if (index >= 0) state.conversations[index] = state.current;
  drawConversation();
  drawList();
}

// --- rename and delete --------------------------------------------------------------------------------------

function openRename() {
  $("#rename-input").value = state.current.title || "";
  $("#rename-dialog").showModal();
  $("#rename-input").select();
}

async function rename(title) {
  try {
    const renamed = await state.api.renameConversation(state.current.id, title);
    state.current.title = renamed.title;
    const entry = state.conversations.find((c) => c.id === renamed.id);
    if (entry) entry.title = renamed.title;
    drawConversation();
    drawList();
  } catch (error) {
    explain(error, () => rename(title));
  }
}

async function remove() {
  const id = state.current.id;
  try {
    await state.api.deleteConversation(id);
    state.conversations = state.conversations.filter((c) => c.id !== id);
    sessionStorage.removeItem(draftKey());
    newChat();
    notice("Conversation deleted.");
  } catch (error) {
    explain(error, remove);
  }
}

// --- the phone-width menu -----------------------------------------------------------------------------------

function closeMenu() {
  document.body.classList.remove("menu-open");
  $("#menu-toggle").setAttribute("aria-expanded", "false");
}

function wire() {
  $("#sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signInStep(() => state.auth.signIn($("#email").value.trim(), $("#password").value));
  });
  $("#new-password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signInStep(() => state.auth.newPassword($("#new-password").value));
  });
  $("#mfa-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signInStep(() => state.auth.mfaCode($("#mfa-code").value.trim()));
  });
  $("#mfa-setup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signInStep(() => state.auth.confirmMfaSetup($("#mfa-setup-code").value.trim()));
  });
  $("#sign-out").addEventListener("click", async () => {
    await state.auth.signOut();
    state.conversations = [];
    state.current = null;
    $("#account").hidden = true;
    $("#sign-in-reason").textContent = "You are signed out.";
    history.replaceState({}, "", "/");
    startSignIn();
  });
  $("#new-chat").addEventListener("click", newChat);
  $("#more").addEventListener("click", moreConversations);
  $("#composer").addEventListener("submit", (event) => {
    event.preventDefault();
    ask($("#composer-input").value);
  });
  $("#composer-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("#composer").requestSubmit();
    }
  });
  $("#composer-input").addEventListener("input", () => sessionStorage.setItem(draftKey(), $("#composer-input").value));
  $("#rename").addEventListener("click", openRename);
  $("#rename-dialog").addEventListener("close", () => {
    const title = $("#rename-input").value.trim();
    if ($("#rename-dialog").returnValue === "save" && title) rename(title);
  });
  $("#delete").addEventListener("click", () => $("#delete-dialog").showModal());
  $("#delete-dialog").addEventListener("close", () => {
    if ($("#delete-dialog").returnValue === "delete") remove();
  });
  $("#menu-toggle").addEventListener("click", () => {
    const open = document.body.classList.toggle("menu-open");
    $("#menu-toggle").setAttribute("aria-expanded", String(open));
    if (open) $("#new-chat").focus();
  });
  window.addEventListener("popstate", () => {
    const id = location.pathname.startsWith("/c/") ? decodeURIComponent(location.pathname.slice(3)) : null;
    if (id) open(id, { push: false });
    else newChat();
  });
}

async function main() {
  wire();
  let config;
  try {
    config = await loadConfig();
  } catch {
    $("#loading").textContent = "The app's configuration could not be loaded; reload the page in a moment.";
    return;
  }
  state.auth = new Auth({ endpoint: config.cognitoEndpoint, poolId: config.userPoolId, clientId: config.clientId });
  state.api = new ChatClient({ baseUrl: config.apiUrl, token: (options) => state.auth.idToken(options) });
  document.documentElement.dataset.ready = "true";
  if (await state.auth.idToken()) await signedIn();
  else startSignIn();
}

main();
