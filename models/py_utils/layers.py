"""The two building blocks of the hourglass networks of CornerNet (Law & Deng,
ECCV 2018) and CenterNet (Duan et al., ICCV 2019): `convolution`
(conv + BatchNorm + ReLU) and `residual` (the two-conv residual block of
Newell et al.'s stacked hourglass), with the original names and attribute
names, so that state dicts keep the original's keys.
"""

from torch import nn


class convolution(nn.Module):
    """k x k convolution, then BatchNorm (or a conv bias without it), then ReLU."""

    def __init__(self, k, inp_dim, out_dim, stride=1, with_bn=True):
        super().__init__()
        pad = (k - 1) // 2
        self.conv = nn.Conv2d(inp_dim, out_dim, (k, k), padding=(pad, pad),
                              stride=(stride, stride), bias=not with_bn)
        self.bn = nn.BatchNorm2d(out_dim) if with_bn else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class residual(nn.Module):
    """Two 3x3 conv+BN with a skip (1x1 conv+BN when the shape changes).

    `k` is accepted for the `make_layer` calling convention and, as in the
    original, not used: the block's convolutions are always 3x3.
    """

    def __init__(self, k, inp_dim, out_dim, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inp_dim, out_dim, (3, 3), padding=(1, 1),
                               stride=(stride, stride), bias=False)
        self.bn1 = nn.BatchNorm2d(out_dim)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_dim, out_dim, (3, 3), padding=(1, 1), bias=False)
        self.bn2 = nn.BatchNorm2d(out_dim)
        if stride != 1 or inp_dim != out_dim:
            self.skip = nn.Sequential(
                nn.Conv2d(inp_dim, out_dim, (1, 1), stride=(stride, stride), bias=False),
                nn.BatchNorm2d(out_dim))
        else:
            self.skip = nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        branch = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu(branch + self.skip(x))


def make_layer(k, inp_dim, out_dim, modules, layer=residual):
    """`modules` blocks; the first changes inp_dim to out_dim."""
    layers = [layer(k, inp_dim, out_dim)]
    layers += [layer(k, out_dim, out_dim) for _ in range(modules - 1)]
    return nn.Sequential(*layers)


def make_layer_revr(k, inp_dim, out_dim, modules, layer=residual):
    """`modules` blocks; the last changes inp_dim to out_dim."""
    layers = [layer(k, inp_dim, inp_dim) for _ in range(modules - 1)]
    layers.append(layer(k, inp_dim, out_dim))
    return nn.Sequential(*layers)


def make_hg_layer(k, inp_dim, out_dim, modules, layer=residual):
    """The way down one hourglass level: CenterNet halves the resolution with
    a stride-2 block (where CornerNet used a 2x2 max-pool), then
    `modules - 1` blocks."""
    layers = [layer(k, inp_dim, out_dim, stride=2)]
    layers += [layer(k, out_dim, out_dim) for _ in range(modules - 1)]
    return nn.Sequential(*layers)
