"""One hourglass (Newell et al., ECCV 2016) as CornerNet and CenterNet build
it: `kp_module`, recursive over `n` levels.

Per level, at `dims[0]` channels and resolution s:

    up1  = modules[0] residual blocks                      (s,   dims[0])
    low1 = stride-2 residual, modules[0] - 1 residuals     (s/2, dims[1])
    low2 = the next level, or modules[1] residuals at the bottom
    low3 = modules[0] - 1 residuals, then one to dims[0]   (s/2, dims[0])
    out  = up1 + nearest-neighbour upsampling x2 of low3   (s,   dims[0])

CenterNet (like CornerNet-Saccade later) downsamples with the stride-2
residual instead of a max-pool; its pool layer was an empty `nn.Sequential`
and is left out here (it has no parameters, so state dicts are unchanged).
"""

import torch.nn.functional as F
from torch import nn

from .layers import make_hg_layer, make_layer, make_layer_revr, residual


class kp_module(nn.Module):
    def __init__(self, n, dims, modules, layer=residual):
        super().__init__()
        if len(dims) < n + 1 or len(modules) < n + 1:
            raise ValueError(f"an hourglass of {n} levels needs {n + 1} dims and modules, "
                             f"got dims {dims} and modules {modules}")
        self.n = n
        curr_mod, next_mod = modules[0], modules[1]
        curr_dim, next_dim = dims[0], dims[1]

        self.up1 = make_layer(3, curr_dim, curr_dim, curr_mod, layer=layer)
        self.low1 = make_hg_layer(3, curr_dim, next_dim, curr_mod, layer=layer)
        if n > 1:
            self.low2 = kp_module(n - 1, dims[1:], modules[1:], layer=layer)
        else:
            self.low2 = make_layer(3, next_dim, next_dim, next_mod, layer=layer)
        self.low3 = make_layer_revr(3, next_dim, curr_dim, curr_mod, layer=layer)

    def forward(self, x):
        up1 = self.up1(x)
        low3 = self.low3(self.low2(self.low1(x)))
        # Upsampling to up1's size is x2 nearest when the side is even; an odd
        # side (input not a multiple of 4 * 2**n) still lines up instead of failing.
        up2 = F.interpolate(low3, size=up1.shape[-2:], mode="nearest")
        return up1 + up2
