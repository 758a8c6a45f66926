"""TCN: residual blocks of dilated causal convolutions; the last time step feeds the head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tradebrain.models.base import register_model
from tradebrain.models.nets.net_model import NetModel


class CausalConv(nn.Module):
    """A dilated 1D convolution padded on the left only: output step t reads steps <= t.

    Input and output (batch, channels, time), same length.
    """

    def __init__(self, channels_in: int, channels_out: int, kernel_size: int, dilation: int):
        super().__init__()
        self.left_padding = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(channels_in, channels_out, kernel_size, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = nn.functional.pad(x, (self.left_padding, 0))
        return self.conv(padded)  # type: ignore[no-any-return]


class TemporalBlock(nn.Module):
    """Two causal convolutions (ReLU, dropout) with a residual connection: (b, c, t) -> same."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            CausalConv(channels, channels, kernel_size, dilation),
            nn.ReLU(),
            nn.Dropout(dropout),
            CausalConv(channels, channels, kernel_size, dilation),
            nn.ReLU(),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class TemporalStack(nn.Module):
    """A 1x1 input projection, then blocks with dilations 1, 2, 4, ...: (b, f, t) -> (b, c, t).

    Every operation is causal, so the output at step t never depends on a later step. The
    receptive field is ``1 + 2 * (kernel_size - 1) * (2**levels - 1)`` steps.
    """

    def __init__(
        self, n_features: int, channels: int, levels: int, kernel_size: int, dropout: float
    ) -> None:
        super().__init__()
        self.project = nn.Conv1d(n_features, channels, 1)
        self.blocks = nn.Sequential(
            *(TemporalBlock(channels, kernel_size, 2**level, dropout) for level in range(levels))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.project(x))  # type: ignore[no-any-return]


class TemporalConvNet(nn.Module):
    """The TCN classifier: (batch, window, features) -> logits (batch, 3) from the last step."""

    def __init__(
        self, n_features: int, channels: int, levels: int, kernel_size: int, dropout: float
    ) -> None:
        super().__init__()
        self.stack = TemporalStack(n_features, channels, levels, kernel_size, dropout)
        self.head = nn.Linear(channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.stack(x.transpose(1, 2))
        return self.head(hidden[:, :, -1])  # type: ignore[no-any-return]


@register_model
class TCNModel(NetModel):
    """Temporal convolutional network with dilated causal convolutions and residual blocks.

    Hyper-parameters: ``channels`` (32), ``levels`` (5 blocks, dilations 1..16, receptive field
    125 steps with kernel 3), ``kernel_size`` (3), ``dropout`` (0.1), and the training settings
    of :class:`NetModel`.
    """

    name = "tcn"

    def __init__(
        self,
        *,
        channels: int = 32,
        levels: int = 5,
        kernel_size: int = 3,
        dropout: float = 0.1,
        **training: Any,
    ) -> None:
        self.channels = channels
        self.levels = levels
        self.kernel_size = kernel_size
        self.dropout = dropout
        super().__init__(**training)

    def build_network(self, window: int, n_features: int) -> nn.Module:
        return TemporalConvNet(
            n_features, self.channels, self.levels, self.kernel_size, self.dropout
        )
