"""The two pooling modules of CenterNet (Duan et al., ICCV 2019, Sec. 3.3):
cascade corner pooling, in front of the corner heads, and center pooling, in
front of the centre head. Attribute names are the original's
(Duankaiwen/CenterNet, models/CenterNet-52.py `pool` and `pool_cross`), so
state dicts keep the original's keys.

`pool_dim` is the width of the pooled features (128 in the original, where it
was fixed); a small network needs it smaller to stay cheap.

`window` (None in the paper): [vertical, horizontal] heatmap cells that the
pools look along, instead of running to the border (corner_pool.py). On a
worksheet the row through a problem crosses every other problem of the row,
each with its own operator, and a corner's pool sees every problem to its
right and below; a window of a few object sizes keeps the mechanism local.
"""

from torch import nn

from .corner_pool import BottomPool, LeftPool, RightPool, TopPool, windowed_max
from .layers import convolution


class CascadeCornerPooling(nn.Module):
    """Cascade corner pooling: each direction pools a map that already holds
    the maximum along the other direction, so a corner sees the object's
    interior, not only its boundary.

    For the top-left corner pool1 = TopPool and pool2 = LeftPool:
        branch 1: pool1(P1_look_conv(p1_conv1(x) + pool2(look_conv1(x))))
        branch 2: pool2(P2_look_conv(p2_conv1(x) + pool1(look_conv2(x))))
        out = conv2(relu(p_bn1(p_conv1(branch1 + branch2)) + bn1(conv1(x))))
    """

    def __init__(self, dim, pool1, pool2, pool_dim=128, window=None):
        super().__init__()
        vertical, horizontal = window if window is not None else (None, None)
        self.look_conv1 = convolution(3, dim, pool_dim)
        self.p1_conv1 = convolution(3, dim, pool_dim)
        self.P1_look_conv = nn.Conv2d(pool_dim, pool_dim, (3, 3), padding=(1, 1), bias=False)

        self.look_conv2 = convolution(3, dim, pool_dim)
        self.p2_conv1 = convolution(3, dim, pool_dim)
        self.P2_look_conv = nn.Conv2d(pool_dim, pool_dim, (3, 3), padding=(1, 1), bias=False)

        self.p_conv1 = nn.Conv2d(pool_dim, dim, (3, 3), padding=(1, 1), bias=False)
        self.p_bn1 = nn.BatchNorm2d(dim)

        self.conv1 = nn.Conv2d(dim, dim, (1, 1), bias=False)
        self.bn1 = nn.BatchNorm2d(dim)
        self.relu1 = nn.ReLU(inplace=True)

        self.conv2 = convolution(3, dim, dim)

        self.pool1 = pool1(vertical)     # Top or Bottom: along the height
        self.pool2 = pool2(horizontal)   # Left or Right: along the width

    def forward(self, x):
        look1 = self.pool2(self.look_conv1(x))
        pool1 = self.pool1(self.P1_look_conv(self.p1_conv1(x) + look1))

        look2 = self.pool1(self.look_conv2(x))
        pool2 = self.pool2(self.P2_look_conv(self.p2_conv1(x) + look2))

        pooled = self.p_bn1(self.p_conv1(pool1 + pool2))
        return self.conv2(self.relu1(pooled + self.bn1(self.conv1(x))))


class CenterPooling(nn.Module):
    """Center pooling: the maximum along the whole column plus the maximum
    along the whole row, so a centre sees the object's most telling features
    in both directions.

        out = conv2(relu(p_bn1(p_conv1(col_max(p1_conv1(x)) + row_max(p2_conv1(x))))
                         + bn1(conv1(x))))

    The original computes the column max as TopPool then BottomPool and the
    row max as LeftPool then RightPool (four scans); a max-reduction
    broadcast back gives the same values for a fraction of the work.
    """

    def __init__(self, dim, pool_dim=128, window=None):
        super().__init__()
        self.window = window
        self.p1_conv1 = convolution(3, dim, pool_dim)
        self.p2_conv1 = convolution(3, dim, pool_dim)

        self.p_conv1 = nn.Conv2d(pool_dim, dim, (3, 3), padding=(1, 1), bias=False)
        self.p_bn1 = nn.BatchNorm2d(dim)

        self.conv1 = nn.Conv2d(dim, dim, (1, 1), bias=False)
        self.bn1 = nn.BatchNorm2d(dim)
        self.relu1 = nn.ReLU(inplace=True)

        self.conv2 = convolution(3, dim, dim)

    def forward(self, x):
        if self.window is None:
            column_max = self.p1_conv1(x).amax(dim=2, keepdim=True)  # (B, pool_dim, 1, W)
            row_max = self.p2_conv1(x).amax(dim=3, keepdim=True)     # (B, pool_dim, H, 1)
        else:  # both ways along the column and the row, `window` cells each
            vertical, horizontal = self.window
            column_max = windowed_max(self.p1_conv1(x), 2, vertical, vertical)
            row_max = windowed_max(self.p2_conv1(x), 3, horizontal, horizontal)
        pooled = self.p_bn1(self.p_conv1(column_max + row_max))
        return self.conv2(self.relu1(pooled + self.bn1(self.conv1(x))))


def top_left_pooling(dim, pool_dim, window=None):
    return CascadeCornerPooling(dim, TopPool, LeftPool, pool_dim, window)


def bottom_right_pooling(dim, pool_dim, window=None):
    return CascadeCornerPooling(dim, BottomPool, RightPool, pool_dim, window)
