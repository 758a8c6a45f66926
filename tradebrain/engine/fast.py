"""The array fast path: the simulated broker's rules for signal strategies, compiled with numba.

It runs a :class:`~tradebrain.engine.strategy.SignalStrategy` whose targets are known as an
array, with :class:`~tradebrain.execution.costs.FlatCosts`, the pass-through risk gate and no
protective stops, and reproduces what the event loop does with the same inputs, operation for
operation: market orders decided at candle ``t``'s close fill at candle ``t + 1``'s open
(exit first, then entry sized from equity at that open), funding settles on the open position
at each settlement with the last close as mark price, perps are liquidated at the
liquidation price, and equity is marked at every close. On a perp an entry's initial margin plus
its fee must fit in the equity (MARGIN: a larger entry is cut to fit), and a loss that takes the
account below zero leaves it at zero (BUST: the venue's insurance fund takes the rest, as with
isolated margin). A test runs both paths and requires identical trades and equity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

EXIT_SIGNAL = 0
EXIT_LIQUIDATION = 1
EXIT_REASONS = ("exit", "liquidation")


@dataclass(frozen=True)
class FastResult:
    """Curves and trades of a fast-path run; trade arrays are (k,), curves (n,)."""

    equity: np.ndarray
    exposure: np.ndarray
    entry_bar: np.ndarray
    exit_bar: np.ndarray
    side: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    quantity: np.ndarray
    pnl: np.ndarray
    fees: np.ndarray
    funding: np.ndarray
    exit_code: np.ndarray
    open_quantity: float
    fees_paid: float
    funding_paid: float


def run_fast(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    targets: np.ndarray,
    funding_bar: np.ndarray,
    funding_rate: np.ndarray,
    *,
    cash: float,
    fee_rate: float,
    slippage_bps: float,
    spot: bool,
    leverage: float,
    maintenance_margin: float,
) -> FastResult:
    """Simulate ``targets`` over the candles; see the module notes for the rules.

    Parameters
    ----------
    open_, high, low, close
        (n,) float64 candle prices.
    targets
        (n,) float64 target exposure decided at each close (NaN keeps the previous one).
    funding_bar, funding_rate
        (k,) settlements in time order: ``funding_bar[j]`` is the candle after whose close
        settlement ``j`` happens (-1: before the first close), ``funding_rate[j]`` its rate.
    """
    out = _simulate(
        open_, high, low, close, targets, funding_bar.astype(np.int64), funding_rate,
        cash, fee_rate, slippage_bps, spot, leverage if not spot else 1.0,
        maintenance_margin,
    )  # fmt: skip
    equity, exposure, trades, count, open_quantity, fees_paid, funding_paid = out
    t = trades[:count]
    return FastResult(
        equity=equity,
        exposure=exposure,
        entry_bar=t[:, 0].astype(np.int64),
        exit_bar=t[:, 1].astype(np.int64),
        side=t[:, 2].astype(np.int64),
        entry_price=t[:, 3].copy(),
        exit_price=t[:, 4].copy(),
        quantity=t[:, 5].copy(),
        pnl=t[:, 6].copy(),
        fees=t[:, 7].copy(),
        funding=t[:, 8].copy(),
        exit_code=t[:, 9].astype(np.int64),
        open_quantity=float(open_quantity),
        fees_paid=float(fees_paid),
        funding_paid=float(funding_paid),
    )


@numba.njit(cache=True)
def _fill_price(reference: float, sign: float, slippage_bps: float) -> float:  # pragma: no cover
    if slippage_bps == 0.0:
        return reference
    return reference * (1.0 + sign * slippage_bps * 1e-4)


@numba.njit(cache=True)
def _simulate(  # type: ignore[no-untyped-def]
    open_, high, low, close, targets, funding_bar, funding_rate,
    cash, fee_rate, slip, spot, leverage, maintenance_margin,
):  # fmt: skip  # pragma: no cover - jitted
    n = close.shape[0]
    equity = np.empty(n)
    exposure = np.empty(n)
    trades = np.empty((n + 1, 10))
    count = 0
    quantity = 0.0  # signed
    entry_price = 0.0
    entry_bar = -1
    entry_fees = 0.0
    funding_held = 0.0
    fees_paid = 0.0
    funding_paid = 0.0
    current = 0.0  # the target the strategy last set
    pending_exit = False
    pending_entry = 0.0  # signed fraction of equity to enter at the next open
    last_price = np.nan
    k = 0
    n_funding = funding_bar.shape[0]
    for i in range(n):
        while k < n_funding and funding_bar[k] < i:
            if quantity != 0.0 and last_price == last_price:
                payment = -quantity * last_price * funding_rate[k]
                cash += payment
                funding_held += payment
                funding_paid -= payment
            k += 1
        price_open = open_[i]
        if pending_exit and quantity != 0.0:
            side = 1.0 if quantity > 0 else -1.0
            closing = abs(quantity)
            price = _fill_price(price_open, -side, slip)
            fee = closing * price * fee_rate
            fees_paid += fee
            exit_fee = fee * closing / closing
            gross = side * closing * (price - entry_price)
            if spot:
                cash += closing * price - exit_fee
            else:
                cash = max(cash + gross - exit_fee, 0.0)  # a bust account ends at 0 (BUST)
            pnl = gross - entry_fees - exit_fee + funding_held
            trades[count, 0] = entry_bar
            trades[count, 1] = i
            trades[count, 2] = side
            trades[count, 3] = entry_price
            trades[count, 4] = price
            trades[count, 5] = closing
            trades[count, 6] = pnl
            trades[count, 7] = entry_fees + exit_fee
            trades[count, 8] = funding_held
            trades[count, 9] = 0
            count += 1
            quantity = 0.0
            entry_fees = 0.0
            funding_held = 0.0
        pending_exit = False
        if pending_entry != 0.0:
            sign = 1.0 if pending_entry > 0 else -1.0
            marked = cash
            if quantity != 0.0:
                if spot:
                    marked += quantity * price_open
                else:
                    marked += quantity * (price_open - entry_price)
            price = _fill_price(price_open, sign, slip)
            budget = abs(pending_entry) * marked * leverage
            size = budget / (price * (1.0 + fee_rate))
            if spot and sign > 0:
                affordable = cash / (price * (1.0 + fee_rate))
                size = min(size, affordable)
            elif not spot:  # initial margin plus the fee must fit in the equity (MARGIN)
                affordable = marked / (price * (1.0 / leverage + fee_rate))
                size = min(size, affordable)
            if size > 0 and quantity == 0.0:
                fee = size * price * fee_rate
                fees_paid += fee
                if spot:
                    cash -= sign * size * price + fee
                else:
                    cash -= fee
                quantity = sign * size
                entry_price = price
                entry_bar = i
                entry_fees = fee
                funding_held = 0.0
        pending_entry = 0.0
        if quantity != 0.0 and not spot:
            side = 1.0 if quantity > 0 else -1.0
            liquidation = entry_price * (1.0 - side * (1.0 / leverage - maintenance_margin))
            worst = low[i] if side > 0 else high[i]
            hit = side * (price_open - liquidation) <= 0 or side * (worst - liquidation) <= 0
            if hit:
                reference = price_open if side * (price_open - liquidation) <= 0 else liquidation
                closing = abs(quantity)
                price = _fill_price(reference, -side, slip)
                fee = closing * price * fee_rate
                fees_paid += fee
                exit_fee = fee * closing / closing
                gross = side * closing * (price - entry_price)
                cash = max(cash + gross - exit_fee, 0.0)  # BUST
                trades[count, 0] = entry_bar
                trades[count, 1] = i
                trades[count, 2] = side
                trades[count, 3] = entry_price
                trades[count, 4] = price
                trades[count, 5] = closing
                trades[count, 6] = gross - entry_fees - exit_fee + funding_held
                trades[count, 7] = entry_fees + exit_fee
                trades[count, 8] = funding_held
                trades[count, 9] = 1
                count += 1
                quantity = 0.0
                entry_fees = 0.0
                funding_held = 0.0
        price_close = close[i]
        last_price = price_close
        value = cash
        if quantity != 0.0:
            if spot:
                value += quantity * price_close
            else:
                value += quantity * (price_close - entry_price)
        equity[i] = value
        exposure[i] = quantity * price_close / value if value > 0 else 0.0
        target = targets[i]
        if target == target and target != current:
            if current != 0.0:
                pending_exit = True
            pending_entry = target
            current = target
    return equity, exposure, trades, count, quantity, fees_paid, funding_paid
