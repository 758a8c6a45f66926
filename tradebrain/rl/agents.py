"""Three agents that scale or veto the brain's entries, trained on :class:`TradingEnv`.

Each follows the :class:`~tradebrain.strategies.agent_port.PositionAgent` port (``name`` and
``adjust(view) -> multiplier``) and the house's model contract: ``__init__`` only stores
hyper-parameters, ``train(make_env, seed=..., steps=...)`` learns and returns the agent (a new
``train`` forgets the last), learned state ends in ``_``, and ``save(folder)`` / ``load(folder)``
round-trip it without pickling code:

- :class:`QTableSizer` (``q_sizing``): tabular Q-learning over a small readable state — the
  regime x the brain's edge in round trips x the drawdown — picking one of
  :data:`~tradebrain.rl.env.MULTIPLIERS`; a state never visited answers 1 (the plain rule).
- :class:`DQNVeto` (``dqn_veto``): stable-baselines3's DQN approves (x1) or vetoes (x0).
- :class:`PPOSizer` (``ppo_sizing``): stable-baselines3's PPO answers a size in [0, 2].

The two networks are trained with stable-baselines3 and torch on one CPU thread, then copied
into numpy (:class:`NumpyNetwork`): ``adjust`` is a numpy forward pass of a few microseconds
and needs neither torch nor stable-baselines3, which are imported only by ``train``.

A saved agent is a folder::

    manifest.json   the agent's ``name``, the format, its hyper-parameters, how it was trained
                    (seed, steps, the segment's bars and the open times of its first and last
                    candle: ``trained_from``, ``trained_until``), the file list (written last:
                    a folder with a manifest is complete)
    weights.npz     the Q-table and its visit counts, or the network's layers
                    (``weight_0``, ``bias_0``, ...; weights (in, out) float32) and the
                    observation's clip bounds
    sb3_model.zip   the stable-baselines3 model beside it, when it was trained in this process
                    (to resume training elsewhere; inference never reads it)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Self

import numpy as np
import polars as pl

from tradebrain.core.atomic_write import write_atomic, write_text_atomic
from tradebrain.core.events import to_datetime
from tradebrain.exceptions import UserInputError
from tradebrain.rl.env import (
    MAX_MULTIPLIER,
    MULTIPLIERS,
    OBSERVATION_HIGH,
    OBSERVATION_LOW,
    AgentKind,
    TradingEnv,
)
from tradebrain.strategies.agent_port import REGIMES, VIEW_SIZE, AgentView

if TYPE_CHECKING:
    from torch import nn

MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "weights.npz"
SB3_FILE = "sb3_model.zip"
FORMAT = 1

EDGE_BOUNDS = (1.0, 2.0, 4.0)
"""Edges (round trips of cost, absolute) that split the Q-table's edge buckets."""
EDGE_LABELS = ("<1", "1-2", "2-4", ">4")
DRAWDOWN_BOUNDS = (0.02, 0.05, 0.10)
"""Drawdowns from the equity peak that split the Q-table's drawdown buckets."""
DRAWDOWN_LABELS = ("<2%", "2-5%", "5-10%", ">10%")
N_STATES = len(REGIMES) * len(EDGE_LABELS) * len(DRAWDOWN_LABELS)

Activation = Literal["relu", "tanh"]
MakeEnv = Callable[[], TradingEnv]


