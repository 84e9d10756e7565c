"""Building blocks of the CenterNet networks: corner pooling, layers, the
hourglass, the network class `kp`, its loss `AELoss` and decoding."""

from .corner_pool import BottomPool, LeftPool, RightPool, TopPool
from .kp import AELoss, kp
from .kp_utils import _decode, _neg_loss
from .layers import convolution, residual

__all__ = ["TopPool", "BottomPool", "LeftPool", "RightPool", "kp", "AELoss",
           "_decode", "_neg_loss", "convolution", "residual"]
