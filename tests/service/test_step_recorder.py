"""The recorder collects what the engines publish during a step, per symbol and in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tradebrain.core.events import CandleClosed, OrderCancelled, OrderDenied, OrderFilled
from tradebrain.core.orders import Fill, Liquidity, OrderIntent, Side
from tradebrain.execution.portfolio import Portfolio
from tradebrain.service.brokers import PaperTrades
from tradebrain.service.recorder import StepEvents

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _fill(symbol: str, minute: int, order_id: str = "sim-1") -> Fill:
    return Fill(
        timestamp=T0 + timedelta(minutes=minute), order_id=order_id, symbol=symbol,
        side=Side.BUY, quantity=1.0, price=100.0, fee=0.1, liquidity=Liquidity.TAKER,
    )  # fmt: skip


def _intent(symbol: str) -> OrderIntent:
    return OrderIntent(T0, symbol, Side.BUY, 1.0)


def test_the_collector_keeps_each_symbols_fills_denials_and_cancellations_in_order() -> None:
    events = StepEvents()
    btc, eth = events.listener("BTC/USDT"), events.listener("ETH/USDT")
    eth(OrderFilled(_fill("ETH/USDT", 1)))
    btc(OrderFilled(_fill("BTC/USDT", 2)))
    btc(OrderDenied(T0, _intent("BTC/USDT"), "no", "size"))
    btc(OrderFilled(_fill("BTC/USDT", 3)))
    eth(OrderCancelled(T0, "sim-2", _intent("ETH/USDT"), "expired unfilled"))
    btc(CandleClosed("BTC/USDT", T0, T0, 1.0, 1.0, 1.0, 1.0, 1.0))  # not an order event

    drained = events.drain()

    assert list(drained) == ["BTC/USDT", "ETH/USDT"]  # the order the symbols were registered
    assert [f.timestamp.minute for f in drained["BTC/USDT"].fills] == [2, 3]
    assert [d.rule for d in drained["BTC/USDT"].denials] == ["size"]
    assert [f.symbol for f in drained["ETH/USDT"].fills] == ["ETH/USDT"]
    assert [c.reason for c in drained["ETH/USDT"].cancellations] == ["expired unfilled"]


def test_a_drained_collector_starts_afresh_and_still_hears_its_engines() -> None:
    events = StepEvents()
    listen = events.listener("BTC/USDT")
    listen(OrderFilled(_fill("BTC/USDT", 1)))
    events.drain()
    assert events.drain()["BTC/USDT"].fills == []
    listen(OrderFilled(_fill("BTC/USDT", 2)))
    assert [f.timestamp.minute for f in events.drain()["BTC/USDT"].fills] == [2]


def test_paper_trades_report_each_closed_trade_once_even_after_trimming() -> None:
    portfolio = Portfolio(cash=10_000.0)
    ledger = PaperTrades(portfolio)
    for minute in range(0, 40, 2):  # 20 round trips
        buy = _fill("BTC/USDT", minute, f"b{minute}")
        portfolio.apply_fill(buy)
        sell = Fill(
            timestamp=buy.timestamp + timedelta(minutes=1), order_id=f"s{minute}",
            symbol="BTC/USDT", side=Side.SELL, quantity=1.0, price=101.0, fee=0.1,
            liquidity=Liquidity.TAKER,
        )  # fmt: skip
        portfolio.apply_fill(sell)
        assert len(ledger.new_trades([buy, sell], lambda _: None)) == 1
        ledger.trim(4)
    assert len(portfolio.closed_trades) <= 8
    assert ledger.new_trades([], lambda _: None) == []
