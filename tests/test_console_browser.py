"""The web pages in a real browser: Debian's chromium, headless, driven through its chromedriver.

The router runs in this process on a loopback port, in a thread of its own with its own event loop,
on the shipped rules and a clock the test moves (tests/scenario.FakeClock), so an escalation falls
due when the test says. The browser sees only HTTP. The tests take the screenshots of the README
(docs/screenshots/, with UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from router.app import RouterService
from router.metrics import Metrics
from router.settings import Settings

from .conftest import FIXTURES, ROOT, WEBHOOK_TOKEN
from .scenario import FakeClock
from .support import free_port, require

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The README's screenshots are taken again with UPDATE_SCREENSHOTS=1; otherwise into a folder of
# the system's temporary directory, so that a test run leaves the working tree as it was.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "runbook-router-screenshots"
)
FIRING = FIXTURES / "payloads" / "good" / "alertmanager" / "firing_two_alerts.json"
ROUTE_PAYLOAD = FIXTURES / "payloads" / "route" / "alertmanager_zkp_prover.json"


class LiveRouter:
    """A started RouterService listening on 127.0.0.1, run by an event loop in a thread."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.clock = FakeClock()
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite:///{tmp_path / 'router.db'}",
            webhook_token=WEBHOOK_TOKEN,  # type: ignore[arg-type]
            port=self.port,
            **{"rules_dir": ROOT / "rules", **settings},
        )
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.service = RouterService(self.settings, metrics=Metrics(), clock=self.clock)
        self._runner = web.AppRunner(self.service.web_app(), access_log=None)
        self.call(self._start())

    async def _start(self) -> None:
        await self.service.start()
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        await self._runner.cleanup()
        await self.service.close()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=30)

    def close(self) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def post_webhook(self, body: bytes) -> None:
        request = urllib.request.Request(
            f"{self.url}/webhooks/alertmanager", data=body, method="POST"
        )
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {WEBHOOK_TOKEN}")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200

    def tick(self, **delta: float) -> None:
        """Move the clock and let the engine do what fell due (escalations, deliveries)."""
        self.clock.advance(**delta)
        self.call(self.service.engine.run_once())

    def page_events(self, incident_id: int | None = None) -> list[str]:
        return [page.event for page in self.call(self.service.store.list_pages(incident_id))]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(
        CHROMIUM.exists() and CHROMEDRIVER.exists(),
        "chromium or chromedriver not found: install them with "
        "`apt-get install chromium chromium-driver` (.ci/run does)",
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--lang=en-US",
        "--force-prefers-reduced-motion",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[LiveRouter]:
    live = LiveRouter(tmp_path)
    try:
        yield live
    finally:
        live.close()


def text(browser: Any, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.CSS_SELECTOR, selector).text)


