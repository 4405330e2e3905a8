"""The widget in a real browser: Debian's chromium, driven by Playwright (never a
downloaded browser), on a page of another origin with a strict CSP, against the runtime
(uvicorn) and SmolLM2 through Ollama."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import uvicorn
from aiohttp import web
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright

from coachops_devstack.ports import free_port
from coachops_devstack.stack import Stack
from coachops_runtime.ai.stream import stream_key
from coachops_runtime.ai.worker import ReplyPoller
from tests.ai.conftest import Coaching, ai_settings, coaching, replies, runtime_settings
from tests.ollama.conftest import (
    instruct_model,
    model_registry,
    ollama,
    ollama_client,
    ollama_stack,
    pulled_chat_model,
)
from tests.widget.proxy import StreamCutter

__all__ = [
    "ai_settings",
    "coaching",
    "instruct_model",
    "model_registry",
    "ollama",
    "ollama_client",
    "ollama_stack",
    "pulled_chat_model",
    "replies",
    "runtime_settings",
]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "channels.md"
DOCUMENTED_RUNTIME = "https://coach-runtime.example"
TITLE = "A creator's site"
PAYLOAD = """<img src=x onerror="document.title='pwned'">"""


def documented_snippet() -> str:
    """The embed line of docs/channels.md's "Web widget" section, as written there."""
    section = DOCS.read_text().split("## Web widget", 1)[1]
    match = re.search(r"```html\n(<script [^\n]*</script>)\n```", section)
    assert match, "docs/channels.md: no html snippet in the Web widget section"
    return match.group(1)


@dataclass
class Site:
    """A creator's pages on two loopback origins: one the program lists, one it does not."""

    pages: dict[str, str] = field(default_factory=dict)  # path -> HTML
    csp: str = ""
    origins: list[str] = field(default_factory=list)

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(
            text=self.pages[request.path],
            content_type="text/html",
            headers={"Content-Security-Policy": self.csp},
        )


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    served = Site()
    application = web.Application()
    application.router.add_get("/{page:.*}", served.page)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    for _ in range(2):
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        served.origins.append(f"http://127.0.0.1:{port}")
    try:
        yield served
    finally:
        await runner.cleanup()


