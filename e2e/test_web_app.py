"""End to end in a real browser: the web app served by the local edge (the site bucket the web stack deployed, with
the distribution's headers and routing), signed in to the emulator's user pool with SRP from the page, against
the local API and the real models. Debian's Chromium, driven by Playwright. Screenshots of the main screens go
to .local/e2e/web/."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright

from lambda_src.chat.history import History, Message
from lambda_src.contracts import parameters, spend
from lambda_src.contracts.gateway import GATEWAY_ERRORS
from lambda_src.contracts.naming import stack_name
from lambda_src.shared.budget import Periods
from stacks.stages import LOCAL_BLOCKED_PHRASE, STAGES
from tools.local.browser import launch
from tools.local.deploy import stack_output
from tools.local.launcher import LOCAL_USER_EMAIL, STAGE, LocalPlatform
from tools.local.processes import ROOT
from tools.operator import stage_parameter

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
QUESTION = "How is the code organised into capability folders, and which import rules does make lint enforce?"
XSS = [
    '<img src=x onerror="window.__xss = 1">',
    "<script>window.__xss = 2</script>",
    "[click me](javascript:window.__xss=3)",
    '<a href="javascript:window.__xss=4">a link</a>',
    "![pixel](javascript:window.__xss=5)",
]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = launch(playwright)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def shots(platform: LocalPlatform) -> Path:
    folder = platform.state / "web"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def sign_in(page: Page, platform: LocalPlatform, path: str = "/") -> None:
    page.goto(platform.web_origin + path)
    page.get_by_label("Email").fill(LOCAL_USER_EMAIL)
    page.get_by_label("Password", exact=True).fill(platform.user_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#app")).to_be_visible(timeout=30_000)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA checks on the page as it is (labels, names, contrast, landmarks...)."""
    page.evaluate(AXE.read_text())  # DevTools evaluation: the page's CSP still allows no such script itself
    result = page.evaluate("""async () => (await axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }))
        .violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) }))""")
    return list(result)


def test_the_site_is_served_as_the_distribution_serves_it(platform: LocalPlatform, page: Page):
    response = page.goto(platform.web_origin + "/c/c_0000000000000000000000000000")
    assert response is not None and response.status == 200
    headers = response.headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert f"connect-src 'self' http://127.0.0.1:{platform.ports.api}" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["cache-control"] == "no-cache"
    script = page.locator("script[type=module]").get_attribute("src")
    assert script and re.fullmatch(r"/assets/[0-9a-f]{16}/app\.js", script)
    asset = page.request.get(platform.web_origin + script)
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-type"].startswith("text/javascript")
    config = page.request.get(platform.web_origin + "/config.json").json()
    assert config["userPoolId"] == platform.user_pool_id and config["clientId"] == platform.web_client_id
    assert page.request.get(platform.web_origin + "/assets/missing.js").status == 403