@dataclass(frozen=True)
class NumpyNetwork:
    """A small fully connected network, as numpy arrays, for inference without torch.

    Attributes
    ----------
    weights, biases
        One (in, out) float32 matrix and (out,) float32 vector per layer.
    activation
        Between layers (none after the last).
    low, high
        (VIEW_SIZE,) float32 bounds the observation is clipped to, as the env clipped it.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: Activation
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of_layers(cls, layers: Sequence[nn.Linear], activation: Activation) -> NumpyNetwork:
        """Copy torch ``Linear`` layers (applied in order) into numpy."""
        weights = tuple(
            np.ascontiguousarray(layer.weight.detach().cpu().numpy().T) for layer in layers
        )
        biases = tuple(layer.bias.detach().cpu().numpy().copy() for layer in layers)
        return cls(weights, biases, activation, OBSERVATION_LOW.copy(), OBSERVATION_HIGH.copy())

    def observe(self, view: AgentView) -> np.ndarray:
        """Return ``view`` as the (VIEW_SIZE,) float32 observation the network was trained on."""
        features = np.asarray(view.features(), dtype=np.float32)
        clipped: np.ndarray = np.minimum(np.maximum(features, self.low), self.high)
        return clipped

    def forward(self, observation: np.ndarray) -> np.ndarray:
        """Return the network's output for one (VIEW_SIZE,) float32 observation."""
        x = observation
        last = len(self.weights) - 1
        relu = self.activation == "relu"
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = x @ weight + bias
            if i < last:
                x = np.maximum(x, 0.0, dtype=np.float32) if relu else np.tanh(x)
        return x

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays to store (see the module's folder layout)."""
        arrays = {"observation_low": self.low, "observation_high": self.high}
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"weight_{i}"], arrays[f"bias_{i}"] = weight, bias
        return arrays

    @classmethod
    def of_arrays(cls, arrays: dict[str, np.ndarray], activation: Activation) -> NumpyNetwork:
        """Rebuild a network from :meth:`arrays`."""
        count = sum(1 for name in arrays if name.startswith("weight_"))
        weights = tuple(arrays[f"weight_{i}"].astype(np.float32) for i in range(count))
        biases = tuple(arrays[f"bias_{i}"].astype(np.float32) for i in range(count))
        low = arrays["observation_low"].astype(np.float32)
        high = arrays["observation_high"].astype(np.float32)
        if not weights or weights[0].shape[0] != VIEW_SIZE or low.shape != (VIEW_SIZE,):
            raise UserInputError(
                f"the stored network reads {weights[0].shape[0] if weights else 0} numbers; "
                f"an agent's view has {VIEW_SIZE}: retrain the agent with this version"
            )
        return cls(weights, biases, activation, low, high)


