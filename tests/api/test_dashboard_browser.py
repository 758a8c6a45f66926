"""The dashboard in a real browser: it follows a trading service, and pauses and stops it.

Drives Debian's chromium (``/usr/bin/chromium``) headless through Playwright against the app
over a real service, served by uvicorn on a free port of 127.0.0.1. Skipped when chromium is
absent, unless ``TRADEBRAIN_BROWSER_REQUIRED`` is set (CI), where its absence fails the test.
Screenshots go to the test's folder, and to ``$TRADEBRAIN_SCREENSHOT_DIR`` when set.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from conftest import TOKEN, NewService
from playwright.sync_api import Browser, Page, expect, sync_playwright
from real_service import SYMBOLS, build_learning_service, start_trading

from tradebrain.api import create_app
from tradebrain.service.service import TradingService

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ACTION = re.compile(r"^(buy|sell|hold|exit)$")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@dataclass
class Served:
    """The app over a real service, listening on ``url``."""

    url: str
    service: TradingService


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
def _serve(service: TradingService) -> Iterator[Served]:
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
def trading(new_service: NewService) -> Iterator[Served]:
    """A fresh real service trading 5 candles a second (of each symbol), behind the app."""
    with _serve(start_trading(new_service(candles=2000, speed=5))) as served:
        yield served


@pytest.fixture
def traded(service: TradingService) -> Iterator[Served]:
    """The shared service that has traded 1200 candles and finished (read only), behind the app."""
    with _serve(service) as served:
        yield served


@pytest.fixture
def learning(tmp_path: Path) -> Iterator[Served]:
    """A fresh real service with the learning loop on, trading 10 candles a second."""
    service = start_trading(build_learning_service(tmp_path / "learning", candles=3000, speed=10))
    try:
        with _serve(service) as served:
            yield served
    finally:
        service.stop()


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


def _num(x: float | None) -> str:
    """Format a price like the page does: thousands separated, 2 decimals (4 below 1)."""
    if x is None:
        return "—"
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:,.4f}"


def _change(series: list[float | None]) -> str:
    """Format the change from the first to the last value like the page's legend does."""
    finite = [x for x in series if x is not None]
    change = finite[-1] / finite[0] - 1
    return ("+" if change >= 0 else "") + f"{100 * change:.2f}%"


