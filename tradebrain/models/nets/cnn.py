"""1D CNN: three convolution blocks over time, global pooling, a linear head to 3 logits."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tradebrain.models.base import register_model
from tradebrain.models.nets.net_model import NetModel


class ConvNet(nn.Module):
    """Conv blocks (conv k, batch norm, ReLU, max-pool 2, dropout), then average pooling.

    Input (batch, window, features); output logits (batch, 3). Block ``i`` has
    ``base_channels * 2**i`` channels (32/64/128 at the defaults).
    """

    def __init__(
        self, n_features: int, base_channels: int, blocks: int, kernel_size: int, dropout: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels_in = n_features
        for block in range(blocks):
            channels_out = base_channels * 2**block
            layers += [
                nn.Conv1d(channels_in, channels_out, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm1d(channels_out),
                nn.ReLU(),
                nn.MaxPool1d(2, ceil_mode=True),
                nn.Dropout(dropout),
            ]
            channels_in = channels_out
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(channels_in, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.blocks(x.transpose(1, 2))  # (batch, channels, time)
        pooled: torch.Tensor = hidden.mean(dim=2)
        return self.head(pooled)  # type: ignore[no-any-return]


@register_model
class CNNModel(NetModel):
    """1D CNN over the window; ``blocks`` conv blocks of ``base_channels * 2**i`` channels.

    Hyper-parameters: ``base_channels`` (32), ``blocks`` (3), ``kernel_size`` (3), ``dropout``
    (0.2), and the training settings of :class:`NetModel`.
    """

    name = "cnn"

    def __init__(
        self,
        *,
        base_channels: int = 32,
        blocks: int = 3,
        kernel_size: int = 3,
        dropout: float = 0.2,
        **training: Any,
    ) -> None:
        self.base_channels = base_channels
        self.blocks = blocks
        self.kernel_size = kernel_size
        self.dropout = dropout
        super().__init__(**training)

    def build_network(self, window: int, n_features: int) -> nn.Module:
        return ConvNet(n_features, self.base_channels, self.blocks, self.kernel_size, self.dropout)
