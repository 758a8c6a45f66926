"""PatchTST-style net: each feature's series is cut into patches and encoded on its own.

Channel independence (Nie et al., 2023): every feature series goes through the same patch
embedding and Transformer encoder (shared weights), so the encoder learns temporal shapes that
hold across features; only the head sees all channels together and mixes them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tradebrain.models.base import register_model
from tradebrain.models.nets.net_model import NetModel


def patch_count(window: int, patch_len: int, stride: int) -> int:
    """Return how many patches a window makes after padding ``stride`` copies of its end."""
    return (window + stride - patch_len) // stride + 1


class PatchNet(nn.Module):
    """Patches per channel, shared encoder, per-channel summary, linear head over channels.

    Input (batch, window, features); output logits (batch, 3). Each series of length
    ``window`` is padded at its end with ``stride`` copies of its last value, cut into
    ``patch_count`` patches of ``patch_len`` steps, embedded to ``d_model``, encoded, and
    flattened to a ``channel_dim`` summary; the head reads (features * channel_dim).
    """

    def __init__(
        self,
        window: int,
        n_features: int,
        patch_len: int,
        stride: int,
        d_model: int,
        heads: int,
        layers: int,
        channel_dim: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.patch_len = min(patch_len, window)
        self.stride = max(1, min(stride, self.patch_len))
        patches = patch_count(window, self.patch_len, self.stride)
        self.pad = nn.ReplicationPad1d((0, self.stride))
        self.embed = nn.Linear(self.patch_len, d_model)
        self.positions = nn.Parameter(0.02 * torch.randn(patches, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, heads, 2 * d_model, dropout, batch_first=True, norm_first=True
        )
        layer.self_attn.dropout = 0.0  # no dropout on attention weights: costly, little gain
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.summarise = nn.Linear(patches * d_model, channel_dim)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_features * channel_dim, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        series = self.pad(x.transpose(1, 2))  # (batch, features, window + stride)
        patches = series.unfold(2, self.patch_len, self.stride)  # (b, f, patches, patch_len)
        tokens = self.embed(patches.flatten(0, 1)) + self.positions  # (b * f, patches, d)
        encoded = self.encoder(tokens).flatten(1)
        channels = torch.relu(self.summarise(encoded)).view(batch, -1)  # (b, f * channel_dim)
        return self.head(channels)  # type: ignore[no-any-return]


@register_model
class PatchTSTModel(NetModel):
    """PatchTST-style classifier with channel independence.

    Hyper-parameters: ``patch_len`` (16), ``stride`` (16; 5 patches for a 64-step window),
    ``d_model`` (32), ``heads`` (4), ``layers`` (2), ``channel_dim`` (16, per-channel summary
    read by the head), ``dropout`` (0.1), and the training settings of :class:`NetModel`.
    Its cost grows with features x patches: every feature runs through the encoder.
    """

    name = "patchtst"

    def __init__(
        self,
        *,
        patch_len: int = 16,
        stride: int = 16,
        d_model: int = 32,
        heads: int = 4,
        layers: int = 2,
        channel_dim: int = 16,
        dropout: float = 0.1,
        **training: Any,
    ) -> None:
        self.patch_len = patch_len
        self.stride = stride
        self.d_model = d_model
        self.heads = heads
        self.layers = layers
        self.channel_dim = channel_dim
        self.dropout = dropout
        super().__init__(**training)

    def build_network(self, window: int, n_features: int) -> nn.Module:
        return PatchNet(
            window, n_features, self.patch_len, self.stride, self.d_model, self.heads,
            self.layers, self.channel_dim, self.dropout,
        )  # fmt: skip
