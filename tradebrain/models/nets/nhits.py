"""N-HiTS-style net: hierarchical blocks of multi-rate pooling and MLPs, adapted to 3 classes.

After a per-step projection of the features to ``channels`` series, each block max-pools the
current residual over time with its own kernel (coarse first), reads it with an MLP, and emits
(a) a backcast made of ``window / kernel`` coefficients per series, linearly interpolated back
to the window and subtracted from the residual, and (b) three logits. The logits of all blocks
add up, as N-HiTS adds the blocks' forecasts (Challu et al., 2023): coarse blocks read the slow
part of the window, later blocks the faster part the earlier ones left over.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from tradebrain.models.base import register_model
from tradebrain.models.nets.net_model import NetModel


class PoolingBlock(nn.Module):
    """One block: max-pool (kernel k), MLP, backcast (b, c, window) and logits (b, 3)."""

    def __init__(self, window: int, channels: int, kernel: int, hidden: int, dropout: float):
        super().__init__()
        self.kernel = max(1, min(kernel, window))
        points = math.ceil(window / self.kernel)
        self.window = window
        self.channels = channels
        self.points = points
        self.pool = nn.MaxPool1d(self.kernel, stride=self.kernel, ceil_mode=True)
        self.mlp = nn.Sequential(
            nn.Linear(channels * points, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.backcast = nn.Linear(hidden, channels * points)
        self.logits = nn.Linear(hidden, 3)

    def forward(self, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.mlp(self.pool(residual).flatten(1))
        coefficients = self.backcast(hidden).view(-1, self.channels, self.points)
        backcast = nn.functional.interpolate(coefficients, size=self.window, mode="linear")
        return backcast, self.logits(hidden)


class HierarchicalNet(nn.Module):
    """Projection to ``channels`` series, then :class:`PoolingBlock` s, one per pool kernel.

    Input (batch, window, features); output logits (batch, 3), the sum over blocks.
    """

    def __init__(
        self,
        window: int,
        n_features: int,
        channels: int,
        pool_sizes: tuple[int, ...],
        hidden: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.project = nn.Linear(n_features, channels)
        self.blocks = nn.ModuleList(
            PoolingBlock(window, channels, kernel, hidden, dropout) for kernel in pool_sizes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.project(x).transpose(1, 2)  # (batch, channels, window)
        total = torch.zeros(x.shape[0], 3, dtype=x.dtype)
        for block in self.blocks:
            backcast, logits = block(residual)
            residual = residual - backcast
            total = total + logits
        return total


@register_model
class NHiTSModel(NetModel):
    """N-HiTS-style hierarchical pooling classifier.

    Hyper-parameters: ``channels`` (16 projected series), ``pool_sizes`` ((16, 8, 4), one block
    each, coarse first), ``hidden`` (64 units, 2 layers per block MLP), ``dropout`` (0.1), and the
    training settings of :class:`NetModel`.
    """

    name = "nhits"

    def __init__(
        self,
        *,
        channels: int = 16,
        pool_sizes: tuple[int, ...] = (16, 8, 4),
        hidden: int = 64,
        dropout: float = 0.1,
        **training: Any,
    ) -> None:
        self.channels = channels
        self.pool_sizes = pool_sizes
        self.hidden = hidden
        self.dropout = dropout
        super().__init__(**training)

    def build_network(self, window: int, n_features: int) -> nn.Module:
        return HierarchicalNet(
            window, n_features, self.channels, tuple(self.pool_sizes), self.hidden, self.dropout
        )