class QTableSizer:
    """Tabular Q-learning of the multiplier of the brain's new exposure (``q_sizing``).

    The state is the regime x the brain's edge bucket (absolute, in round trips of cost:
    :data:`EDGE_LABELS`) x the drawdown bucket (:data:`DRAWDOWN_LABELS`); the actions are
    :data:`~tradebrain.rl.env.MULTIPLIERS`. The greedy choice only considers multipliers tried
    in the state; a state never visited answers 1 (the plain rule).

    Parameters
    ----------
    learning_rate
        Step of each Q update, in (0, 1].
    gamma
        Discount between one entry and the next.
    epsilon, epsilon_final
        Exploration: the chance of a random multiplier, decayed linearly from ``epsilon`` to
        ``epsilon_final`` over the training steps.
    """

    name = "q_sizing"

    def __init__(
        self,
        *,
        learning_rate: float = 0.1,
        gamma: float = 0.9,
        epsilon: float = 0.3,
        epsilon_final: float = 0.05,
    ) -> None:
        self.learning_rate = learning_rate
        self.gamma = gamma
        self.epsilon = epsilon
        self.epsilon_final = epsilon_final
        self.q_: np.ndarray | None = None  # (N_STATES, len(MULTIPLIERS)) float64
        self.tries_: np.ndarray | None = None  # (N_STATES, len(MULTIPLIERS)) int64
        self.training_: dict[str, Any] = {}
        self._chosen: list[float] = []

    def params(self) -> dict[str, Any]:
        """Return the hyper-parameters given to ``__init__``."""
        return {
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "epsilon": self.epsilon,
            "epsilon_final": self.epsilon_final,
        }

    def train(self, make_env: MakeEnv, *, seed: int, steps: int) -> Self:
        """Learn the table over ``steps`` entries of ``make_env()`` (a ``qsizing`` env).

        Exploration draws from ``numpy.random.default_rng(seed)``: the same seed and env give
        the same table.
        """
        env, observation, _ = _started_env(make_env, "qsizing", self.name, seed)
        rng = np.random.default_rng(seed)
        q = np.zeros((N_STATES, len(MULTIPLIERS)))
        tries = np.zeros((N_STATES, len(MULTIPLIERS)), dtype=np.int64)
        self.q_, self.tries_ = q, tries
        state = state_of_observation(observation)
        for step in range(steps):
            share = step / max(steps - 1, 1)
            epsilon = self.epsilon + (self.epsilon_final - self.epsilon) * share
            explore = rng.random() < epsilon
            action = int(rng.integers(len(MULTIPLIERS))) if explore else self._greedy(state)
            observation, reward, terminated, truncated, _ = env.step(action)
            value = 0.0
            following = state_of_observation(observation)
            if not terminated:
                tried = tries[following] > 0
                value = float(q[following][tried].max()) if tried.any() else 0.0
            target = float(reward) + self.gamma * value
            q[state, action] += self.learning_rate * (target - q[state, action])
            tries[state, action] += 1
            state = following
            if terminated or truncated:
                observation, _ = env.reset()
                state = state_of_observation(observation)
        self._chosen = [MULTIPLIERS[self._greedy(s)] for s in range(N_STATES)]
        self.training_ = _training(env, seed=seed, steps=steps)
        return self

    def adjust(self, view: AgentView) -> float:
        """Return the multiplier the table chooses for ``view``'s state (1 where unvisited)."""
        if not self._chosen:
            raise _not_trained(self.name)
        return self._chosen[state_index(view.regime_index, view.edge, view.drawdown)]

    def table(self) -> pl.DataFrame:
        """Return one row per visited state: its labels, visits, each multiplier's Q, choice.

        ``q_0``, ``q_0.5``, ... are null for a multiplier never tried in the state.
        """
        q, tries = self._learned()
        visits = tries.sum(axis=1)
        rows = np.flatnonzero(visits > 0)
        labels = [state_labels(int(s)) for s in rows]
        columns: dict[str, Any] = {
            "regime": [r for r, _, _ in labels],
            "edge": [e for _, e, _ in labels],
            "drawdown": [d for _, _, d in labels],
            "visits": visits[rows].astype(np.int64),
        }
        for a, multiplier in enumerate(MULTIPLIERS):
            columns[f"q_{multiplier:g}"] = pl.Series(
                [float(q[s, a]) if tries[s, a] > 0 else None for s in rows], dtype=pl.Float64
            )
        columns["chosen"] = pl.Series([self._chosen[s] for s in rows], dtype=pl.Float64)
        return pl.DataFrame(columns)

    def save(self, folder: Path | str) -> Path:
        """Write the table to ``folder`` (see the module); return the folder."""
        q, tries = self._learned()
        manifest = {
            "multipliers": list(MULTIPLIERS),
            "regimes": list(REGIMES),
            "edge_bounds": list(EDGE_BOUNDS),
            "drawdown_bounds": list(DRAWDOWN_BOUNDS),
        }
        return _write_agent(Path(folder), self, {"q": q, "tries": tries}, manifest, None)

    @classmethod
    def load(cls, folder: Path | str) -> QTableSizer:
        """Read a table :meth:`save` wrote."""
        arrays, manifest = _read_agent(Path(folder), cls.name)
        shape = (N_STATES, len(MULTIPLIERS))
        if (
            manifest.get("multipliers") != list(MULTIPLIERS)
            or manifest.get("regimes") != list(REGIMES)
            or arrays["q"].shape != shape
        ):
            raise UserInputError(
                f"{folder} holds a Q-table over other states or multipliers than this version's "
                f"{shape}; retrain it"
            )
        agent = cls(**manifest["params"])
        agent.q_, agent.tries_ = arrays["q"].astype(np.float64), arrays["tries"].astype(np.int64)
        agent.training_ = manifest["training"]
        agent._chosen = [MULTIPLIERS[agent._greedy(s)] for s in range(N_STATES)]
        return agent

    def _greedy(self, state: int) -> int:
        """The best multiplier tried in ``state``; 1 (the plain rule) when none was tried."""
        q, tries = self._learned()
        tried = np.flatnonzero(tries[state] > 0)
        if tried.size == 0:
            return MULTIPLIERS.index(1.0)
        best = q[state, tried].max()
        ties = [int(a) for a in tried if q[state, a] == best]
        return min(ties, key=lambda a: abs(MULTIPLIERS[a] - 1.0))  # a tie keeps nearest to 1

    def _learned(self) -> tuple[np.ndarray, np.ndarray]:
        if self.q_ is None or self.tries_ is None:
            raise _not_trained(self.name)
        return self.q_, self.tries_


