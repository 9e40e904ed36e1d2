"""examples/chat-ui in a real browser: headless Chromium (Debian's, driven by Playwright) on the
example's page, served by its own Worker, which reaches chat-store through a service binding
with user tokens it signs for a demo user.

This module starts a chat-store of its own (the repo's wrangler.toml, with a ``JWT_SECRET`` so
user tokens work) and the example as its ``sibling()`` (shared dev registry, so the binding
resolves). Every check of what was stored goes to chat-store directly with the service token.
The screenshot the README shows is written to ``docs/chat-ui.png`` (``CHAT_UI_SCREENSHOT``
names another path).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    Playwright,
    Request,
    Route,
    expect,
    sync_playwright,
)

from support.worker_harness import REPO_ROOT, LocalWorker, WorkerStartError

CHAT_UI_CONFIG = REPO_ROOT / "examples" / "chat-ui" / "wrangler.toml"
SCREENSHOT = Path(os.environ.get("CHAT_UI_SCREENSHOT", REPO_ROOT / "docs" / "chat-ui.png"))
SERVICE_TOKEN = "chat-ui-service-token-0123456789"
JWT_SECRET = "chat-ui-integration-jwt-secret-0123456789abcdef"
RUN = uuid.uuid4().hex[:8]
DEMO_USER = f"demo-{RUN}"
HISTORY_SIZE = 500
BATCH_SIZE = 100  # chat-store's batch limit
PAGE_SIZE = 50  # the example's default history page
MINUTE_MS = 60_000
# Waits for the page (each UI step is one or a few requests through two local runtimes on a
# small machine); a failure is reported by what did not appear, never by how long it took.
UI_TIMEOUT_MS = 60_000

# Without the background-networking flags Chromium keeps calling home on a closed network.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install -y chromium; or set CHROMIUM_PATH)",
)

expect.set_options(timeout=UI_TIMEOUT_MS)


# -- workers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorker]:
    base = tmp_path_factory.mktemp("wrangler-chat-ui")
    w = LocalWorker(
        persist_dir=base / "state",
        log_dir=base,
        vars={
            "API_TOKEN": SERVICE_TOKEN,
            "AUTH_DISABLED": "false",
            "JWT_SECRET": JWT_SECRET,
            "JOURNAL_SETTLE_MS": "2000",
        },
    )
    with w:
        yield w


@pytest.fixture(scope="module")
def chat_ui(store: LocalWorker) -> Iterator[LocalWorker]:
    w = store.sibling(
        config=CHAT_UI_CONFIG,
        vars={"JWT_SECRET": JWT_SECRET, "DEMO_SIGNING_DEV_ONLY": "true", "DEMO_USER": DEMO_USER},
    )
    with w:
        yield w


@pytest.fixture(scope="module")
def service(store: LocalWorker) -> Iterator[httpx.Client]:
    """chat-store itself, with the service token: the ground truth the page is checked against."""
    with httpx.Client(
        base_url=store.base_url,
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        timeout=60,
    ) as client:
        yield client


# -- browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def page(browser: Browser, chat_ui: LocalWorker) -> Iterator[Page]:
    context = browser.new_context(
        base_url=chat_ui.base_url,
        viewport={"width": 1280, "height": 800},
        locale="en-GB",
    )
    p = context.new_page()
    uncaught: list[str] = []
    p.on("pageerror", lambda error: uncaught.append(str(error)))
    yield p
    context.close()
    # A script error is a failure even when the page happened to show the right thing.
    assert uncaught == []


# -- helpers ---------------------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def seed(service: httpx.Client, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), BATCH_SIZE):
        reply = service.post(
            "/v1/messages/batch", json={"messages": messages[start : start + BATCH_SIZE]}
        )
        assert reply.status_code == 201, reply.text


def set_title(service: httpx.Client, conversation: str, title: str) -> None:
    reply = service.patch(f"/v1/conversations/{conversation}", json={"title": title})
    assert reply.status_code == 200, reply.text


def stored_history(service: httpx.Client, conversation: str) -> list[dict[str, Any]]:
    """Every message of the conversation, oldest first, following cursors."""
    messages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"order": "asc", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        reply = service.get(f"/v1/conversations/{conversation}/messages", params=params)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        messages += body["messages"]
        cursor = body["next_cursor"]
        if cursor is None:
            return messages


def desc_page_count(service: httpx.Client, conversation: str) -> int:
    """How many requests following ``next_cursor`` take to list it newest first, 50 a page."""
    pages, cursor = 0, None
    while True:
        params: dict[str, str | int] = {"order": "desc", "limit": PAGE_SIZE}
        if cursor:
            params["cursor"] = cursor
        reply = service.get(f"/v1/conversations/{conversation}/messages", params=params)
        assert reply.status_code == 200, reply.text
        pages += 1
        cursor = reply.json()["next_cursor"]
        if cursor is None:
            return pages


def shown_ids(page: Page) -> list[str]:
    ids: list[str] = page.locator("#message-list > li.message").evaluate_all(
        "items => items.map(li => li.dataset.id)"
    )
    return ids


def shown_messages(page: Page) -> list[tuple[str, str]]:
    """(id, text) of every message on the page, top to bottom."""
    shown: list[list[str]] = page.locator("#message-list > li.message").evaluate_all(
        "items => items.map(li => [li.dataset.id, li.querySelector('.bubble').textContent])"
    )
    return [(i, text) for i, text in shown]


def message_item(page: Page, message_id: str) -> Locator:
    return page.locator(f'#message-list > li.message[data-id="{message_id}"]')


# A pending message sorts last with Number.MAX_SAFE_INTEGER until chat-store has answered.
STORED_TIMESTAMP = re.compile(r"^(?!9007199254740991$)\d+$")
PENDING = re.compile(r"\bpending\b")


def send(page: Page, text: str) -> str:
    """Types and sends ``text``; returns the id the page gave it, once chat-store stored it."""
    before = set(shown_ids(page))
    page.locator("#draft").fill(text)
    page.locator("#draft").press("Enter")
    new = page.locator("#message-list > li.message").filter(has_text=text).last
    expect(new).to_have_attribute("data-timestamp", STORED_TIMESTAMP)
    expect(new).not_to_have_class(PENDING)
    message_id = new.get_attribute("data-id")
    assert message_id is not None and message_id not in before
    return message_id


# The page marks #messages with the conversation shown, whether a page is being fetched, and
# whether the oldest message has been reached.
LOADED = """([id, atLeast]) => {
    const c = document.getElementById('messages');
    const shown = document.querySelectorAll('#message-list > li.message').length;
    return c.dataset.conversation === id && c.dataset.loading === 'false'
        && (shown >= atLeast || c.dataset.complete === 'true');
}"""


def wait_loaded(page: Page, conversation: str, at_least: int = 1) -> None:
    """Until ``conversation`` shows ``at_least`` messages or all it has, and nothing loads."""
    page.wait_for_function(LOADED, arg=[conversation, at_least], timeout=UI_TIMEOUT_MS)


def open_page(page: Page, conversation: str | None = None) -> None:
    page.goto("/" + (f"#c={conversation}" if conversation else ""))
    expect(page.locator("#whoami")).to_contain_text(DEMO_USER)
    expect(page.locator("#conversations")).to_have_attribute("data-loading", "false")
    if conversation:
        wait_loaded(page, conversation)


def conversation_item(page: Page, conversation: str) -> Locator:
    return page.locator(f'#conversations > li.conversation[data-id="{conversation}"]')


# -- tests -----------------------------------------------------------------------------------


def test_send_edit_delete_then_reload_shows_what_is_stored(
    page: Page, service: httpx.Client
) -> None:
    open_page(page)
    page.locator("#new-conversation").click()
    expect(page.locator("#chat-title")).to_have_text("New conversation")
    conversation = page.evaluate("new URLSearchParams(location.hash.slice(1)).get('c')")
    assert isinstance(conversation, str) and conversation.startswith(f"{DEMO_USER}~")

    texts = [
        "Hi! Can you help me plan a weekend in Porto?",
        "I'd like to see the Livraria Lello and eat a francesinha.",
        "Also: is the Douro valley reachable by train?",
    ]
    sent = [send(page, text) for text in texts]

    # chat-store holds exactly what was sent, in order, under the page's own ids.
    stored = stored_history(service, conversation)
    assert [(m["id"], m["content"]) for m in stored] == list(zip(sent, texts, strict=True))
    assert all(m["user_id"] == DEMO_USER and m["sender"]["id"] == DEMO_USER for m in stored)
    assert shown_ids(page) == sent
    # Newest at the bottom, the conversation named after its first message, listed first.
    assert page.locator("#message-list > li.message").last.get_attribute("data-id") == sent[-1]
    expect(page.locator("#chat-title")).to_have_text(texts[0])
    expect(page.locator("#chat-count")).to_have_text("3 messages")
    item = conversation_item(page, conversation)
    expect(item.locator(".title")).to_have_text(texts[0])
    expect(item.locator(".preview")).to_have_text(f"You: {texts[2]}")

    # Edit the second message.
    edited_text = "I'd like to see the Livraria Lello, the Ribeira and eat a francesinha."
    second = message_item(page, sent[1])
    second.hover()
    second.locator("button.edit").click()
    second.locator("textarea.edit-box").fill(edited_text)
    second.locator("button.save").click()
    expect(second.locator(".bubble")).to_have_text(edited_text)
    expect(second.locator(".edited")).to_have_text("(edited)")
    record = service.get(f"/v1/messages/{sent[1]}").json()["message"]
    assert record["content"] == edited_text and "edited_at" in record

    # Delete the third one (asks first).
    third = message_item(page, sent[2])
    third.hover()
    third.locator("button.delete").click()
    third.locator("button.confirm-delete").click()
    expect(third).to_have_count(0)
    assert service.get(f"/v1/messages/{sent[2]}").status_code == 404
    expect(page.locator("#chat-count")).to_have_text("2 messages")
    expect(item.locator(".preview")).to_have_text(f"You: {edited_text}")

    expected = [(sent[0], texts[0]), (sent[1], edited_text)]
    assert [(m["id"], m["content"]) for m in stored_history(service, conversation)] == expected
    assert shown_messages(page) == expected

    # A reload shows the same state: the same conversation selected, the same messages.
    page.reload()
    wait_loaded(page, conversation)
    expect(page.locator("#message-list > li.message")).to_have_count(2)
    assert shown_messages(page) == expected
    expect(message_item(page, sent[1]).locator(".edited")).to_have_text("(edited)")
    expect(page.locator("#chat-title")).to_have_text(texts[0])
    expect(page.locator("#history-status")).to_have_text("Beginning of the conversation")


def test_a_send_whose_answer_is_lost_is_retried_and_stored_once(
    page: Page, service: httpx.Client
) -> None:
    conversation = f"retry-{RUN}"
    seed(service, [{
        "id": f"retry-{RUN}-first", "user_id": DEMO_USER, "conversation_id": conversation,
        "sender": {"id": DEMO_USER, "role": "user"},
        "content": "Passport, charger, the blue jacket.", "timestamp": now_ms() - MINUTE_MS,
    }])  # fmt: skip
    set_title(service, conversation, "Packing list")
    open_page(page, conversation)
    expect(page.locator("#message-list > li.message")).to_have_count(1)

    # The first POST reaches the Worker and chat-store stores the message, but its answer
    # never reaches the page (as when a connection drops): the page must send it again.
    posts: list[dict[str, Any]] = []
    statuses: list[int] = []

    def lose_first_answer(route: Route, request: Request) -> None:
        if request.method != "POST":
            route.continue_()
            return
        posts.append(json.loads(request.post_data or "{}"))
        response = route.fetch()
        statuses.append(response.status)
        if len(posts) == 1:
            route.abort("connectionreset")
        else:
            route.fulfill(response=response)

    page.route(f"**/api/conversations/{conversation}/messages", lose_first_answer)
    text = "And sunscreen (sent twice, stored once)."
    message_id = send(page, text)
    page.unroute(f"**/api/conversations/{conversation}/messages")

    assert len(posts) == 2 and posts[0] == posts[1] and posts[0]["id"] == message_id
    assert statuses == [201, 200]  # stored, then answered as an identical replay
    stored = stored_history(service, conversation)
    assert [m["content"] for m in stored].count(text) == 1
    assert [m["id"] for m in stored] == [f"retry-{RUN}-first", message_id]
    assert shown_ids(page) == [m["id"] for m in stored]


def test_scrolling_up_pages_through_the_whole_history(page: Page, service: httpx.Client) -> None:
    conversation = f"history-{RUN}"
    start = now_ms() - (HISTORY_SIZE + 60) * MINUTE_MS
    lines = [
        "Let's go through the launch checklist.", "Sure: which item first?",
        "The staging deploy.", "Staging is green since this morning.",
        "Then the release notes.", "Drafted; they need a review.",
    ]  # fmt: skip
    history = [
        {
            "id": f"h-{RUN}-{i:04d}",
            "user_id": DEMO_USER,
            "conversation_id": conversation,
            "sender": (
                {"id": DEMO_USER, "role": "user"}
                if i % 2 == 0
                else {"id": "assistant", "name": "Assistant", "role": "assistant"}
            ),
            "content": f"{lines[i % len(lines)]} (#{i + 1})",
            "timestamp": start + i * MINUTE_MS,
        }
        for i in range(HISTORY_SIZE)
    ]
    seed(service, history)
    set_title(service, conversation, "Launch checklist")
    expected = [m["id"] for m in stored_history(service, conversation)]
    assert expected == [m["id"] for m in history]

    history_requests: list[str] = []
    page.on(
        "request",
        lambda r: (
            history_requests.append(r.url)
            if r.method == "GET" and f"/api/conversations/{conversation}/messages" in r.url
            else None
        ),
    )
    open_page(page, conversation)
    wait_loaded(page, conversation, PAGE_SIZE)
    expect(page.locator("#message-list > li.message")).to_have_count(PAGE_SIZE)
    # The newest page, newest at the bottom, scrolled to the bottom.
    assert shown_ids(page) == expected[-PAGE_SIZE:]
    at_bottom = page.locator("#messages").evaluate(
        "c => c.scrollHeight - c.scrollTop - c.clientHeight < 2"
    )
    assert at_bottom is True
    expect(page.locator("#chat-title")).to_have_text("Launch checklist")

    # Scroll up page by page. Each time, the message the reader was looking at must stay
    # exactly where it was on screen while the older page is inserted above it.
    while page.locator("#messages").get_attribute("data-complete") != "true":
        shown_before = len(shown_ids(page))
        anchor_id, anchor_top = page.locator("#messages").evaluate(
            """c => {
                c.scrollTop = 40;  // near the top: the page fetches the previous page
                const first = c.querySelector('li.message');
                return [first.dataset.id, first.getBoundingClientRect().top];
            }"""
        )
        wait_loaded(page, conversation, shown_before + 1)
        top_after = message_item(page, anchor_id).evaluate("li => li.getBoundingClientRect().top")
        assert abs(top_after - anchor_top) <= 1, (anchor_id, anchor_top, top_after)
        assert len(history_requests) <= HISTORY_SIZE // PAGE_SIZE + 1, "the page keeps loading"

    # Everything, each message once, oldest first; the oldest is at the very top.
    assert shown_ids(page) == expected
    # ... fetching each page once: as many requests as chat-store has desc pages of 50.
    assert len(history_requests) == len(set(history_requests))
    assert len(history_requests) == desc_page_count(service, conversation)
    page.locator("#messages").evaluate("c => { c.scrollTop = 0; }")
    expect(page.locator("#history-status")).to_have_text("Beginning of the conversation")
    expect(message_item(page, expected[0])).to_be_in_viewport()
    expect(message_item(page, expected[0]).locator(".bubble")).to_have_text(f"{lines[0]} (#1)")

    # Sending now appends at the bottom; a reload shows the newest page again, with it.
    new_id = send(page, "Everything checked, ship it.")
    assert shown_ids(page) == [*expected, new_id]
    page.reload()
    wait_loaded(page, conversation, PAGE_SIZE)
    expect(page.locator("#message-list > li.message")).to_have_count(PAGE_SIZE)
    assert shown_ids(page) == [*expected, new_id][-PAGE_SIZE:]


def test_the_example_reaches_only_the_demo_users_conversations(
    chat_ui: LocalWorker, service: httpx.Client
) -> None:
    other = f"mallory-{RUN}"
    conversation = f"private-{RUN}"
    seed(service, [{
        "id": f"private-{RUN}-1", "user_id": other, "conversation_id": conversation,
        "sender": {"id": other}, "content": "not for the demo user",
    }])  # fmt: skip
    with httpx.Client(base_url=chat_ui.base_url, timeout=60) as ui:
        listing = ui.get(f"/api/conversations/{conversation}/messages")
        assert listing.status_code == 404, listing.text
        assert "not for the demo user" not in listing.text
        write = ui.post(
            f"/api/conversations/{conversation}/messages", json={"id": f"x-{RUN}", "content": "hi"}
        )
        assert write.status_code == 404, write.text
        # Another user's message by id: the user token sees it exactly as a missing one.
        patch = ui.patch(f"/api/messages/private-{RUN}-1", json={"content": "hijacked"})
        assert (patch.status_code, patch.json()["code"]) == (404, "not_found")
        delete = ui.delete(f"/api/messages/private-{RUN}-1")
        assert delete.status_code == 404
        sidebar = ui.get("/api/conversations").json()["conversations"]
        assert conversation not in {c["id"] for c in sidebar}
    [kept] = stored_history(service, conversation)
    assert kept["content"] == "not for the demo user"
    assert service.get(f"/v1/messages/x-{RUN}").status_code == 404


class _AnyAnswerWorker(LocalWorker):
    """Ready as soon as it answers at all: a refusing example answers 503 to everything."""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=10) as http:
            while time.monotonic() < deadline:
                if not self.running:
                    raise WorkerStartError(self._failure("wrangler exited"))
                try:
                    http.get(self.base_url + self.ready_path)
                    return
                except httpx.HTTPError:
                    time.sleep(0.3)
        raise WorkerStartError(self._failure("no answer"))


def test_without_the_dev_only_var_every_request_is_refused(store: LocalWorker) -> None:
    # "false" explicitly: a developer's examples/chat-ui/.dev.vars must not turn it on here.
    refusing = _AnyAnswerWorker(
        persist_dir=store.persist_dir,
        config=CHAT_UI_CONFIG,
        log_dir=store.log_dir,
        vars={"JWT_SECRET": JWT_SECRET, "DEMO_SIGNING_DEV_ONLY": "false", "DEMO_USER": DEMO_USER},
    )
    with refusing, httpx.Client(base_url=refusing.base_url, timeout=60) as http:
        for method, path in (("GET", "/"), ("GET", "/app.js"), ("GET", "/health"),
                             ("GET", "/api/me"), ("GET", "/api/conversations"),
                             ("POST", "/api/conversations"),
                             ("DELETE", f"/api/messages/h-{RUN}-0000")):  # fmt: skip
            reply = http.request(method, path)
            assert reply.status_code == 503, (method, path, reply.text)
            assert reply.headers["content-type"] == "application/problem+json"
            problem = reply.json()
            assert problem["code"] == "demo_signing_disabled", problem
            assert "DEMO_SIGNING_DEV_ONLY" in problem["detail"]


def test_screenshot_of_a_conversation(page: Page, service: httpx.Client) -> None:
    base = now_ms() - 50 * MINUTE_MS
    assistant = {"id": "assistant", "name": "Assistant", "role": "assistant"}
    me = {"id": DEMO_USER, "name": "You", "role": "user"}
    chats: list[tuple[str, str, list[tuple[dict[str, str], str]]]] = [
        ("Quarterly report draft", f"report-{RUN}", [
            (me, "Can you tighten the summary of the Q3 report to five bullet points?"),
            (assistant, "Done. I kept revenue, churn, hiring, the EU launch and the outlook."),
        ]),
        ("Dinner on Sunday", f"dinner-{RUN}", [
            (me, "Six people, one vegetarian, nothing too spicy. Ideas?"),
            (assistant, "A big mushroom and leek risotto, a green salad, then a lemon tart."),
        ]),
        ("Bug: login loop on Safari", f"bug-{RUN}", [
            (me, "Users on Safari 17 bounce between /login and /home."),
            (assistant, "The session cookie is SameSite=None without Secure; Safari drops it."),
            (me, "That was it, thanks!"),
        ]),
        ("Trip to Lisbon", f"lisbon-{RUN}", [
            (me, "I have three days in Lisbon in May. What should I not miss?"),
            (assistant, "Alfama at dusk, tram 28 early in the morning, Belém for the "
                        "monastery and the pastéis, and a day trip to Sintra."),
            (me, "Is Sintra doable without a car?"),
            (assistant, "Yes: trains leave Rossio every 20 minutes and take about 40 "
                        "minutes. Go on a weekday and book Pena Palace for the first slot."),
            (me, "And the way back in the evening?"),
            (assistant, "Trains run until about midnight. The 18:40 gets you back in time "
                        "for dinner in Chiado."),
        ]),
    ]  # fmt: skip
    messages: list[dict[str, Any]] = []
    minute = 0
    for _title, conversation, lines in chats:
        for n, (sender, content) in enumerate(lines):
            minute += 2
            messages.append({
                "id": f"{conversation}-{n}", "user_id": DEMO_USER,
                "conversation_id": conversation, "sender": sender, "content": content,
                "timestamp": base + minute * MINUTE_MS,
            })  # fmt: skip
    seed(service, messages)
    for title, conversation, _lines in chats:
        set_title(service, conversation, title)

    lisbon = f"lisbon-{RUN}"
    open_page(page, lisbon)
    send(page, "Perfect, I'll book the 9:40 train and the first Pena slot.")
    item = conversation_item(page, lisbon)
    expect(item.locator(".preview")).to_have_text(
        "You: Perfect, I'll book the 9:40 train and the first Pena slot."
    )
    expect(page.locator("#conversations > li.conversation").first).to_have_attribute(
        "data-id", lisbon
    )
    expect(page.locator("#chat-count")).to_have_text("7 messages")
    page.locator("#draft").fill("What about Cascais?")
    page.mouse.move(0, 0)  # no hover state in the picture
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
