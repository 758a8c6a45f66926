"""Reinforcement learning over the real engine: agents that scale or veto the brain's entries.

See :mod:`tradebrain.strategies.agent_port` for the port the agents plug into,
:mod:`tradebrain.rl.env` for the environment they train on and :mod:`tradebrain.rl.agents` for
the agents.
"""

from tradebrain.rl.agents import DQNVeto, PPOSizer, QTableSizer
from tradebrain.rl.env import MULTIPLIERS, TradingEnv

__all__ = ["MULTIPLIERS", "DQNVeto", "PPOSizer", "QTableSizer", "TradingEnv"]