def state_index(regime_index: int, edge: float, drawdown: float) -> int:
    """Return the Q-table's state of a view: regime x edge bucket x drawdown bucket."""
    edge = abs(edge) if math.isfinite(edge) else 0.0
    edge_bucket = sum(edge >= bound for bound in EDGE_BOUNDS)
    drawdown_bucket = sum(drawdown >= bound for bound in DRAWDOWN_BOUNDS)
    regime = regime_index if 0 <= regime_index < len(REGIMES) else len(REGIMES) - 1
    return (regime * len(EDGE_LABELS) + edge_bucket) * len(DRAWDOWN_LABELS) + drawdown_bucket


def state_of_observation(observation: np.ndarray) -> int:
    """Return the state of an env observation (:func:`~tradebrain.rl.env.observation`)."""
    one_hot = observation[6 : 6 + len(REGIMES)]
    regime = int(np.argmax(one_hot)) if one_hot.max() > 0 else len(REGIMES) - 1
    return state_index(regime, float(observation[2]), float(observation[4]))


def state_labels(state: int) -> tuple[str, str, str]:
    """Return the regime, edge and drawdown labels of a Q-table state."""
    rest, drawdown = divmod(state, len(DRAWDOWN_LABELS))
    regime, edge = divmod(rest, len(EDGE_LABELS))
    return REGIMES[regime], EDGE_LABELS[edge], DRAWDOWN_LABELS[drawdown]


