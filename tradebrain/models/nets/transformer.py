"""Transformer encoder: multi-head self-attention over the window's time steps."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

from tradebrain.models.base import register_model
from tradebrain.models.nets.net_model import NetModel

Positions = Literal["learned", "sinusoidal"]


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """Return the fixed sine/cosine position codes of Vaswani et al.: (length, d_model)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(1e4) / d_model)
    )
    codes = torch.zeros(length, d_model)
    codes[:, 0::2] = torch.sin(position * frequency)
    codes[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
    return codes


class TransformerNet(nn.Module):
    """Per-step linear embedding + positions, pre-norm encoder layers, head on [last, mean].

    Input (batch, window, features); output logits (batch, 3). Attention runs over the past
    window only (the window ends at the prediction row), so no causal mask is needed.
    """

    def __init__(
        self,
        window: int,
        n_features: int,
        d_model: int,
        heads: int,
        layers: int,
        feedforward: int,
        dropout: float,
        positions: Positions,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, d_model)
        if positions == "learned":
            self.positions = nn.Parameter(0.02 * torch.randn(window, d_model))
        else:
            self.register_buffer("positions", sinusoidal_positions(window, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, heads, feedforward, dropout, batch_first=True, norm_first=True
        )
        layer.self_attn.dropout = 0.0  # no dropout on attention weights: costly, little gain
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(2 * d_model, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.norm(self.encoder(self.embed(x) + self.positions))  # (b, window, d_model)
        summary = torch.cat([hidden[:, -1], hidden.mean(dim=1)], dim=1)
        return self.head(summary)  # type: ignore[no-any-return]


@register_model
class TransformerModel(NetModel):
    """Small Transformer encoder classifier.

    Hyper-parameters: ``d_model`` (64), ``heads`` (4), ``layers`` (2), ``feedforward`` (128),
    ``dropout`` (0.1), ``positions`` ("learned" or "sinusoidal"), and the training settings of
    :class:`NetModel`.
    """

    name = "transformer"

    def __init__(
        self,
        *,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        feedforward: int = 128,
        dropout: float = 0.1,
        positions: Positions = "learned",
        **training: Any,
    ) -> None:
        self.d_model = d_model
        self.heads = heads
        self.layers = layers
        self.feedforward = feedforward
        self.dropout = dropout
        self.positions = positions
        super().__init__(**training)

    def build_network(self, window: int, n_features: int) -> nn.Module:
        return TransformerNet(
            window, n_features, self.d_model, self.heads, self.layers, self.feedforward,
            self.dropout, self.positions,
        )  # fmt: skip
