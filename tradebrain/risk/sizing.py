"""Position sizing: fixed fraction of equity at risk, margin and leverage caps, and Kelly.

The size of an entry is the smallest of:

- **risk** — ``risk_fraction × equity / |entry − stop|``: losing at the stop costs at most the
  fraction of equity at risk (5 % by default, cut further by Kelly, defensive mode and poor
  symbol performance — every factor is <= 1);
- **margin cap** — margin of the whole position in the symbol <= ``margin_cap × equity``
  (100 %), margin being notional / leverage (notional itself on spot);
- **leverage cap** — gross notional of every open position plus this order <=
  ``leverage_cap × equity`` (3×);
- **cash** — on spot, the order's notional <= free cash (no borrowing);
- **requested** — the quantity the strategy asked for, when it asked for one;
- **volume** — optional: ``max_participation × bar volume`` (off by default), so an order never
  dwarfs the market it trades in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tradebrain.config import RiskSettings
from tradebrain.execution.account import ClosedTrade


@dataclass(frozen=True, slots=True)
class SizingRules:
    """Numbers of the sizing rules; build from the settings with :meth:`from_settings`.

    Attributes
    ----------
    risk_per_trade
        Fraction of equity lost if the stop is hit (0.02 = 2 %).
    stop_atr_multiple
        Stop distance in ATRs when the strategy gives no stop.
    take_profit
        Whether risk gives an entry without a target one at ``reward_risk`` stop distances;
        off, a position is closed by the strategy (or its stop), not at a fixed target.
    reward_risk
        Target distance / stop distance in a neutral regime.
    trend_reward_factor, range_reward_factor
        Multipliers of ``reward_risk`` in trends (let winners run) and ranges (take profit
        before the range turns).
    margin_cap
        Margin of one position / equity.
    leverage_cap
        Gross notional of all positions / equity; also the highest leverage a perp may use.
    kelly_fraction
        Share of the full Kelly bet used (0.5 = half Kelly).
    kelly_min_trades
        Closed trades with a known R-multiple needed before Kelly sizing starts; None: never
        (``risk.kelly_from_trades`` off, the default: the brain sizes by its forecast).
    kelly_lookback
        Kelly reads only the latest this many closed trades, so it follows a changing edge.
    max_participation
        Largest order as a share of the bar's volume (0.1 = 10 %); None for no volume cap.
    """

    risk_per_trade: float = 0.05
    stop_atr_multiple: float = 6.0
    take_profit: bool = False
    reward_risk: float = 2.0
    trend_reward_factor: float = 1.5
    range_reward_factor: float = 0.75
    margin_cap: float = 1.0
    leverage_cap: float = 3.0
    kelly_fraction: float = 0.5
    kelly_min_trades: int | None = 20
    kelly_lookback: int = 200
    max_participation: float | None = None

    @classmethod
    def from_settings(cls, settings: RiskSettings) -> SizingRules:
        """Return the rules set by the ``risk`` section of the settings."""
        return cls(
            risk_per_trade=settings.risk_per_trade,
            stop_atr_multiple=settings.stop_atr_multiple,
            take_profit=settings.take_profit,
            reward_risk=settings.reward_risk,
            margin_cap=settings.margin_cap,
            leverage_cap=settings.leverage_cap,
            kelly_fraction=settings.kelly_fraction,
            kelly_min_trades=settings.kelly_min_trades if settings.kelly_from_trades else None,
        )


@dataclass(frozen=True, slots=True)
class KellyEstimate:
    """Kelly sizing from closed trades.

    Attributes
    ----------
    trades
        Closed trades with a finite R-multiple that went into the estimate.
    win_rate
        Share of those trades with R > 0.
    payoff_ratio
        Average winning R / average losing |R| (inf when nothing lost).
    full_kelly
        Kelly fraction of equity to risk per trade, ``p − (1 − p) / b``; may be negative.
    risk_fraction
        Fraction of equity to risk after the Kelly share and the fixed-fraction cap;
        0 when the edge is not positive (no trade).
    """

    trades: int
    win_rate: float
    payoff_ratio: float
    full_kelly: float
    risk_fraction: float

    def describe(self) -> str:
        """Return the estimate in words."""
        return (
            f"Kelly over {self.trades} trades: win rate {self.win_rate:.0%}, "
            f"payoff {self.payoff_ratio:.2f}R, full Kelly {self.full_kelly:.2%}, "
            f"risk {self.risk_fraction:.2%} of equity"
        )


def kelly_estimate(trades: Sequence[ClosedTrade], rules: SizingRules) -> KellyEstimate | None:
    """Return Kelly sizing from the latest trades' R-multiples, or None below the minimum.

    Reads the last ``kelly_lookback`` trades; trades without a finite R-multiple are skipped.

    The risk fraction is ``kelly_fraction × full Kelly``, never above ``risk_per_trade`` and
    never below 0 (a losing record means no trade, not a short bet on one's own system).
    """
    if rules.kelly_min_trades is None:
        return None
    latest = trades[-rules.kelly_lookback :]
    r_multiples = [t.r_multiple for t in latest if math.isfinite(t.r_multiple)]
    if len(r_multiples) < rules.kelly_min_trades:
        return None
    wins = [r for r in r_multiples if r > 0]
    losses = [-r for r in r_multiples if r <= 0]
    win_rate = len(wins) / len(r_multiples)
    average_win = sum(wins) / len(wins) if wins else 0.0
    average_loss = sum(losses) / len(losses) if losses else 0.0
    if not wins:
        payoff, full_kelly = 0.0, -1.0
    elif average_loss <= 0.0:
        payoff, full_kelly = math.inf, win_rate
    else:
        payoff = average_win / average_loss
        full_kelly = win_rate - (1.0 - win_rate) / payoff
    risk_fraction = min(rules.risk_per_trade, max(0.0, rules.kelly_fraction * full_kelly))
    return KellyEstimate(len(r_multiples), win_rate, payoff, full_kelly, risk_fraction)


@dataclass(frozen=True, slots=True)
class PositionSize:
    """The size of an entry and which limit decided it.

    Attributes
    ----------
    quantity
        Base units to buy or sell, >= 0.
    risk_amount
        Quote currency lost if the stop is hit: ``quantity × |entry − stop|``.
    notional
        ``quantity × entry``, quote currency.
    margin
        Margin this order adds: ``notional / leverage``.
    binding
        The limit that set the size: ``"risk"``, ``"margin cap"``, ``"leverage cap"``,
        ``"cash"``, ``"requested"`` or ``"volume"``.
    limits
        Every limit as the largest quantity it allows, by name.
    """

    quantity: float
    risk_amount: float
    notional: float
    margin: float
    binding: str
    limits: dict[str, float]


def size_entry(
    *,
    equity: float,
    entry_price: float,
    stop_price: float,
    risk_fraction: float,
    rules: SizingRules,
    leverage: float = 1.0,
    symbol_margin: float = 0.0,
    gross_notional: float = 0.0,
    cash: float | None = None,
    requested_quantity: float = 0.0,
    volume: float = 0.0,
) -> PositionSize:
    """Return the largest quantity every limit allows (see the module docstring).

    Parameters
    ----------
    equity
        Account equity, quote currency, > 0.
    entry_price, stop_price
        Quote per base unit; the stop must differ from the entry.
    risk_fraction
        Fraction of equity at risk, already cut by every factor; <= ``rules.risk_per_trade``.
    leverage
        Leverage of the position (1 on spot), capped at ``rules.leverage_cap``.
    symbol_margin
        Margin already held in this symbol, quote currency.
    gross_notional
        Notional of every open position, quote currency.
    cash
        Free cash for spot orders; None when the order may use margin.
    requested_quantity
        What the strategy asked for in base units; 0 lets risk choose.
    volume
        Recent bar volume in base units, for ``rules.max_participation`` (0: unknown, no cap).
    """
    leverage = max(1.0, min(leverage, rules.leverage_cap))
    stop_distance = abs(entry_price - stop_price)
    risk_fraction = min(risk_fraction, rules.risk_per_trade)
    limits = {
        "risk": risk_fraction * equity / stop_distance,
        "margin cap": (rules.margin_cap * equity - symbol_margin) * leverage / entry_price,
        "leverage cap": (rules.leverage_cap * equity - gross_notional) / entry_price,
    }
    if cash is not None:
        limits["cash"] = cash / entry_price
    if requested_quantity > 0:
        limits["requested"] = requested_quantity
    if rules.max_participation is not None and volume > 0:
        limits["volume"] = rules.max_participation * volume
    binding = min(limits, key=lambda name: limits[name])
    # A hair under every limit, so float rounding never lands a size just above a cap.
    quantity = max(0.0, limits[binding] * (1.0 - 1e-9))
    notional = quantity * entry_price
    return PositionSize(
        quantity=quantity,
        risk_amount=quantity * stop_distance,
        notional=notional,
        margin=notional / leverage,
        binding=binding,
        limits=limits,
    )
