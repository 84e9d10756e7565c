"""CenterNet-104 (Duan et al., ICCV 2019): two stacked 52-layer hourglasses
with intermediate supervision, cascade corner pooling and center pooling;
210,062,960 parameters at 80 categories, as the original
(Duankaiwen/CenterNet, models/CenterNet-104.py)."""

from .py_utils import kp

SIZES = {
    "n": 5,                                  # hourglass levels
    "nstack": 2,                             # hourglasses
    "dims": [256, 256, 384, 384, 384, 512],  # width per level
    "modules": [2, 2, 2, 2, 2, 4],           # residual blocks per level
    "cnv_dim": 256,                          # width after each hourglass
    "pool_dim": 128,                         # inner width of the pooling modules
    "stem_dim": 128,                         # width of the 7x7 stem
}


def build(**options):
    """The network for the config's `models.network_options`."""
    return kp(**SIZES, **options)
