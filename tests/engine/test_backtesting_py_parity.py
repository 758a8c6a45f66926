"""Parity with a peer: sma_cross trades equal backtesting.py's on real BTC/USDT 1h candles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from builders import real_file

from tradebrain.data.importing import read_market_file
from tradebrain.engine.backtest import BacktestConfig, run_backtest
from tradebrain.execution.costs import FlatCosts
from tradebrain.strategies.builtin import SmaCross

backtesting = pytest.importorskip("backtesting", reason="backtesting.py is a dev dependency")
pd = pytest.importorskip("pandas")

COMMISSION = 0.001


def _peer_trades(frame: pd.DataFrame, fast: int, slow: int) -> pd.DataFrame:
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    def sma(values: np.ndarray, n: int) -> np.ndarray:
        return pd.Series(values).rolling(n).mean().to_numpy()

    class PeerSmaCross(Strategy):
        def init(self) -> None:
            self.fast_sma = self.I(sma, self.data.Close, fast)
            self.slow_sma = self.I(sma, self.data.Close, slow)

        def next(self) -> None:
            if crossover(self.fast_sma, self.slow_sma):
                self.buy(size=0.999)
            elif crossover(self.slow_sma, self.fast_sma):
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = FractionalBacktest(
            frame, PeerSmaCross, cash=10_000_000, commission=COMMISSION, trade_on_close=False
        )
        stats = test.run()
    return stats["_trades"]


@pytest.mark.parametrize(("fast", "slow"), [(10, 50), (20, 100)])
def test_sma_cross_trades_equal_backtesting_py_on_real_btc(fast: int, slow: int) -> None:
    path = real_file("marketlab__BTC_USDT__1h.parquet")
    candles = read_market_file(path, "candles").frame.drop("_row")
    peer_frame = (
        candles.to_pandas()
        .set_index("timestamp")
        .rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    )
    peer = _peer_trades(peer_frame, fast, slow)
    ours = run_backtest(
        candles,
        SmaCross(fast, slow),
        BacktestConfig(costs=FlatCosts(COMMISSION, 0.0)),
        symbol="BTC/USDT",
        timeframe="1h",
    )
    assert len(peer) > 50
    assert len(ours.trades) == len(peer)
    entry = [t.entry_time for t in ours.trades]
    exit_ = [t.exit_time for t in ours.trades]
    assert entry == [t.to_pydatetime() for t in peer["EntryTime"]]
    assert exit_ == [t.to_pydatetime() for t in peer["ExitTime"]]
    returns = np.array([t.pnl / (t.quantity * t.entry_price) for t in ours.trades])
    np.testing.assert_allclose(returns, peer["ReturnPct"].to_numpy(), rtol=1e-6, atol=0)
