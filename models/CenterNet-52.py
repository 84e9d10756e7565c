"""CenterNet-52 (Duan et al., ICCV 2019): one 52-layer hourglass with cascade
corner pooling and center pooling; 104,844,152 parameters at 80 categories,
as the original (Duankaiwen/CenterNet, models/CenterNet-52.py)."""

from .py_utils import kp

SIZES = {
    "n": 5,                                  # hourglass levels
    "nstack": 1,                             # hourglasses
    "dims": [256, 256, 384, 384, 384, 512],  # width per level
    "modules": [2, 2, 2, 2, 2, 4],           # residual blocks per level
    "cnv_dim": 256,                          # width after the hourglass
    "pool_dim": 128,                         # inner width of the pooling modules
    "stem_dim": 128,                         # width of the 7x7 stem
}


def build(**options):
    """The network for the config's `models.network_options`."""
    return kp(**SIZES, **options)
