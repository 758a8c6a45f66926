"""Small PyTorch nets over windows: cnn, tcn, lstm, transformer, patchtst, nhits."""

from tradebrain.models.nets.cnn import CNNModel
from tradebrain.models.nets.lstm import LSTMModel
from tradebrain.models.nets.net_model import NetModel
from tradebrain.models.nets.nhits import NHiTSModel
from tradebrain.models.nets.patchtst import PatchTSTModel
from tradebrain.models.nets.tcn import TCNModel
from tradebrain.models.nets.transformer import TransformerModel

NET_MODELS: tuple[type[NetModel], ...] = (
    CNNModel,
    TCNModel,
    LSTMModel,
    TransformerModel,
    PatchTSTModel,
    NHiTSModel,
)

__all__ = [
    "NET_MODELS",
    "CNNModel",
    "LSTMModel",
    "NHiTSModel",
    "NetModel",
    "PatchTSTModel",
    "TCNModel",
    "TransformerModel",
]
