"""One request for every hybrid run: the market it trades and the settings it trades with.

The walk-forward backtest
(:func:`~tradebrain.research.walk_forward_backtest.hybrid_backtest_report`), the ablation
(:func:`~tradebrain.research.ablation.run_ablation`), the stress scenarios
(:func:`~tradebrain.research.stress.run_stress`) and the bundle replay
(:func:`~tradebrain.research.bundle_replay.replay_with_bundle`) all take a :class:`HybridRequest`
plus their own few options. Commands, the demo and the benchmarks build it with
:meth:`HybridRequest.from_settings`, so one setting has one effect in every run; tests that
need no settings file build it directly (every setting then has its default).
:func:`backtest_config` is the simulation part alone, for a plain strategy's backtest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

from tradebrain.config import BrainSettings, RiskSettings, Settings
from tradebrain.engine.backtest import BacktestConfig, run_backtest
from tradebrain.exceptions import UserInputError

if TYPE_CHECKING:
    import polars as pl

    from tradebrain.brain.tuning import BrainTuning
    from tradebrain.engine.engine import EngineResult
    from tradebrain.engine.strategy import Strategy
    from tradebrain.risk.manager import RiskManager
    from tradebrain.strategies.agent_port import PositionAgent
    from tradebrain.strategies.hybrid import HybridSignals, HybridStrategy
    from tradebrain.strategies.hybrid_config import HybridConfig
    from tradebrain.strategies.hybrid_fast import FastHybridStrategy
# The strategies, the brain and its tuning load torch and numba kernels: they are imported
# where used, so that `backtest_config` (a plain strategy's backtest) starts quickly.


def backtest_config(settings: Settings, **fields: Any) -> BacktestConfig:
    """Return the simulation the settings ask for: their costs and exit management.

    ``fields`` are :class:`BacktestConfig` fields that override the settings' (``cash``,
    ``costs``, ``market``, ``leverage``, ``path``...).

    Raises
    ------
    UserInputError
        When the account is one no venue could hold (see :class:`BacktestConfig`).
    """
    from tradebrain.execution.costs import settings_costs
    from tradebrain.execution.monitor import MonitorRules

    chosen = {
        "costs": settings_costs(settings.execution),
        "monitor": MonitorRules.from_settings(settings.risk),
        **fields,
    }
    return BacktestConfig(**chosen)


def _default_hybrid() -> HybridConfig:
    from tradebrain.strategies.hybrid_config import HybridConfig

    return HybridConfig()


@dataclass(frozen=True)
class HybridRequest:
    """A hybrid run asked for: the market (candles, symbol, order flow, funding) and settings.

    Attributes
    ----------
    candles
        The candles the engine replays (candle schema, oldest first).
    symbol, timeframe
        The market the candles are of (``"BTC/USDT"``, ``"1h"``).
    orderflow
        The same candles with order-flow columns
        (:func:`~tradebrain.features.orderflow_columns`) when the feature sets read them;
        None: the features are computed from ``candles``.
    funding
        Funding-rate history the engine charges (perpetuals); None: no funding.
    backtest
        Cash, costs, market, leverage and exit management of the simulation.
    hybrid
        How the forecasts retrain walk-forward (segments, models, feature sets, horizons).
    risk, brain
        The risk manager's rules (a fresh manager per run) and the brain's settings.
    tuning
        The brain's thresholds; None: those of ``brain`` with the default costs and risk
        (:meth:`BrainTuning.from_settings`).
    agent
        An RL agent that scales or vetoes the brain's entries
        (:mod:`tradebrain.strategies.agent_port`); the run then decides with the Python brain
        (the compiled one has no agent port). None: the brain's targets as they are.
    """

    candles: pl.DataFrame
    symbol: str
    timeframe: str
    orderflow: pl.DataFrame | None = None
    funding: pl.DataFrame | None = None
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    hybrid: HybridConfig = field(default_factory=_default_hybrid)
    risk: RiskSettings = field(default_factory=RiskSettings)
    brain: BrainSettings = field(default_factory=BrainSettings)
    tuning: BrainTuning | None = None
    agent: PositionAgent | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        candles: pl.DataFrame,
        *,
        symbol: str,
        timeframe: str,
        orderflow: pl.DataFrame | None = None,
        funding: pl.DataFrame | None = None,
        hybrid: HybridConfig | None = None,
        backtest: BacktestConfig | None = None,
    ) -> HybridRequest:
        """Return the request the settings ask for on ``candles``.

        Parameters
        ----------
        settings
            Costs (``execution``), exit management and risk rules (``risk``), the brain and
            its tuning, and the walk-forward settings (``learning``, ``models``, ``features``).
        candles, symbol, timeframe, orderflow, funding
            The market (see the class).
        hybrid
            Walk-forward settings to use instead of ``HybridConfig.from_settings(settings)``
            (a command's flags folded in: ``tradebrain.cli._shared.hybrid_config``).
        backtest
            The simulation to use instead of ``backtest_config(settings)`` (another market,
            cash or leverage: ``backtest_config(settings, market=MarketType.PERP)``).
        """
        from tradebrain.brain.tuning import BrainTuning
        from tradebrain.strategies.hybrid_config import HybridConfig

        return cls(
            candles=candles,
            symbol=symbol,
            timeframe=timeframe,
            orderflow=orderflow,
            funding=funding,
            backtest=backtest if backtest is not None else backtest_config(settings),
            hybrid=hybrid if hybrid is not None else HybridConfig.from_settings(settings),
            risk=settings.risk,
            brain=settings.brain,
            tuning=BrainTuning.from_settings(settings),
        )

    @property
    def feature_candles(self) -> pl.DataFrame:
        """Return the table the features are computed from (with order flow when given)."""
        return self.candles if self.orderflow is None else self.orderflow

    @overload
    def strategy(
        self,
        signals: HybridSignals,
        *,
        disabled: tuple[str, ...] = (),
        compiled: Literal[True] = True,
    ) -> FastHybridStrategy: ...
    @overload
    def strategy(
        self, signals: HybridSignals, *, disabled: tuple[str, ...] = (), compiled: Literal[False]
    ) -> HybridStrategy: ...
    @overload
    def strategy(
        self, signals: HybridSignals, *, disabled: tuple[str, ...] = (), compiled: bool
    ) -> FastHybridStrategy | HybridStrategy: ...
    def strategy(
        self, signals: HybridSignals, *, disabled: tuple[str, ...] = (), compiled: bool = True
    ) -> FastHybridStrategy | HybridStrategy:
        """Return a fresh hybrid strategy deciding on ``signals`` with this request's brain.

        ``compiled`` picks the compiled brain (:class:`FastHybridStrategy`: the same decisions
        and trades as :class:`HybridStrategy`, parity-tested, about 35 times faster on a
        replay) over the Python brain (the live path's). ``disabled`` switches brain parts off.
        """
        from tradebrain.strategies.hybrid import HybridStrategy
        from tradebrain.strategies.hybrid_fast import FastHybridStrategy

        if not compiled:
            return HybridStrategy(
                signals, brain_settings=self.brain, disabled=disabled,
                market=self.backtest.market, tuning=self.tuning, agent=self.agent,
            )  # fmt: skip
        if self.agent is not None:
            raise UserInputError(
                "the compiled brain has no agent port: run a request with an RL agent with "
                "compiled=False (the Python brain)"
            )
        return FastHybridStrategy(
            signals, brain_settings=self.brain, disabled=disabled, market=self.backtest.market,
            tuning=self.tuning,
        )  # fmt: skip

    def risk_manager(self) -> RiskManager:
        """Return a fresh risk manager with this request's rules."""
        from tradebrain.risk.manager import RiskManager

        return RiskManager(self.risk)

    def replay(self, strategy: Strategy) -> EngineResult:
        """Run ``strategy`` over the candles (and funding) with a fresh risk manager."""
        return run_backtest(
            self.candles, strategy, self.backtest, symbol=self.symbol, timeframe=self.timeframe,
            funding=self.funding, risk=self.risk_manager(),
        )  # fmt: skip