def click_and_load(browser: Any, element: Any) -> None:
    """Click a link or button and wait until the browser has loaded the next page whole.

    The old page is marked (a variable of its window, which the next page does not have): an
    element of it cannot serve, since asking about one while it is being replaced may fail."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    browser.execute_script("window.previousPage = true;")
    element.click()
    WebDriverWait(browser, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.execute_script(
            "return !window.previousPage && document.readyState === 'complete';"
        )
    )


def screenshot(browser: Any, name: str) -> None:
    """A full-page PNG of what the browser shows, for the README."""
    from selenium.webdriver.common.by import By

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.find_element(By.TAG_NAME, "body").size["height"]
    browser.set_window_size(1280, min(max(height + 40, 600), 2400))
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    browser.set_window_size(1280, 1000)


def test_follow_an_incident_and_acknowledge_it(browser: Any, router: LiveRouter) -> None:
    from selenium.webdriver.common.by import By

    router.post_webhook(ROUTE_PAYLOAD.read_bytes())  # other incidents, opened first
    router.tick(minutes=3)
    router.post_webhook(FIRING.read_bytes())
    router.tick(seconds=1)
    opened = router.call(router.service.store.list_incidents(None, 100))
    browser.get(router.url + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#incidents tbody tr")
    assert len(rows) == len(opened) > 1
    assert "LedgerDataCorruption" in rows[0].text  # newest first
    assert "team-lead at" in rows[0].text  # the next escalation, and to whom
    screenshot(browser, "incidents")

    title = "LedgerDataCorruption: Checksum mismatch on ledger block 118812"
    click_and_load(browser, browser.find_element(By.LINK_TEXT, title))
    ledger = opened[0].id
    assert browser.current_url.endswith(f"/incidents/{ledger}")
    assert "Data Corruption Detected" in text(browser, "#runbook-heading")
    assert browser.find_elements(By.CSS_SELECTOR, "#runbook pre code")  # the commands to run
    timeline = text(browser, "#timeline")
    assert "opened" in timeline and "classified" in timeline
    assert "delivered" in text(browser, "#deliveries")
    screenshot(browser, "incident")

    browser.find_element(By.NAME, "by").send_keys("alice")
    click_and_load(browser, browser.find_element(By.ID, "acknowledge"))
    assert text(browser, "#state") == "acknowledged"
    assert "by alice" in text(browser, "#acknowledged")
    assert text(browser, "#next-escalation") == "none"

    # Long past the P0 step's 5 minutes: nobody else is paged.
    router.tick(minutes=30)
    assert "escalate" not in router.page_events(ledger)
    assert "escalate" in router.page_events()  # the incidents nobody acknowledged did escalate
    browser.refresh()
    assert "acknowledged" in text(browser, "#timeline")


def test_readable_on_a_phone_and_dark_when_the_system_is(browser: Any, router: LiveRouter) -> None:
    from selenium.webdriver.common.by import By

    router.post_webhook(FIRING.read_bytes())
    router.tick(seconds=1)
    browser.set_window_size(390, 844)  # a phone's viewport
    try:
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
        )
        browser.get(router.url + "/incidents/1")
        body = browser.find_element(By.TAG_NAME, "body")
        assert body.value_of_css_property("background-color") == "rgba(21, 23, 26, 1)"
        # Nothing wider than the screen but what scrolls in its own box (tables, code).
        page_width = browser.execute_script("return document.documentElement.scrollWidth;")
        assert page_width <= 390
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "incident-phone-dark.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        browser.set_window_size(1280, 1000)


def test_unacknowledged_the_page_shows_the_escalation(browser: Any, router: LiveRouter) -> None:
    router.post_webhook(FIRING.read_bytes())
    router.tick(minutes=6)
    assert "escalate" in router.page_events()
    browser.get(router.url + "/incidents/1")
    assert "team-lead step 2" in text(browser, "#timeline")
    assert text(browser, "#next-escalation").startswith("eng-manager at")


def test_the_link_in_a_page_opens_without_a_login(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    # Users come from an authenticating proxy, and this browser is not behind it. (A basic-auth
    # challenge would show the browser's own sign-in dialog, which a test cannot read.)
    router = LiveRouter(tmp_path, web_trusted_user_header="X-Forwarded-User")
    try:
        router.post_webhook(FIRING.read_bytes())
        router.tick(seconds=1)
        browser.get(router.url + "/incidents")
        assert text(browser, "h1") == "Sign in"  # refused without credentials
        assert "no user in X-Forwarded-User" in text(browser, ".problem")
        assert not browser.find_elements(By.ID, "incidents")

        pages = router.call(router.service.store.list_pages(1))
        link = pages[0].context["incident_url"]
        assert "?view=" in link
        browser.get(link)
        assert text(browser, "h1") == "Incident 1"
        browser.find_element(By.NAME, "by").send_keys("bob")
        click_and_load(browser, browser.find_element(By.ID, "acknowledge"))
        assert text(browser, "#state") == "acknowledged"
        assert "by bob" in text(browser, "#acknowledged")
    finally:
        router.close()


def test_the_acknowledgement_link_of_a_page_acknowledges_in_a_browser(
    browser: Any, router: LiveRouter
) -> None:
    from selenium.webdriver.common.by import By

    router.post_webhook(FIRING.read_bytes())
    router.tick(seconds=1)
    ack_url = router.call(router.service.store.list_pages(1))[0].context["ack_url"]
    browser.get(ack_url)
    browser.find_element(By.NAME, "by").send_keys("erin")
    click_and_load(browser, browser.find_element(By.TAG_NAME, "button"))
    assert text(browser, "h1") == "Acknowledged"
    router.tick(minutes=30)
    assert "escalate" not in router.page_events()


def test_the_routing_page_routes_a_pasted_body(browser: Any, router: LiveRouter) -> None:
    from selenium.webdriver.common.by import By

    browser.get(router.url + "/routing")
    field = browser.find_element(By.ID, "payload")
    # Typed as a person pastes it: set in one go (send_keys of a large body is slow).
    browser.execute_script("arguments[0].value = arguments[1];", field, ROUTE_PAYLOAD.read_text())
    click_and_load(browser, browser.find_element(By.ID, "route"))
    routes = browser.find_elements(By.CSS_SELECTOR, "section.route")
    expected = json.loads(ROUTE_PAYLOAD.read_text())["alerts"]
    assert len(routes) == len(expected)
    first = routes[0]
    assert first.find_element(By.CSS_SELECTOR, ".severity").text == "P1"
    assert "slow-proof-generation" in first.find_element(By.CSS_SELECTOR, ".rules").text
    assert "Slow Proof Generation" in first.find_element(By.CSS_SELECTOR, ".runbook-match").text
    assert first.find_elements(By.CSS_SELECTOR, "table.timeline tbody tr")
    screenshot(browser, "routing")
    assert router.call(router.service.store.count_alerts()) == 0


def test_the_rules_page_replays_a_rules_directory(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    in_force = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", in_force)
    # The draft beside the rules in force: data corruption becomes P1.
    draft = tmp_path / "rules-next"
    shutil.copytree(ROOT / "rules", draft)
    classification = draft / "20-classification.yaml"
    old = "severity: P0\n    runbook: zkp-ledger.md#data-corruption-detected"
    assert classification.read_text().count(old) == 2
    classification.write_text(
        classification.read_text().replace(old, old.replace("P0", "P1")), encoding="utf-8"
    )
    live = LiveRouter(tmp_path / "state", rules_dir=in_force)
    try:
        live.post_webhook(FIRING.read_bytes())
        live.tick(minutes=30)
        browser.get(live.url + "/rules")
        Select(browser.find_element(By.ID, "replay-rules")).select_by_visible_text(
            "rules-next/ (beside rules/)"
        )
        click_and_load(browser, browser.find_element(By.ID, "replay"))
        assert "Replayed 2 alerts" in text(browser, "#summary")
        cards = browser.find_elements(By.CSS_SELECTOR, "section.diff")
        assert len(cards) == 1
        assert "LedgerDataCorruption" in cards[0].find_element(By.TAG_NAME, "h2").text
        rows = [row.text for row in cards[0].find_elements(By.CSS_SELECTOR, "table.changes tr")]
        assert "severity P0 P1" in rows
        screenshot(browser, "replay")
    finally:
        live.close()