def test_dashboard_follows_a_trading_service_and_pause_pauses_it(
    trading: Served, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{trading.url}/#token={TOKEN}")
    expect(page.get_by_test_id("decision-action")).to_have_text(ACTION)
    assert TOKEN not in page.url  # the fragment is wiped from the address bar
    for name in ("logistic", "lightgbm", "fused"):
        expect(page.get_by_test_id(f"vote-{name}")).to_be_visible()
    expect(page.get_by_test_id("reason").first).to_be_visible()
    for symbol in SYMBOLS:
        expect(page.get_by_test_id(f"top-{symbol}")).to_contain_text(symbol)
    expect(page.get_by_test_id("model-lightgbm")).to_contain_text("LightGBMModel")
    expect(page.get_by_test_id("equity-line")).to_have_count(1)
    expect(page.get_by_test_id("hold-line")).to_have_count(1)
    expect(page.get_by_test_id("control-state")).to_have_attribute("data-state", "running")
    expect(page.get_by_test_id("decision-held")).to_be_hidden()
    expect(page.get_by_test_id("error-banner")).to_be_hidden()
    first_seen = page.get_by_test_id("decision-time").inner_text()
    expect(page.get_by_test_id("decision-time")).not_to_have_text(first_seen)  # the tape moves
    _save_screenshot(page, tmp_path, "dashboard.png")

    page.get_by_test_id("btn-pause").click()
    expect(page.get_by_test_id("control-state")).to_have_attribute("data-state", "paused")
    expect(page.get_by_test_id("control-reason")).to_have_text("paused by the operator")
    expect(page.get_by_test_id("btn-pause")).to_be_disabled()
    expect(page.get_by_test_id("decision-held")).to_have_text("not acted on: paused")
    assert trading.service.control()["state"] == "paused"
    _save_screenshot(page, tmp_path, "dashboard-paused.png")


def test_dashboard_shows_the_services_numbers_as_it_gave_them(
    traded: Served, page: Page, tmp_path: Path
) -> None:
    service = traded.service
    decision = service.live_decision()
    assert decision is not None
    page.goto(f"{traded.url}/#token={TOKEN}")
    expect(page.get_by_test_id("decision-action")).to_have_text(decision["action"])
    expect(page.get_by_test_id("decision-symbol")).to_have_text(f"{decision['symbol']} · 1h")
    expect(page.get_by_test_id("decision-confidence")).to_have_text(
        f"{100 * decision['confidence']:.1f}%"
    )
    expect(page.get_by_test_id("decision-regime")).to_have_text(
        decision["regime"].replace("_", " ")
    )
    expect(page.get_by_test_id("decision-stop")).to_have_text(_num(decision["stop"]))
    expect(page.get_by_test_id("decision-target")).to_have_text(_num(decision["target"]))
    expect(page.get_by_test_id("reason")).to_have_text(decision["reasons"])
    expect(page.get_by_test_id("filter")).to_have_text(decision["filters"])
    for name, (_, _, p_up) in decision["votes"].items():
        shown = f"{100 * p_up:.0f}%" if p_up >= 0.12 else ""
        expect(page.get_by_test_id(f"vote-{name}").get_by_test_id("p-up")).to_have_text(shown)
    expect(page.get_by_test_id("position")).to_have_count(len(service.positions()))
    expect(page.get_by_test_id("trade")).to_have_count(min(15, len(service.trades(limit=1000))))
    for symbol in SYMBOLS:
        expect(page.get_by_test_id(f"top-{symbol}")).to_contain_text(symbol)
    equity = service.equity()
    expect(page.locator("#equity-return")).to_have_text(_change(equity["equity"]))
    expect(page.locator("#hold-return")).to_have_text(_change(equity["buy_and_hold"]))
    expect(page.get_by_test_id("error-banner")).to_be_hidden()
    _save_screenshot(page, tmp_path, "dashboard-traded.png")


def _overflowing_cards(page: Page) -> list[str]:
    """Return the titles of the cards whose content is wider than the card."""
    titles: list[str] = page.evaluate(
        """() => [...document.querySelectorAll("section")]
            .filter((card) => card.scrollWidth > card.clientWidth + 1)
            .map((card) => card.querySelector("h2").textContent.trim())"""
    )
    return titles


def test_every_table_fits_its_card(traded: Served, page: Page) -> None:
    page.goto(f"{traded.url}/#token={TOKEN}")
    expect(page.get_by_test_id("trade")).to_have_count(15)
    assert _overflowing_cards(page) == []


def test_learning_card_shows_production_its_versions_and_the_shadow_chart_of_a_candidate(
    learning: Served, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{learning.url}/#token={TOKEN}")
    expect(page.get_by_test_id("learning-state")).to_have_text("on")
    expect(page.get_by_test_id("learning-production")).to_have_text("v1")
    expect(page.get_by_test_id("learning-candidate")).to_have_text("none")
    expect(page.get_by_test_id("version-1").get_by_test_id("version-status")).to_have_text(
        "production"
    )
    expect(page.get_by_test_id("cusum")).to_contain_text("v1")
    expect(page.get_by_test_id("experience-decisions")).to_be_visible()
    expect(page.get_by_test_id("learning-note")).to_be_hidden()
    expect(page.get_by_test_id("shadow-chart")).to_be_visible()
    expect(page.get_by_test_id("shadow-chart")).to_contain_text("no candidate in shadow")

    learning.service.learning_command("retrain", reason="the browser test asked")
    # Retraining (seconds) registers v2; from the next candle it trades in shadow beside v1.
    expect(page.get_by_test_id("shadow-candidate-line")).to_have_count(1, timeout=90_000)
    expect(page.get_by_test_id("shadow-production-line")).to_have_count(1)
    expect(page.get_by_test_id("learning-candidate")).to_contain_text("v2 in shadow")
    expect(page.get_by_test_id("version-2").get_by_test_id("version-status")).to_have_text(
        "candidate"
    )
    expect(page.get_by_test_id("learning-last-retrain")).to_contain_text("v2")
    expect(page.get_by_test_id("error-banner")).to_be_hidden()
    assert _overflowing_cards(page) == []
    _save_screenshot(page, tmp_path, "dashboard-learning.png")


def test_learning_card_of_a_service_with_the_loop_off_shows_its_note_and_no_registry(
    traded: Served, page: Page
) -> None:
    page.goto(f"{traded.url}/#token={TOKEN}")
    expect(page.get_by_test_id("learning-state")).to_have_text("off")
    expect(page.get_by_test_id("learning-note")).to_have_text(
        traded.service.learning_status()["note"]
    )
    expect(page.get_by_test_id("learning")).to_contain_text("trained to")
    expect(page.get_by_test_id("shadow-chart")).to_be_hidden()
    expect(page.get_by_test_id("versions-panel")).to_be_hidden()
    expect(page.get_by_test_id("error-banner")).to_be_hidden()


def test_emergency_stop_acts_only_after_the_operator_confirms(trading: Served, page: Page) -> None:
    page.goto(f"{trading.url}/#token={TOKEN}")
    expect(page.get_by_test_id("decision-action")).to_have_text(ACTION)

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_test_id("btn-emergency").click()
    page.wait_for_timeout(300)
    assert trading.service.control()["state"] == "running"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("btn-emergency").click()
    expect(page.get_by_test_id("control-state")).to_have_attribute("data-state", "emergency_stop")
    expect(page.get_by_test_id("position")).to_have_count(0)
    assert trading.service.control()["state"] == "emergency_stop"


def test_without_a_token_the_page_asks_for_one_and_rejects_a_wrong_one(
    traded: Served, page: Page
) -> None:
    page.goto(traded.url + "/")
    expect(page.get_by_test_id("token-form")).to_be_visible()
    page.get_by_test_id("token-input").fill("not-the-token")
    page.get_by_test_id("token-submit").click()
    expect(page.get_by_test_id("token-error")).to_contain_text("refused")

    page.get_by_test_id("token-input").fill(TOKEN)
    page.get_by_test_id("token-submit").click()
    expect(page.get_by_test_id("token-form")).to_be_hidden()
    expect(page.get_by_test_id("decision-action")).to_have_text(ACTION)


def test_while_warming_up_the_page_says_so_and_shows_no_votes(
    unstarted_service: TradingService, page: Page, tmp_path: Path
) -> None:
    with _serve(unstarted_service) as served:
        page.goto(f"{served.url}/#token={TOKEN}")
        expect(page.get_by_test_id("decision-warming")).to_contain_text("Waiting")
        expect(page.get_by_test_id("votes")).to_contain_text("warming up")
        expect(page.get_by_test_id("top-predictions")).to_contain_text("no decisions yet")
        expect(page.get_by_test_id("models")).to_contain_text("no models loaded yet")
        expect(page.get_by_test_id("error-banner")).to_be_hidden()
        _save_screenshot(page, tmp_path, "dashboard-warming-up.png")
