"""The exchange broker against a fake Binance venue on 127.0.0.1; no real exchange is used."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import ccxt
import pytest
from fake_venue import FakeVenue, serve

from tradebrain.core.events import CandleClosed, Event, OrderCancelled, OrderDenied, OrderFilled
from tradebrain.core.market import MarketType
from tradebrain.core.orders import Fill, OrderIntent, OrderType, Side
from tradebrain.data.exchanges import RetryPolicy, make_exchange
from tradebrain.engine.ports import Broker
from tradebrain.exceptions import ExchangeUnavailableError
from tradebrain.execution.exchange_broker import ExchangeBroker

pytestmark = pytest.mark.usefixtures("loopback_only")

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FAST_RETRY = RetryPolicy(retries=3, base_delay_s=0.01, max_delay_s=0.05)
API_KEY = "k3yK3yK3yAPIKEYvalue0123456789"
SECRET = "s3cr3tS3CR3Tvalue9876543210"
SPOT_ORDER = "/api/v3/order"
PERP_ORDER = "/fapi/v1/order"
ALGO_ORDER = "/fapi/v1/algoOrder"


@pytest.fixture
def venue() -> Iterator[FakeVenue]:
    with serve(FakeVenue()) as fake:
        yield fake


def exchange_for(venue: FakeVenue) -> ccxt.Exchange:
    exchange = make_exchange(
        "binance", markets=("spot", "perp"), api_urls=venue.url, timeout_s=0.4, rate_limit_ms=1
    )
    exchange.apiKey = API_KEY
    exchange.secret = SECRET
    return exchange


def broker_on(
    venue: FakeVenue, market: MarketType = MarketType.SPOT, leverage: float = 1.0
) -> ExchangeBroker:
    return ExchangeBroker(
        exchange_for(venue), market=market, leverage=leverage, retry=FAST_RETRY, client_prefix="t"
    )


def candle(price: float, symbol: str = "BTC/USDT", *, high: float | None = None) -> CandleClosed:
    high = max(price, high or price)
    return CandleClosed(symbol, T0, T0 + timedelta(minutes=1), price, high, price, price, 1.0)


def buy(quantity: float = 1.0, **kw: object) -> OrderIntent:
    return OrderIntent(T0, "BTC/USDT", Side.BUY, quantity, **kw)  # type: ignore[arg-type]


def sell(quantity: float = 1.0, **kw: object) -> OrderIntent:
    return OrderIntent(T0, "BTC/USDT", Side.SELL, quantity, **kw)  # type: ignore[arg-type]


def fills(events: list[Event]) -> list[Fill]:
    return [event.fill for event in events if isinstance(event, OrderFilled)]


def cancellations(events: list[Event]) -> list[OrderCancelled]:
    return [event for event in events if isinstance(event, OrderCancelled)]


# --- fills -------------------------------------------------------------------------------------
def test_spot_market_buy_fills_once_at_the_venue_price_with_the_client_id(
    venue: FakeVenue,
) -> None:
    broker = broker_on(venue)

    client_id = broker.submit(buy(2.0))
    first = broker.poll()
    again = broker.on_candle(candle(100.0))

    [fill] = fills(first)
    assert (fill.order_id, fill.side, fill.quantity) == (client_id, Side.BUY, 2.0)
    assert fill.price == 100.0
    assert fill.fee == pytest.approx(2.0 * 0.001 * 100.0)  # paid in BTC, reported in USDT
    assert again == []
    assert venue.requests_to(SPOT_ORDER, "POST")[0]["newClientOrderId"] == client_id


def test_perp_market_short_fills_and_leverage_is_set_once_per_symbol(venue: FakeVenue) -> None:
    broker = broker_on(venue, MarketType.PERP, leverage=5)

    broker.submit(sell(1.0))
    broker.submit(sell(0.5, tag="add"))
    events = broker.poll()

    assert [fill.quantity for fill in fills(events)] == [1.0, 0.5]
    assert venue.position("BTCUSDT") == pytest.approx(-1.5)
    assert [params["leverage"] for params in venue.requests_to("/fapi/v1/leverage")] == ["5"]
    assert venue.requests_to(PERP_ORDER, "POST")[0]["positionSide"] == "BOTH"


def test_limit_order_rests_until_the_price_crosses_it(venue: FakeVenue) -> None:
    broker = broker_on(venue)
    client_id = broker.submit(buy(1.0, order_type=OrderType.LIMIT, limit_price=95.0))

    assert broker.poll() == []
    venue.set_price("BTCUSDT", 94.0)
    [fill] = fills(broker.on_candle(candle(94.0)))

    assert (fill.order_id, fill.price, fill.liquidity.value) == (client_id, 95.0, "maker")
    assert broker.open_orders() == []


def test_partial_fills_are_reported_once_each(venue: FakeVenue) -> None:
    broker = broker_on(venue)
    broker.submit(buy(1.0, order_type=OrderType.LIMIT, limit_price=95.0))

    venue.set_price("BTCUSDT", 95.0, depth=0.4)
    first = fills(broker.poll())
    second = fills(broker.poll())
    venue.set_price("BTCUSDT", 94.0)
    third = fills(broker.poll())

    assert [fill.quantity for fill in first] == [0.4]
    assert second == []
    assert [fill.quantity for fill in third] == [pytest.approx(0.6)]


def test_a_market_order_filled_in_several_trades_gives_one_fill_per_trade(
    venue: FakeVenue,
) -> None:
    venue.market_fill_parts = 3
    broker = broker_on(venue)

    broker.submit(buy(0.9))

    assert [fill.quantity for fill in fills(broker.poll())] == pytest.approx([0.3, 0.3, 0.3])
    assert fills(broker.poll()) == []


def test_an_entry_sized_by_equity_fraction_is_rounded_to_the_market_precision(
    venue: FakeVenue,
) -> None:
    broker = broker_on(venue)

    broker.submit(OrderIntent(T0, "BTC/USDT", Side.BUY, equity_fraction=0.5))
    [fill] = fills(broker.poll())

    assert fill.quantity == pytest.approx(5_000 / (100.0 * 1.001), abs=1e-5)
    assert re.fullmatch(r"\d+\.\d{1,5}", venue.requests_to(SPOT_ORDER, "POST")[0]["quantity"])


# --- refusals and retries --------------------------------------------------------------------
def test_insufficient_balance_becomes_order_denied_with_the_venue_message(
    venue: FakeVenue,
) -> None:
    broker = broker_on(venue)

    broker.submit(buy(1_000.0))
    [denied] = broker.poll()

    assert isinstance(denied, OrderDenied)
    assert "Account has insufficient balance" in denied.reason
    assert denied.intent.quantity == 1_000.0
    assert venue.accepted() == []


def test_http_429_is_retried_and_places_exactly_one_order(venue: FakeVenue) -> None:
    venue.fail(SPOT_ORDER, 429, on_request=1)
    broker = broker_on(venue)

    broker.submit(buy(1.0))

    assert len(venue.requests_to(SPOT_ORDER, "POST")) == 2
    assert len(venue.accepted()) == 1
    assert len(fills(broker.poll())) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_http_5xx_is_retried_and_places_exactly_one_order(venue: FakeVenue, status: int) -> None:
    venue.fail(SPOT_ORDER, status, on_request=1)
    broker = broker_on(venue)

    broker.submit(buy(1.0))

    assert len(venue.accepted()) == 1
    assert len(fills(broker.poll())) == 1


@pytest.mark.parametrize("fault", ["stall", "drop"])
def test_a_lost_answer_after_the_venue_accepted_places_exactly_one_order(
    venue: FakeVenue, fault: str
) -> None:
    if fault == "stall":
        venue.accept_then_stall(SPOT_ORDER, 1.0, on_request=1)
    else:
        venue.accept_then_drop(SPOT_ORDER, on_request=1)
    broker = broker_on(venue)

    client_id = broker.submit(buy(1.0))
    events = broker.poll()

    assert len(venue.accepted()) == 1
    assert len(venue.requests_to(SPOT_ORDER, "POST")) == 1  # looked up, not resent
    assert venue.requests_to(SPOT_ORDER, "GET")[0]["origClientOrderId"] == client_id
    assert [fill.quantity for fill in fills(events)] == [1.0]


def test_a_venue_down_for_every_retry_leaves_no_order_and_reports_it_denied(
    venue: FakeVenue,
) -> None:
    for attempt in range(1, 5):
        venue.fail(SPOT_ORDER, 503, on_request=attempt)
    broker = broker_on(venue)

    broker.submit(buy(1.0))
    [denied] = broker.poll()

    assert isinstance(denied, OrderDenied) and denied.rule == "venue_unavailable"
    assert venue.accepted() == []


def test_a_resting_order_past_its_expiry_is_cancelled_as_expired(venue: FakeVenue) -> None:
    broker: Broker = broker_on(venue)
    expires = T0 + timedelta(seconds=30)
    client_id = broker.submit(
        buy(1.0, order_type=OrderType.LIMIT, limit_price=90.0, expires_at=expires)
    )

    [expired] = broker.on_candle(candle(100.0))

    assert isinstance(expired, OrderCancelled)
    assert (expired.order_id, expired.reason) == (client_id, "expired")
    assert venue.order_by_client_id(client_id)["status"] == "CANCELED"


def test_cancel_returns_the_cancellation_of_a_resting_order(venue: FakeVenue) -> None:
    broker = broker_on(venue)
    client_id = broker.submit(buy(1.0, order_type=OrderType.LIMIT, limit_price=90.0))

    [cancelled] = broker.cancel(client_id, T0)

    assert isinstance(cancelled, OrderCancelled) and cancelled.order_id == client_id
    assert venue.balances["USDT"] == pytest.approx(10_000.0)  # the lock is released
    assert broker.poll() == []


# --- protection on the venue -------------------------------------------------------------------
def test_spot_stop_is_placed_after_the_entry_fills_and_cancelled_after_an_exit(
    venue: FakeVenue,
) -> None:
    broker = broker_on(venue)
    entry = broker.submit(buy(1.0, stop_price=90.0))
    broker.poll()

    stop = venue.order_by_client_id(entry + "-sl")
    assert (stop["type"], stop["side"], stop["stopPrice"]) == ("STOP_LOSS", "SELL", "90")
    assert float(stop["origQty"]) == pytest.approx(0.999)  # net of the fee paid in BTC

    broker.submit(sell(0.0, reduce_only=True, tag="exit"))
    events = broker.poll()

    assert venue.order_by_client_id(entry + "-sl")["status"] == "CANCELED"
    assert [fill.quantity for fill in fills(events)] == [pytest.approx(0.999)]
    assert venue.balances.get("BTC", 0.0) == pytest.approx(0.0)
    assert broker.open_orders() == []


def test_an_exit_leaving_dust_below_the_lot_size_still_reports_its_fill(
    venue: FakeVenue, caplog: pytest.LogCaptureFixture
) -> None:
    broker = broker_on(venue)
    entry = broker.submit(buy(1.00001, stop_price=90.0))  # the BTC fee leaves an odd holding
    broker.poll()
    held = venue.balances.get("BTC", 0.0) + venue.locked.get("BTC", 0.0)
    assert 0.0 < held - 0.999 < 1e-5  # what a 0.999 exit leaves is below the 0.00001 lot

    exit_id = broker.submit(sell(0.999, reduce_only=True, tag="exit"))
    with caplog.at_level(logging.ERROR):
        events = broker.poll()

    [fill] = fills(events)  # the venue filled it: the fill is reported, once
    assert (fill.order_id, fill.quantity) == (exit_id, pytest.approx(0.999))
    assert venue.order_by_client_id(exit_id)["status"] == "FILLED"
    assert venue.order_by_client_id(entry + "-sl")["status"] == "CANCELED"
    assert exit_id not in dict(broker.open_orders())
    assert broker.poll() == []
    assert "protecting what is left failed" in caplog.text  # the dust stays unprotected, said


def test_spot_stop_fill_is_reported_when_the_price_falls_through_it(venue: FakeVenue) -> None:
    broker = broker_on(venue)
    entry = broker.submit(buy(1.0, stop_price=90.0))
    broker.poll()

    venue.set_price("BTCUSDT", 89.0)
    [fill] = fills(broker.on_candle(candle(89.0)))

    assert (fill.order_id, fill.tag, fill.side) == (entry + "-sl", "stop", Side.SELL)
    assert broker.open_orders() == []


def test_spot_target_reached_by_a_candle_cancels_the_stop_and_exits(venue: FakeVenue) -> None:
    broker = broker_on(venue)
    entry = broker.submit(buy(1.0, stop_price=90.0, target_price=110.0))
    broker.poll()

    venue.set_price("BTCUSDT", 111.0)
    events = broker.on_candle(candle(111.0, high=112.0))

    [fill] = fills(events)
    assert (fill.order_id, fill.tag, fill.price) == (entry + "-tp", "target", 111.0)
    assert [event.order_id for event in cancellations(events)] == [entry + "-sl"]


def test_perp_stop_and_target_rest_on_the_venue_and_the_stop_fill_cancels_the_target(
    venue: FakeVenue,
) -> None:
    broker = broker_on(venue, MarketType.PERP, leverage=3)
    entry = broker.submit(buy(2.0, stop_price=90.0, target_price=120.0))
    broker.poll()

    [stop] = venue.accepted(ALGO_ORDER)
    target = venue.order_by_client_id(entry + "-tp")
    assert (stop["clientAlgoId"], stop["orderType"], stop["reduceOnly"]) == (
        entry + "-sl", "STOP_MARKET", True,
    )  # fmt: skip
    assert (target["type"], target["price"], target["reduceOnly"]) == ("LIMIT", "120", True)

    venue.set_price("BTCUSDT", 89.0)
    events = broker.on_candle(candle(89.0))

    [fill] = fills(events)
    assert (fill.order_id, fill.quantity, fill.price) == (entry + "-sl", 2.0, 89.0)
    assert [event.order_id for event in cancellations(events)] == [entry + "-tp"]
    assert venue.position("BTCUSDT") == 0.0
    assert broker.open_orders() == []


def test_perp_exit_to_flat_cancels_both_protective_orders(venue: FakeVenue) -> None:
    broker = broker_on(venue, MarketType.PERP, leverage=3)
    entry = broker.submit(sell(1.0, stop_price=110.0, target_price=80.0))
    broker.poll()

    broker.submit(buy(0.0, reduce_only=True, tag="exit"))
    events = broker.poll()

    assert sorted(event.order_id for event in cancellations(events)) == [
        entry + "-sl",
        entry + "-tp",
    ]
    assert venue.algo_orders and all(
        algo["algoStatus"] == "CANCELED" for algo in venue.algo_orders.values()
    )


# --- account -----------------------------------------------------------------------------------
def test_spot_account_values_coins_at_the_last_price(venue: FakeVenue) -> None:
    broker = broker_on(venue)
    broker.submit(buy(10.0))
    broker.on_candle(candle(120.0))

    account = broker.account(T0)

    held = 10.0 * 0.999
    assert account.cash == pytest.approx(10_000.0 - 1_000.0)
    assert account.equity == pytest.approx(9_000.0 + held * 120.0)
    assert account.positions["BTC/USDT"].quantity == pytest.approx(held)
    assert broker.liquidation_price("BTC/USDT") is None


def test_perp_account_reports_the_position_and_its_liquidation_price(venue: FakeVenue) -> None:
    broker = broker_on(venue, MarketType.PERP, leverage=4)
    broker.submit(buy(10.0))
    broker.poll()
    venue.set_price("BTCUSDT", 110.0)

    account = broker.account(T0)

    position = account.positions["BTC/USDT"]
    assert (position.quantity, position.entry_price) == (10.0, 100.0)
    fee = 10.0 * 100.0 * 0.0004
    assert account.equity == pytest.approx(10_000.0 - fee + 100.0)
    assert account.cash == pytest.approx(10_000.0 - fee)
    assert broker.liquidation_price("BTC/USDT") == pytest.approx(100.0 * (1 - (0.25 - 0.004)))


# --- restart -----------------------------------------------------------------------------------
def test_reconcile_after_a_restart_reports_fills_made_meanwhile_exactly_once(
    venue: FakeVenue,
) -> None:
    before = broker_on(venue)
    intent = buy(1.0, order_type=OrderType.LIMIT, limit_price=95.0, stop_price=90.0)
    client_id = before.client_id_for(intent, sequence=7)
    before.submit(intent, client_id=client_id)
    venue.set_price("BTCUSDT", 95.0, depth=0.25)
    assert [fill.quantity for fill in fills(before.poll())] == [0.25]
    del before  # the runner stops; the order fills while it is down

    venue.set_price("BTCUSDT", 94.0)
    after = broker_on(venue)
    events = after.reconcile([(client_id, intent)], already_filled={client_id: 0.25})

    assert [(fill.order_id, fill.quantity) for fill in fills(events)] == [(client_id, 0.75)]
    assert venue.order_by_client_id(client_id + "-sl")["status"] == "NEW"
    assert fills(after.poll()) == []
    venue.set_price("BTCUSDT", 89.0)
    [stop_fill] = fills(after.poll())
    assert stop_fill.order_id == client_id + "-sl"


def test_reconcile_reports_an_order_the_venue_never_received_and_does_not_resend_it(
    venue: FakeVenue,
) -> None:
    broker = broker_on(venue)
    intent = buy(1.0)

    [cancelled] = broker.reconcile([(broker.client_id_for(intent, 1), intent)])

    assert isinstance(cancelled, OrderCancelled) and "not resent" in cancelled.reason
    assert venue.requests_to(SPOT_ORDER, "POST") == []


def test_reconcile_adopts_an_order_still_open_and_follows_it(venue: FakeVenue) -> None:
    intent = buy(1.0, order_type=OrderType.LIMIT, limit_price=95.0)
    first = broker_on(venue)
    client_id = first.submit(intent, client_id=first.client_id_for(intent, 3))

    second = broker_on(venue)
    assert second.reconcile([(client_id, intent)]) == []
    venue.set_price("BTCUSDT", 90.0)

    assert [fill.order_id for fill in fills(second.poll())] == [client_id]


# --- client ids and secrets -------------------------------------------------------------------
def test_client_ids_are_deterministic_distinct_and_fit_binance(venue: FakeVenue) -> None:
    broker = broker_on(venue)
    intent = buy(1.0, stop_price=90.0)

    same = broker.client_id_for(intent, 12) == broker_on(venue).client_id_for(intent, 12)
    ids = {broker.client_id_for(intent, 12), broker.client_id_for(intent, 13),
           broker.client_id_for(buy(1.1, stop_price=90.0), 12)}  # fmt: skip

    assert same and len(ids) == 3
    assert all(re.fullmatch(r"[.A-Z:/a-z0-9_-]{1,33}", client_id) for client_id in ids)


def test_the_api_key_and_secret_never_appear_in_repr_errors_or_logs(
    venue: FakeVenue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    venue.fail(SPOT_ORDER, 500, on_request=1)
    for attempt in range(1, 5):
        venue.fail("/api/v3/account", 503, on_request=attempt, method="GET")
    broker = broker_on(venue)

    broker.submit(buy(1_000.0))
    denials = [event for event in broker.poll() if isinstance(event, OrderDenied)]
    with pytest.raises(ExchangeUnavailableError) as raised:
        broker.account(T0)

    texts = [repr(broker), str(raised.value), *(event.reason for event in denials)]
    texts += [record.getMessage() for record in caplog.records]
    assert len(texts) > 3 and any("insufficient" in text for text in texts)
    assert not [text for text in texts if API_KEY in text or SECRET in text]
