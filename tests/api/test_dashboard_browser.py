"""The dashboard in a real browser: it shows the decision, votes and reasons, and pauses trading.

Drives Debian's chromium (``/usr/bin/chromium``) headless through Playwright against the app
served by uvicorn on a free port of 127.0.0.1. Skipped when chromium is absent, unless
``TRADEBRAIN_BROWSER_REQUIRED`` is set (CI), where its absence fails the test.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from conftest import TOKEN
from playwright.sync_api import Browser, Page, expect, sync_playwright
from service_double import ServiceDouble

from tradebrain.api import create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@dataclass
class Served:
    """The app over a service double, listening on ``url``."""

    url: str
    service: ServiceDouble


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium (Playwright's own browser download cannot work offline)."""
    if not CHROMIUM.exists():
        missing = f"no chromium at {CHROMIUM}; install it with `apt-get install chromium`"
        if os.environ.get("TRADEBRAIN_BROWSER_REQUIRED"):
            pytest.fail(f"{missing} (TRADEBRAIN_BROWSER_REQUIRED is set, so this cannot skip)")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def _serve(service: ServiceDouble) -> Iterator[Served]:
    """Serve the app over ``service`` with uvicorn on a free port, in a background thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(service, token=TOKEN), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.025)
    assert server.started, "uvicorn did not start within 5 s"
    try:
        yield Served(f"http://127.0.0.1:{port}", service)
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


@pytest.fixture
def served() -> Iterator[Served]:
    """A fresh, trading service double behind the app."""
    with _serve(ServiceDouble()) as served:
        yield served


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (own sessionStorage) that fails the test on any script or CSP error.

    A refused request (401, expected while testing a wrong token) is not counted.
    """
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "status of 401" not in msg.text
            else None
        ),
    )
    yield page
    context.close()
    assert errors == [], f"the page logged errors: {errors}"


def _save_screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    if folder := os.environ.get("TRADEBRAIN_SCREENSHOT_DIR"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / name)
    return shot


def test_dashboard_shows_the_decision_votes_and_reasons_and_pause_pauses(
    served: Served, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{served.url}/#token={TOKEN}")
    expect(page.get_by_test_id("decision-action")).to_have_text("buy")
    expect(page.get_by_test_id("decision-confidence")).to_have_text("64.0%")
    expect(page.get_by_test_id("decision-regime")).to_have_text("trending up")
    expect(page.get_by_test_id("decision-stop")).to_have_text("41,601.00")
    assert TOKEN not in page.url  # the fragment is wiped from the address bar

    lightgbm = page.get_by_test_id("vote-lightgbm")
    expect(lightgbm.get_by_test_id("p-up")).to_have_text("60%")
    expect(lightgbm.get_by_test_id("p-down")).to_have_text("15%")
    expect(page.get_by_test_id("vote-fused")).to_be_visible()
    expect(page.get_by_test_id("reason")).to_have_count(3)
    expect(page.get_by_test_id("reason").first).to_contain_text("Models agree on up")
    expect(page.get_by_test_id("filter")).to_have_text(["kalman"])
    expect(page.get_by_test_id("top-ETH/USDT")).to_contain_text("hold")
    expect(page.get_by_test_id("position")).to_have_count(1)
    expect(page.get_by_test_id("trade")).to_have_count(6)
    expect(page.get_by_test_id("model-tcn")).to_contain_text("sequence")
    expect(page.get_by_test_id("equity-line")).to_have_count(1)
    expect(page.get_by_test_id("hold-line")).to_have_count(1)
    expect(page.get_by_test_id("control-state")).to_have_attribute("data-state", "running")
    expect(page.get_by_test_id("error-banner")).to_be_hidden()
    _save_screenshot(page, tmp_path, "dashboard.png")

    page.get_by_test_id("btn-pause").click()
    expect(page.get_by_test_id("control-state")).to_have_attribute("data-state", "paused")
    expect(page.get_by_test_id("btn-pause")).to_be_disabled()
    assert served.service.control()["state"] == "paused"
    _save_screenshot(page, tmp_path, "dashboard-paused.png")


def test_emergency_stop_acts_only_after_the_operator_confirms(served: Served, page: Page) -> None:
    page.goto(f"{served.url}/#token={TOKEN}")
    expect(page.get_by_test_id("decision-action")).to_have_text("buy")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_test_id("btn-emergency").click()
    page.wait_for_timeout(300)
    assert served.service.control()["state"] == "running"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("btn-emergency").click()
    expect(page.get_by_test_id("control-state")).to_have_attribute("data-state", "emergency_stop")
    expect(page.get_by_test_id("position")).to_have_count(0)
    assert served.service.control()["state"] == "emergency_stop"


def test_without_a_token_the_page_asks_for_one_and_rejects_a_wrong_one(
    served: Served, page: Page
) -> None:
    page.goto(served.url + "/")
    expect(page.get_by_test_id("token-form")).to_be_visible()
    page.get_by_test_id("token-input").fill("not-the-token")
    page.get_by_test_id("token-submit").click()
    expect(page.get_by_test_id("token-error")).to_contain_text("refused")

    page.get_by_test_id("token-input").fill(TOKEN)
    page.get_by_test_id("token-submit").click()
    expect(page.get_by_test_id("token-form")).to_be_hidden()
    expect(page.get_by_test_id("decision-action")).to_have_text("buy")


def test_while_warming_up_the_page_says_so_and_shows_no_votes(page: Page, tmp_path: Path) -> None:
    with _serve(ServiceDouble(warming_up=True)) as served:
        page.goto(f"{served.url}/#token={TOKEN}")
        expect(page.get_by_test_id("decision-warming")).to_contain_text("Waiting")
        expect(page.get_by_test_id("votes")).to_contain_text("warming up")
        expect(page.get_by_test_id("top-predictions")).to_contain_text("no decisions yet")
        expect(page.get_by_test_id("model-tcn")).to_be_visible()
        expect(page.get_by_test_id("error-banner")).to_be_hidden()
        _save_screenshot(page, tmp_path, "dashboard-warming-up.png")
