"""Stacked LSTM over the window; optionally bidirectional, which reads only the past window.

A window ends at the row it predicts for (:func:`tradebrain.models.base.make_windows`), so a
backward pass inside it runs from that row back to the window's start: it reads no row after
the prediction row and is as causal as the forward pass. It only changes how the past is
summarised.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tradebrain.models.base import register_model
from tradebrain.models.nets.net_model import NetModel


class RecurrentNet(nn.Module):
    """LSTM layers, then a linear head on the final hidden state(s).

    Input (batch, window, features); output logits (batch, 3). Bidirectional: the forward
    state after the last step and the backward state after the first step are concatenated.
    """

    def __init__(
        self, n_features: int, hidden: int, layers: int, dropout: float, bidirectional: bool
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            n_features,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.directions = 2 if bidirectional else 1
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden * self.directions, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)  # h_n: (layers * directions, batch, hidden)
        last_layer = h_n[-self.directions :].transpose(0, 1).flatten(1)
        return self.head(last_layer)  # type: ignore[no-any-return]


@register_model
class LSTMModel(NetModel):
    """Stacked LSTM classifier.

    Hyper-parameters: ``hidden`` (64), ``layers`` (2), ``dropout`` (0.1), ``bidirectional``
    (False; True roughly doubles the parameters, about 156k at 40 features — lower ``hidden``
    to 40 to stay under 100k), and the training settings of :class:`NetModel`.
    """

    name = "lstm"

    def __init__(
        self,
        *,
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.1,
        bidirectional: bool = False,
        **training: Any,
    ) -> None:
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout
        self.bidirectional = bidirectional
        super().__init__(**training)

    def build_network(self, window: int, n_features: int) -> nn.Module:
        return RecurrentNet(n_features, self.hidden, self.layers, self.dropout, self.bidirectional)
