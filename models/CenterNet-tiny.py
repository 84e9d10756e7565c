"""CenterNet-tiny: the CenterNet family (hourglass, cascade corner pooling,
center pooling, the same heads and losses) with few channels and levels, to
train on a couple of CPU cores. Not a network of the paper: a scaled-down
CenterNet-52 (Duan et al., ICCV 2019), 1.90M parameters at 6 categories
(its box classifier included). The full-resolution widths (dims[0],
cnv_dim, pool_dim, head_dim) are narrow and the lower levels wider; how the
sizes were chosen: docs/differences-from-the-original.md, "Measurements"."""

from .py_utils import kp

SIZES = {
    "n": 3,                                  # hourglass levels
    "nstack": 1,                             # hourglasses
    "dims": [32, 64, 96, 128],               # width per level
    "modules": [1, 1, 1, 2],                 # residual blocks per level
    "cnv_dim": 32,                           # width after the hourglass
    "head_dim": 16,                          # inner width of the nine heads
    "pool_dim": 16,                          # inner width of the pooling modules
    "stem_dim": 16,                          # width of the 7x7 stem
}


def build(**options):
    """The network for the config's `models.network_options`."""
    return kp(**SIZES, **options)
