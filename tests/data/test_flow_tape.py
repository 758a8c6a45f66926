"""The flow tape: what the live inputs read is what the store gets, copies and stragglers out."""

from __future__ import annotations

from datetime import UTC, datetime

from tradebrain.data.flow_tape import BOOK_LEVELS, FlowTape
from tradebrain.data.schemas import Kind

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, ms


def _trade(trade_id: int, at_ms: int, amount: float = 1.0, side: str = "buy") -> dict[str, object]:
    return {"id": trade_id, "timestamp": at_ms, "price": 100.0, "amount": amount, "side": side}


def test_a_trade_seen_twice_is_kept_once_and_counted() -> None:
    tape = FlowTape(["BTC/USDT"], keep_ms=3_600_000)
    tape.add_trades("BTC/USDT", [_trade(1, T0 + 5), _trade(2, T0 + 6)])
    tape.add_trades("BTC/USDT", [_trade(2, T0 + 6), _trade(3, T0 + 7)])
    tape.seal("BTC/USDT", T0 + 60_000)
    trades, _, _ = tape.window("BTC/USDT")
    assert trades["id"].to_list() == ["1", "2", "3"]
    assert tape.counts()["duplicate_trades"] == 1


def test_a_trade_stamped_before_the_seal_that_arrives_after_it_is_dropped_from_both_readers() -> (
    None
):
    tape = FlowTape(["BTC/USDT"], keep_ms=3_600_000)
    tape.add_trades("BTC/USDT", [_trade(1, T0 + 5)])
    tape.seal("BTC/USDT", T0 + 60_000)
    tape.add_trades("BTC/USDT", [_trade(2, T0 + 59_999), _trade(3, T0 + 60_001)])
    window, _, _ = tape.window("BTC/USDT")
    stored = tape.flush()["BTC/USDT"][Kind.TRADES]
    assert window["id"].to_list() == stored["id"].to_list() == ["1"]  # 3 is not sealed yet
    assert tape.counts()["late_trades"] == 1


def test_trades_arriving_a_little_out_of_order_are_kept_in_time_order() -> None:
    tape = FlowTape(["BTC/USDT"], keep_ms=3_600_000)
    tape.add_trades("BTC/USDT", [_trade(1, T0 + 50), _trade(2, T0 + 10), _trade(3, T0 + 30)])
    tape.seal("BTC/USDT", T0 + 60_000)
    trades, _, _ = tape.window("BTC/USDT")
    assert trades["id"].to_list() == ["2", "3", "1"]


def test_a_book_snapshot_keeps_the_best_levels_and_the_store_gets_what_the_window_read() -> None:
    tape = FlowTape(["BTC/USDT"], keep_ms=3_600_000)
    bids = [[100.0 - i, 1.0 + i] for i in range(30)]
    asks = [[101.0 + i, 2.0 + i] for i in range(30)]
    tape.add_book("BTC/USDT", T0 + 1_000, bids, asks, update_id=7)
    tape.seal("BTC/USDT", T0 + 60_000)
    _, book, _ = tape.window("BTC/USDT")
    stored = tape.flush()["BTC/USDT"][Kind.BOOK]
    assert book.equals(stored)
    assert book.height == 2 * BOOK_LEVELS and book["is_snapshot"].all()
    assert book.filter(book["side"] == "bid")["price"].max() == 100.0
    assert set(book["update_id"]) == {7}


def test_funding_settles_when_the_next_time_appears_and_is_stamped_no_earlier_than_the_seal() -> (
    None
):
    tape = FlowTape(["BTC/USDT:USDT"], keep_ms=3_600_000)
    settles = T0 + 8 * 3_600_000
    tape.add_funding("BTC/USDT:USDT", 0.0001, settles)
    tape.add_funding("BTC/USDT:USDT", 0.0003, settles)  # the rate moves until it settles
    tape.seal("BTC/USDT:USDT", settles + 60_000)  # the candle closing after it was decided on
    tape.add_funding("BTC/USDT:USDT", 0.0002, settles + 8 * 3_600_000)
    tape.seal("BTC/USDT:USDT", settles + 120_000)
    _, _, funding = tape.window("BTC/USDT:USDT")
    assert funding["funding_rate"].to_list() == [0.0003]
    assert funding["timestamp"].to_list() == [
        datetime.fromtimestamp((settles + 60_000) / 1000, UTC)
    ]


def test_rows_a_failed_write_gave_back_are_written_next_time() -> None:
    tape = FlowTape(["BTC/USDT"], keep_ms=3_600_000)
    tape.add_trades("BTC/USDT", [_trade(1, T0 + 5)])
    tape.seal("BTC/USDT", T0 + 60_000)
    taken = tape.flush()
    tape.give_back(taken)
    tape.add_trades("BTC/USDT", [_trade(2, T0 + 60_005)])
    tape.seal("BTC/USDT", T0 + 120_000)
    again = tape.flush()["BTC/USDT"][Kind.TRADES]
    assert again["id"].to_list() == ["1", "2"]
    assert tape.flush() == {}


def test_rows_older_than_the_keep_window_leave_memory_but_not_before_they_are_flushed() -> None:
    tape = FlowTape(["BTC/USDT"], keep_ms=60_000)
    tape.add_trades("BTC/USDT", [_trade(1, T0 + 5)])
    tape.seal("BTC/USDT", T0 + 60_000)
    tape.seal("BTC/USDT", T0 + 180_000)
    trades, _, _ = tape.window("BTC/USDT")
    assert trades.height == 0
    assert tape.flush()["BTC/USDT"][Kind.TRADES]["id"].to_list() == ["1"]