def test_sign_in_ask_stream_cite_reload_rename_delete_and_sign_out(platform: LocalPlatform, page: Page, shots: Path):
    page.goto(platform.web_origin)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.screenshot(path=str(shots / "sign-in.png"))
    sign_in(page, platform)
    expect(page.get_by_role("heading", name="New chat")).to_be_visible()
    # Every text length the answer shows while it streams (one per paint of new text).
    page.evaluate("""() => {
        window.__paints = [];
        new MutationObserver(() => {
            const body = document.querySelector('.message.assistant[aria-busy="true"] .body');
            if (body && body.textContent.length) window.__paints.push(body.textContent.length);
        }).observe(document.querySelector('#messages'), { subtree: true, childList: true, characterData: true });
    }""")
    page.get_by_label("Your question").fill(QUESTION)
    page.keyboard.press("Enter")
    answer = page.locator(".message.assistant").last
    expect(answer).not_to_have_attribute("aria-busy", "true", timeout=120_000)
    expect(answer.locator(".source-list a").first).to_be_visible()
    paints = page.evaluate("window.__paints")
    final = len(answer.locator(".body").inner_text())
    assert len(set(paints)) >= 2 and min(paints) < final, f"the answer did not arrive in pieces: {paints[:20]}"
    links = answer.locator(".source-list a")
    hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    assert any("s3.console.aws.amazon.com" in h and "knowledge" in h for h in hrefs), hrefs
    assert any(re.search(r"ARCHITECTURE\.md|README\.md", h) for h in hrefs), hrefs
    page.screenshot(path=str(shots / "answer.png"), full_page=True)

    # Reload: the conversation is in the list, at its own address, with its history.
    assert re.search(r"/c/c_[0-9a-f]{28}$", page.url)
    page.reload()
    expect(page.locator("#app")).to_be_visible(timeout=30_000)
    expect(page.locator(".message")).to_have_count(2)
    expect(page.locator(".message.user")).to_contain_text("capability folders")
    title = page.locator(".conversation[aria-current=page]")
    expect(title).to_contain_text("How is the code organised")

    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Title").fill("Architecture notes")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".conversation[aria-current=page]")).to_have_text("Architecture notes")
    page.reload()
    expect(page.get_by_role("heading", name="Architecture notes")).to_be_visible(timeout=30_000)

    page.get_by_role("button", name="Delete").click()
    page.locator("#delete-dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#notice")).to_contain_text("Conversation deleted.")
    expect(page.locator(".conversation", has_text="Architecture notes")).to_have_count(0)
    assert page.url.rstrip("/") == platform.web_origin

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('llm-chat.session')") is None
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_model_output_with_markup_renders_inert(platform: LocalPlatform, page: Page, shots: Path):
    """A stored answer holding script, an onerror image and javascript: links, shown as the app shows any answer."""
    token = platform.sign_in(LOCAL_USER_EMAIL, platform.user_password)
    user = jwt.decode(token, options={"verify_signature": False})["sub"]
    table = platform.dynamodb().Table(stack_output(platform.client, stack_name(STAGE, "chat"), "HistoryTableName"))
    history = History(table, retention_days=1)
    conversation = history.create(user, "Markup check")
    before, sequence = history.reserve(user, conversation.id) or (conversation, 0)
    content = (
        "Answer with markup:\n\n" + "\n\n".join(XSS) + "\n\nA [real link](https://example.com/doc) [1]\n\n"
        "```python\nprint('<b>code</b>')\n```"
    )
    citations = [{"number": 1, "document_id": "d", "title": "javascript:alert(1)", "uri": "javascript:alert(1)",
                  "source": "dataset"}]  # fmt: skip
    history.record(user, before, sequence, "Show me markup", Message(sequence + 1, "assistant", content, "", citations,
                                                                      None, False, "stop"))  # fmt: skip
    sign_in(page, platform, f"/c/{conversation.id}")
    answer = page.locator(".message.assistant")
    expect(answer).to_contain_text("<script>window.__xss = 2</script>")
    expect(answer).to_contain_text('<img src=x onerror="window.__xss = 1">')
    page.wait_for_timeout(500)
    assert page.evaluate("window.__xss") is None
    assert page.locator(".messages img, .messages script, .messages iframe").count() == 0
    hrefs = page.eval_on_selector_all(".messages a", "(links) => links.map((a) => a.getAttribute('href'))")
    assert hrefs and all(h.startswith(("https://", "#")) for h in hrefs), hrefs
    assert "https://example.com/doc" in hrefs
    # Markdown still renders: the code block as a block of code, its markup as text.
    expect(answer.locator("pre code")).to_have_text("print('<b>code</b>')")
    page.screenshot(path=str(shots / "markup-inert.png"), full_page=True)


def test_the_conversation_list_is_newest_first_and_pages(platform: LocalPlatform, page: Page):
    token = platform.sign_in(LOCAL_USER_EMAIL, platform.user_password)
    user = jwt.decode(token, options={"verify_signature": False})["sub"]
    table = platform.dynamodb().Table(stack_output(platform.client, stack_name(STAGE, "chat"), "HistoryTableName"))
    history = History(table, retention_days=1)
    titles = [f"Paging {n:02d}" for n in range(21)]
    for title in titles:  # one more than a page (20)
        history.create(user, title)
        time.sleep(0.002)  # ids order by creation millisecond
    sign_in(page, platform)
    listed = page.locator(".conversation")
    expect(listed).to_have_count(20)
    expect(listed.first).to_have_text(titles[-1])  # the newest first
    page.get_by_role("button", name="Load more").click()
    expect(listed.nth(20)).to_be_visible()
    names = listed.all_inner_texts()
    # The second page continues the first: newest first across the boundary, nothing repeated or skipped.
    assert names[:21] == titles[::-1]