@pytest.fixture
async def runtime_url(app: FastAPI) -> AsyncIterator[str]:
    """The test's app served by uvicorn on loopback (its lifespan is already running)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    async with asyncio.timeout(10):
        while not served.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    await task


@pytest.fixture
async def proxy(runtime_url: str) -> AsyncIterator[StreamCutter]:
    cutter = StreamCutter(int(runtime_url.rsplit(":", 1)[1]), pace=0.025)
    await cutter.start()
    try:
        yield cutter
    finally:
        await cutter.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: scripts/bootstrap.sh installs it"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium)
        try:
            yield launched
        finally:
            await launched.close()


async def open_page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    """The page at ``url``; the list collects its CSP violations as they happen."""
    page = await browser.new_page()
    violations: list[str] = []

    def report(violation: str) -> None:
        violations.append(violation)

    await page.expose_function("reportViolation", report)
    await page.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) =>"
        " window.reportViolation(e.violatedDirective + ' ' + e.blockedURI));"
        # What a host page listens to for a new token (captured: the event does not bubble).
        "document.addEventListener('coachops:session-expired', (e) =>"
        " { window.expiredOn = e.target.tagName; }, true);"
    )
    await page.goto(url)
    return page, violations


async def watch_reply(page: Page, index: int) -> tuple[str, list[int], set[str]]:
    """Waits for the ``index``-th AI reply to be done: its text, the lengths it had on the
    way there and the ``aria-busy`` values it went through."""
    reply = page.locator("li[data-author=ai]").nth(index)
    await reply.wait_for(timeout=15_000)
    lengths: list[int] = []
    busy: set[str] = set()
    async with asyncio.timeout(60):
        while True:
            state, aria_busy, text = await reply.evaluate(
                "e => [e.dataset.state, e.getAttribute('aria-busy'),"
                " e.querySelector('.body').firstChild.data]"
            )
            busy.add(aria_busy)
            if state == "done":
                return text, lengths, busy
            assert state == "streaming", state
            if text and (not lengths or lengths[-1] != len(text)):
                lengths.append(len(text))
            await asyncio.sleep(0.03)


async def test_the_widget_streams_resumes_escapes_and_keeps_to_its_origins(
    coaching: Coaching,
    replies: ReplyPoller,
    instruct_model: str,
    runtime_url: str,
    proxy: StreamCutter,
    site: Site,
    browser: Browser,
    stack: Stack,
    tmp_path: Path,
) -> None:
    listed, unlisted = site.origins
    creator = await coaching.creator("widgetchrome")
    spec = coaching.spec(chat=instruct_model, maxTokens=150)
    spec["channels"] = [{"type": "web", "allowedOrigins": [listed]}]
    program = await coaching.program(creator, "sleep", spec)
    me = await coaching.end_user(creator, program)
    runtime = f"http://127.0.0.1:{proxy.port}"

    def html(token: str, lang: str = "en") -> str:
        return (
            f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
            f"<title>{TITLE}</title></head><body><h1>Sleep better</h1>\n"
            + documented_snippet()
            .replace(DOCUMENTED_RUNTIME, runtime)
            .replace("END_USER_TOKEN", token)
            + "\n</body></html>\n"
        )

    token = me["Authorization"].removeprefix("Bearer ")
    site.pages = {"/": html(token), "/de": html(token, "de"), "/expired": html(token[:-4])}
    site.csp = (
        f"default-src 'none'; script-src {runtime}; connect-src {runtime}; style-src 'none';"
        " img-src 'none'; base-uri 'none'; form-action 'none'"
    )
    page, violations = await open_page(browser, listed + "/")
    log = page.get_by_role("log")
    assert await log.get_attribute("aria-live") == "polite"
    textarea = page.get_by_role("textbox", name="Message")
    await textarea.wait_for()

    # Keyboard only: Tab to the input, type, Enter.
    for _ in range(4):
        await page.keyboard.press("Tab")
        if await textarea.evaluate("e => e.getRootNode().activeElement === e"):
            break
    else:
        pytest.fail("the message input cannot be reached with Tab")
    proxy.cut_next_stream(after_events=3)
    await page.keyboard.type("How can I sleep better?")
    await page.keyboard.press("Enter")
    async with asyncio.timeout(15):
        await proxy.stream_opened.wait()
    generating = asyncio.create_task(coaching.drain(replies))
    text, lengths, busy = await watch_reply(page, 0)
    await generating

    (stored,) = [m for m in await coaching.messages(me) if m["author"] == "ai"]
    assert text == stored["body"]  # nothing repeated, nothing missing
    assert len(lengths) >= 3, lengths  # it grew piece by piece
    assert busy == {"true", "false"}
    # The stream was cut mid-event after three events; the widget came back for the rest
    # with the last event it had shown.
    assert len(proxy.cut_ids) == 3
    assert len(proxy.stream_heads) >= 2
    resumed = proxy.stream_heads[1].decode().lower()
    assert f"last-event-id: {proxy.cut_ids[-1]}".lower() in resumed
    assert await textarea.evaluate("e => e.getRootNode().activeElement === e")

    # Markup typed by the end user and markup in the reply's tokens and citations.
    await page.keyboard.type(PAYLOAD)
    await page.keyboard.press("Enter")
    mine = page.locator("li[data-author=end_user] .body").nth(1)
    await mine.wait_for()
    assert await mine.inner_text() == PAYLOAD
    async with asyncio.timeout(10):
        while len(proxy.stream_heads) < 3:  # noqa: ASYNC110 - the proxy records, nothing to await
            await asyncio.sleep(0.05)
    hostile = ["<img src=x on", "error=\"document.title='pwned'\">", " <script>alert(1)</script>"]
    citation = {
        "number": 1,
        "source": PAYLOAD,
        "page": 2,
        "section": "<b>Intro</b>",
        "chunk_id": "c1",
        "snippet": "<script>alert(2)</script>",
        "distance": 0.1,
    }
    await inject_reply(coaching, stack, creator.name, hostile, [citation])
    text, _lengths, _busy = await watch_reply(page, 1)
    assert text == "".join(hostile).strip()
    cited = page.locator("li[data-author=ai]").nth(1).locator("ol.citations li")
    assert await cited.inner_text() == f"[1] {PAYLOAD}, p. 2 — <b>Intro</b>"
    assert await cited.get_attribute("title") == "<script>alert(2)</script>"
    await asyncio.sleep(0.3)  # time for an injected handler to have run, had it been parsed
    for tag in ("img", "section script", "section b"):
        assert await page.locator(tag).count() == 0, tag
    assert await page.title() == TITLE
    await page.locator("section").screenshot(path=tmp_path / "widget.png")

    # A reload shows the history and resumes the reply the last message still waits for.
    await page.reload()
    await page.locator("li[data-author=ai]").nth(1).wait_for()
    authors = await page.locator("li[data-author]").evaluate_all(
        "items => items.map(e => e.dataset.author)"
    )
    assert authors == ["end_user", "ai", "end_user", "ai"]
    assert await page.locator("li[data-author=ai] .body").first.inner_text() == stored["body"]
    text, _lengths, _busy = await watch_reply(page, 1)
    assert text == "".join(hostile).strip()
    assert await page.title() == TITLE

    # No CSP violation, and one would have been seen.
    assert violations == []
    await page.evaluate("document.body.setAttribute('style', 'color: red')")
    async with asyncio.timeout(5):
        while not violations:  # noqa: ASYNC110 - the page reports through a callback
            await asyncio.sleep(0.05)
    assert violations[0].startswith("style-src")

    # A token that no longer verifies: the widget says the session ended and stops.
    expired, _violations = await open_page(browser, listed + "/expired")
    assert await status_text(expired) == ("Your session has ended. Reload the page to continue.")
    assert await expired.get_by_role("textbox", name="Message").is_disabled()
    assert await expired.evaluate("window.expiredOn") == "SCRIPT"
    assert await page.evaluate("window.expiredOn") is None

    # A page on an origin the program does not list reads nothing (in the page's language).
    before = len(await coaching.messages(me))
    other, _violations = await open_page(browser, unlisted + "/de")
    assert await status_text(other) == "Etwas ist schiefgegangen. Bitte erneut versuchen."
    await other.get_by_role("textbox", name="Nachricht").wait_for()
    assert await other.locator("li[data-author]").count() == 0
    assert len(await coaching.messages(me)) == before


async def status_text(page: Page) -> str:
    """The widget's status line, once it says something."""
    status = page.get_by_role("status")
    async with asyncio.timeout(10):
        while not await status.inner_text():  # noqa: ASYNC110 - polling the page
            await asyncio.sleep(0.05)
    return await status.inner_text()


async def inject_reply(
    coaching: Coaching,
    stack: Stack,
    creator_name: str,
    tokens: list[str],
    citations: list[dict[str, Any]],
) -> None:
    """Writes a reply into the Redis stream of the last message's reply job, as the worker
    would: a model that answers with markup, without depending on what SmolLM2 says."""
    (job,) = await coaching.superuser(
        "SELECT job_id FROM reply_jobs ORDER BY created_at DESC, job_id LIMIT 1"
    )
    client = aioredis.Redis.from_url(stack.redis.url)
    try:
        key = stream_key(creator_name, job["job_id"])
        for token in tokens:
            await client.xadd(key, {"e": "token", "d": token})
        done = {"message_id": None, "citations": citations}
        await client.xadd(key, {"e": "done", "d": json.dumps(done)})
    finally:
        await client.aclose()