class DQNVeto:
    """stable-baselines3's DQN that approves (x1) or vetoes (x0) each entry (``dqn_veto``).

    Parameters
    ----------
    net_arch
        Hidden layer widths of the Q-network (ReLU between layers).
    learning_rate, buffer_size, learning_starts, batch_size, gamma, train_freq,
    target_update_interval, exploration_fraction, exploration_final_eps
        As for ``stable_baselines3.DQN`` (``gamma`` discounts from one entry to the next).
    """

    name = "dqn_veto"

    def __init__(
        self,
        *,
        net_arch: tuple[int, ...] = (32, 32),
        learning_rate: float = 1e-3,
        buffer_size: int = 10_000,
        learning_starts: int = 50,
        batch_size: int = 32,
        gamma: float = 0.9,
        train_freq: int = 4,
        target_update_interval: int = 100,
        exploration_fraction: float = 0.5,
        exploration_final_eps: float = 0.05,
    ) -> None:
        self.net_arch = net_arch
        self.learning_rate = learning_rate
        self.buffer_size = buffer_size
        self.learning_starts = learning_starts
        self.batch_size = batch_size
        self.gamma = gamma
        self.train_freq = train_freq
        self.target_update_interval = target_update_interval
        self.exploration_fraction = exploration_fraction
        self.exploration_final_eps = exploration_final_eps
        self.network_: NumpyNetwork | None = None
        self.model_: Any = None  # the stable-baselines3 model, when trained in this process
        self.training_: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        """Return the hyper-parameters given to ``__init__``."""
        return {
            "net_arch": list(self.net_arch),
            "learning_rate": self.learning_rate,
            "buffer_size": self.buffer_size,
            "learning_starts": self.learning_starts,
            "batch_size": self.batch_size,
            "gamma": self.gamma,
            "train_freq": self.train_freq,
            "target_update_interval": self.target_update_interval,
            "exploration_fraction": self.exploration_fraction,
            "exploration_final_eps": self.exploration_final_eps,
        }

    def train(self, make_env: MakeEnv, *, seed: int, steps: int) -> Self:
        """Learn over ``steps`` entries of ``make_env()`` (a ``veto`` env), on one CPU thread.

        On CPU with one thread, the same seed and env give the same weights.
        """
        from stable_baselines3 import DQN

        env, _, _ = _started_env(make_env, "veto", self.name, seed)
        with _one_torch_thread():
            model = DQN(
                "MlpPolicy", env, learning_rate=self.learning_rate, buffer_size=self.buffer_size,
                learning_starts=self.learning_starts, batch_size=self.batch_size,
                gamma=self.gamma, train_freq=self.train_freq,
                target_update_interval=self.target_update_interval,
                exploration_fraction=self.exploration_fraction,
                exploration_final_eps=self.exploration_final_eps,
                policy_kwargs={"net_arch": list(self.net_arch)}, seed=seed, device="cpu",
                verbose=0,
            )  # fmt: skip
            model.learn(total_timesteps=steps)
        self.model_ = model
        self.network_ = NumpyNetwork.of_layers(_linear_layers(model.q_net.q_net), "relu")
        self.training_ = _training(env, seed=seed, steps=steps)
        return self

    def q_values(self, view: AgentView) -> np.ndarray:
        """Return the (2,) Q-values of approving and vetoing ``view``'s entry."""
        network = self._network()
        return network.forward(network.observe(view))

    def adjust(self, view: AgentView) -> float:
        """Return 1 (approve) or 0 (veto): the action with the higher Q-value."""
        network = self._network()
        q = network.forward(network.observe(view))
        return 0.0 if q[1] > q[0] else 1.0  # a tie approves, as torch's argmax picks 0

    def save(self, folder: Path | str) -> Path:
        """Write the network (and the stable-baselines3 model, if any) to ``folder``."""
        network = self._network()
        return _write_agent(Path(folder), self, network.arrays(), {"activation": "relu"},
                            self.model_)  # fmt: skip

    @classmethod
    def load(cls, folder: Path | str) -> DQNVeto:
        """Read an agent :meth:`save` wrote (the numpy network only: no stable-baselines3)."""
        arrays, manifest = _read_agent(Path(folder), cls.name)
        params = dict(manifest["params"], net_arch=tuple(manifest["params"]["net_arch"]))
        agent = cls(**params)
        agent.network_ = NumpyNetwork.of_arrays(arrays, "relu")
        agent.training_ = manifest["training"]
        return agent

    def _network(self) -> NumpyNetwork:
        if self.network_ is None:
            raise _not_trained(self.name)
        return self.network_