def test_an_expired_session_asks_to_sign_in_again_and_keeps_what_was_typed(platform: LocalPlatform, page: Page):
    sign_in(page, platform)
    draft = "A question typed before the session expired"
    page.get_by_label("Your question").fill(draft)
    # The tokens as they are once the session is over: the API refuses the ID token, Cognito the refresh token.
    page.evaluate("""() => {
        const s = JSON.parse(sessionStorage.getItem('llm-chat.session'));
        s.idToken = s.idToken.slice(0, -8) + 'AAAAAAAA';
        s.refreshToken = 'revoked';
        sessionStorage.setItem('llm-chat.session', JSON.stringify(s));
    }""")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#sign-in-reason")).to_contain_text("Your session has expired", timeout=30_000)
    expect(page.get_by_label("Email")).to_have_value(LOCAL_USER_EMAIL)
    page.get_by_label("Password", exact=True).fill(platform.user_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#app")).to_be_visible(timeout=30_000)
    expect(page.get_by_label("Your question")).to_have_value(draft)


def test_throttling_a_dropped_connection_and_an_empty_knowledge_base_are_explained(platform: LocalPlatform,
                                                                                    page: Page):  # fmt: skip
    sign_in(page, platform)
    status, error_type, code, message = GATEWAY_ERRORS["THROTTLED"]
    cors = {"Access-Control-Allow-Origin": platform.web_origin, "Access-Control-Expose-Headers": "Retry-After"}
    throttled = json.dumps({"error": {"message": message, "type": error_type, "code": code, "param": None}})
    calls = {"n": 0}

    def messages(route: Route) -> None:
        calls["n"] += 1
        if calls["n"] == 1:  # the gateway's own 429, as the API stage answers it
            route.fulfill(status=int(status), headers={**cors, "Retry-After": "7"}, body=throttled,
                          content_type="application/json")  # fmt: skip
        elif calls["n"] == 2:  # the stream stops after its first piece
            route.fulfill(status=200, headers=cors, content_type="text/event-stream",
                          body='event: start\ndata: {"message_id": "m_00001", "citations": []}\n\n'
                               'event: delta\ndata: {"text": "Half an"}\n\n')  # fmt: skip
        else:  # nothing in the knowledge base matched: no citations
            end = 'event: end\ndata: {"finish_reason": "stop", "partial": false, "usage": {}}\n\n'
            route.fulfill(status=200, headers=cors, content_type="text/event-stream",
                          body='event: start\ndata: {"message_id": "m_00001", "citations": []}\n\n'
                               'event: delta\ndata: {"text": "I found nothing."}\n\n' + end)  # fmt: skip

    def conversation(route: Route) -> None:
        if route.request.method != "GET" or calls["n"] < 3:
            route.continue_()
            return
        # The answer as the API stores it once its stream ended.
        conversation_id = route.request.url.rsplit("/", 1)[1]
        stored = {"id": conversation_id, "object": "conversation", "title": "Anything?", "created_at": "",
                  "updated_at": "", "message_count": 2, "messages": [
                      {"id": "m_00000", "role": "user", "content": "Anything?", "created_at": ""},
                      {"id": "m_00001", "role": "assistant", "content": "I found nothing.", "created_at": "",
                       "citations": [], "usage": {}, "partial": False, "finish_reason": "stop"}]}  # fmt: skip
        route.fulfill(status=200, headers=cors, content_type="application/json", body=json.dumps(stored))

    page.route(re.compile(r".*/conversations/[^/]+/messages$"), messages)
    page.route(re.compile(r".*/v1/conversations/c_[0-9a-f]{28}$"), conversation)
    page.get_by_label("Your question").fill("Anything?")
    page.keyboard.press("Enter")
    expect(page.locator("#notice")).to_contain_text("Try again in 7 s")
    expect(page.get_by_label("Your question")).to_have_value("Anything?")
    page.locator("#notice").get_by_role("button", name="Retry").click()
    expect(page.locator("#notice")).to_contain_text("The connection dropped")
    expect(page.get_by_label("Your question")).to_have_value("Anything?")
    page.locator("#notice").get_by_role("button", name="Retry").click()
    expect(page.locator(".message.assistant .no-sources").last).to_contain_text("No documents of the knowledge base")


def test_phone_width_keyboard_and_accessibility(platform: LocalPlatform, browser: Browser, shots: Path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(platform.web_origin)
        expect(page.get_by_label("Email")).to_be_visible()
        assert axe_violations(page) == []
        # From the keyboard only: Tab to the fields, Enter submits.
        page.get_by_label("Email").focus()
        page.keyboard.type(LOCAL_USER_EMAIL)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "password"
        page.keyboard.type(platform.user_password)
        page.keyboard.press("Enter")
        expect(page.locator("#app")).to_be_visible(timeout=30_000)
        assert page.evaluate("document.activeElement.id") == "composer-input"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        expect(page.locator("#sidebar")).to_be_hidden()
        page.get_by_role("button", name="Conversations").click()
        expect(page.locator("#sidebar")).to_be_visible()
        page.screenshot(path=str(shots / "phone-menu.png"))
        assert axe_violations(page) == []
        page.keyboard.press("Tab")
        page.locator("#new-chat").click()
        expect(page.locator("#sidebar")).to_be_hidden()
        page.screenshot(path=str(shots / "phone-chat.png"))
        assert axe_violations(page) == []
    finally:
        context.close()


def test_a_spent_token_budget_says_when_it_resets_and_keeps_the_question(platform: LocalPlatform, page: Page):
    """The local user's counters for today set to its daily limit, as a day of questions would leave them: the API's
    own budget check answers 429 insufficient_quota, and the app tells when the budget resets."""
    cognito = platform.client("cognito-idp")
    attributes = cognito.admin_get_user(UserPoolId=platform.user_pool_id, Username=LOCAL_USER_EMAIL)["UserAttributes"]
    sub = next(a["Value"] for a in attributes if a["Name"] == "sub")
    table = stage_parameter(platform.client("ssm"), STAGE, parameters.USAGE_TABLE, "no usage table at {name}")
    periods = Periods.at(time.time())
    key = {spend.PRINCIPAL: {"S": spend.user_principal(sub)}, spend.PERIOD: {"S": spend.MONTH_PREFIX + periods.month}}
    dynamodb = platform.client("dynamodb")
    saved = dynamodb.get_item(TableName=table, Key=key).get("Item")
    daily = STAGES[STAGE].chat.user_budget.tokens_per_day
    dynamodb.update_item(TableName=table, Key=key, UpdateExpression="SET #d = :spent",
                         ExpressionAttributeNames={"#d": spend.DAY_PREFIX + periods.day},
                         ExpressionAttributeValues={":spent": {"N": str(daily)}})  # fmt: skip
    try:
        sign_in(page, platform)
        page.get_by_label("Your question").fill("One more question?")
        page.keyboard.press("Enter")
        expect(page.locator("#notice")).to_contain_text("You have used your token budget for now. It resets in")
        expect(page.get_by_label("Your question")).to_have_value("One more question?")
    finally:
        if saved:
            dynamodb.put_item(TableName=table, Item=saved)
        else:
            dynamodb.delete_item(TableName=table, Key=key)


def test_a_question_the_guardrail_blocks_shows_its_message_and_says_why(platform: LocalPlatform, page: Page):
    sign_in(page, platform)
    page.get_by_label("Your question").fill(f"When does {LOCAL_BLOCKED_PHRASE} launch?")
    page.keyboard.press("Enter")
    answer = page.locator(".message.assistant").last
    expect(answer).not_to_have_attribute("aria-busy", "true", timeout=60_000)
    expect(answer.locator(".body")).to_contain_text(STAGES[STAGE].guardrails.blocked_input_message)
    expect(answer.locator(".filtered")).to_contain_text("content policy")