class PPOSizer:
    """stable-baselines3's PPO answering the multiplier of each entry in [0, 2] (``ppo_sizing``).

    The policy's mean starts at 1 (the plain rule: its output bias is set to 1 before
    training), so exploration starts around the brain's own size. Inference is the
    deterministic policy: the mean, clipped to [0, 2].

    Parameters
    ----------
    net_arch
        Hidden layer widths of the policy and of the value network (tanh between layers).
    n_steps
        Entries per rollout; None: the entries of one episode (counted once, with the
        neutral action), at least 8.
    learning_rate, n_epochs, gamma, gae_lambda, clip_range, ent_coef, log_std_init
        As for ``stable_baselines3.PPO`` (one minibatch per rollout).
    """

    name = "ppo_sizing"
    MIN_ROLLOUT = 8

    def __init__(
        self,
        *,
        net_arch: tuple[int, ...] = (32, 32),
        n_steps: int | None = None,
        learning_rate: float = 3e-4,
        n_epochs: int = 5,
        gamma: float = 0.9,
        gae_lambda: float = 0.95,
        clip_range: float = 0.2,
        ent_coef: float = 0.0,
        log_std_init: float = -0.5,
    ) -> None:
        self.net_arch = net_arch
        self.n_steps = n_steps
        self.learning_rate = learning_rate
        self.n_epochs = n_epochs
        self.gamma = gamma
        self.gae_lambda = gae_lambda
        self.clip_range = clip_range
        self.ent_coef = ent_coef
        self.log_std_init = log_std_init
        self.network_: NumpyNetwork | None = None
        self.model_: Any = None  # the stable-baselines3 model, when trained in this process
        self.training_: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        """Return the hyper-parameters given to ``__init__``."""
        return {
            "net_arch": list(self.net_arch),
            "n_steps": self.n_steps,
            "learning_rate": self.learning_rate,
            "n_epochs": self.n_epochs,
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "clip_range": self.clip_range,
            "ent_coef": self.ent_coef,
            "log_std_init": self.log_std_init,
        }

    def train(self, make_env: MakeEnv, *, seed: int, steps: int) -> Self:
        """Learn over ``steps`` entries of ``make_env()`` (a ``sizing`` env), on one CPU thread.

        ``steps`` is rounded up to whole rollouts. On CPU with one thread, the same seed and
        env give the same weights.
        """
        import torch
        from stable_baselines3 import PPO

        env, _, _ = _started_env(make_env, "sizing", self.name, seed)
        n_steps = self.n_steps or max(self.MIN_ROLLOUT, _entries_per_episode(env))
        arch = list(self.net_arch)
        with _one_torch_thread():
            model = PPO(
                "MlpPolicy", env, n_steps=n_steps, batch_size=n_steps, n_epochs=self.n_epochs,
                learning_rate=self.learning_rate, gamma=self.gamma, gae_lambda=self.gae_lambda,
                clip_range=self.clip_range, ent_coef=self.ent_coef,
                policy_kwargs={"net_arch": {"pi": arch, "vf": arch},
                               "log_std_init": self.log_std_init},
                seed=seed, device="cpu", verbose=0,
            )  # fmt: skip
            policy = model.policy
            with torch.no_grad():
                for layer in _linear_layers(policy.action_net):
                    layer.bias.fill_(1.0)  # the mean starts at the plain rule's multiplier
            model.learn(total_timesteps=steps)
        self.model_ = model
        layers = [
            *_linear_layers(policy.mlp_extractor.policy_net),
            *_linear_layers(policy.action_net),
        ]
        self.network_ = NumpyNetwork.of_layers(layers, "tanh")
        self.training_ = _training(env, seed=seed, steps=steps, n_steps=n_steps)
        return self

    def adjust(self, view: AgentView) -> float:
        """Return the policy's mean multiplier for ``view``, clipped to [0, 2]."""
        network = self.network_
        if network is None:
            raise _not_trained(self.name)
        mean = float(network.forward(network.observe(view))[0])
        return min(max(mean, 0.0), MAX_MULTIPLIER) if math.isfinite(mean) else 1.0

    def save(self, folder: Path | str) -> Path:
        """Write the policy network (and the stable-baselines3 model, if any) to ``folder``."""
        if self.network_ is None:
            raise _not_trained(self.name)
        return _write_agent(Path(folder), self, self.network_.arrays(),
                            {"activation": "tanh"}, self.model_)  # fmt: skip

    @classmethod
    def load(cls, folder: Path | str) -> PPOSizer:
        """Read an agent :meth:`save` wrote (the numpy network only: no stable-baselines3)."""
        arrays, manifest = _read_agent(Path(folder), cls.name)
        params = dict(manifest["params"], net_arch=tuple(manifest["params"]["net_arch"]))
        agent = cls(**params)
        agent.network_ = NumpyNetwork.of_arrays(arrays, "tanh")
        agent.training_ = manifest["training"]
        return agent


Agent = QTableSizer | DQNVeto | PPOSizer


def _started_env(
    make_env: MakeEnv, kind: AgentKind, name: str, seed: int
) -> tuple[TradingEnv, np.ndarray, dict[str, Any]]:
    """Build the env, check its kind, reset it and check that the brain enters at all."""
    env = make_env()
    if env.kind != kind:
        raise UserInputError(f"{name} trains on a {kind!r} env; make_env built a {env.kind!r} one")
    observation, info = env.reset(seed=seed)
    if not info["waiting"]:
        raise NothingToLearnError(
            f"the brain never enters in bars [{env.start}, {env.end}): {name} has nothing to "
            "learn from; train on a longer segment, or one its models vote on"
        )
    return env, observation, info


def _training(env: TradingEnv, **recorded: Any) -> dict[str, Any]:
    """Return how an agent was trained: ``recorded``, the segment's bars and candle times.

    ``segment`` is ``[start, end)`` in bars of the env's candles; ``trained_from`` and
    ``trained_until`` are the open times (the candles' ``timestamp``, ISO 8601, UTC) of its
    first and last candle, so an agent is never judged on candles it learned from
    (:class:`~tradebrain.research.ablation.DormantUntil`). Manifests saved before these two
    keys existed load without them.
    """
    times = env.engine.context.history  # the segment's candles, as the env replays them
    if times is None:
        raise RuntimeError(f"the env holds no candles of its segment [{env.start}, {env.end})")
    return {
        **recorded,
        "segment": [env.start, env.end],
        "trained_from": to_datetime(int(times.open_time[0])).isoformat(),
        "trained_until": to_datetime(int(times.open_time[-1])).isoformat(),
    }


class NothingToLearnError(UserInputError):
    """The training segment holds no entry of the brain: an agent has nothing to learn from."""


def _entries_per_episode(env: TradingEnv) -> int:
    """Count the entries of one episode stepped with the neutral action."""
    env.reset()
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(env.neutral_action())
    return env.entries


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (training fits on two cores, reproducibly)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _linear_layers(sequential: nn.Module) -> list[nn.Linear]:
    from torch import nn

    return [layer for layer in sequential.modules() if isinstance(layer, nn.Linear)]


def _not_trained(name: str) -> RuntimeError:
    return RuntimeError(f"{name} is not trained yet; call train(make_env, seed=..., steps=...) "
                        "or load(folder) first")  # fmt: skip


def _write_agent(
    folder: Path,
    agent: Agent,
    arrays: dict[str, np.ndarray],
    extra: dict[str, Any],
    model: Any,
) -> Path:
    """Write the weights, the stable-baselines3 model (if any), then the manifest, atomically."""
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"cannot save {agent.name} to {folder}: it is a file, not a folder")

    def weights(handle: BinaryIO) -> None:
        stored: dict[str, Any] = arrays
        np.savez(handle, **stored)

    write_atomic(folder / WEIGHTS_FILE, weights)
    files = [WEIGHTS_FILE]
    if model is not None:
        write_atomic(folder / SB3_FILE, lambda handle: model.save(handle))
        files.append(SB3_FILE)
    else:
        (folder / SB3_FILE).unlink(missing_ok=True)  # a stale model of an earlier save
    manifest = {
        "name": agent.name,
        "format": FORMAT,
        "view_size": VIEW_SIZE,
        "params": agent.params(),
        "training": agent.training_,
        "files": files,
        **extra,
    }
    write_text_atomic(json.dumps(manifest, indent=2), folder / MANIFEST_FILE)
    return folder


def _read_agent(folder: Path, name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read the manifest and the weights of a saved agent, checking it is ``name``'s."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise UserInputError(f"{folder} holds no saved agent ({MANIFEST_FILE} is missing)")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("name") != name:
        raise UserInputError(f"{folder} holds agent {manifest.get('name')!r}, not {name!r}")
    if manifest.get("format") != FORMAT or manifest.get("view_size") != VIEW_SIZE:
        raise UserInputError(
            f"{folder} was saved in format {manifest.get('format')} for views of "
            f"{manifest.get('view_size')} numbers; this version reads format {FORMAT}, "
            f"views of {VIEW_SIZE}: retrain the agent"
        )
    with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    return arrays, manifest
