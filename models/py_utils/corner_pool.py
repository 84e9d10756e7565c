"""Corner pooling of CornerNet (Law & Deng, ECCV 2018), as used by the cascade
corner pooling and center pooling of CenterNet (Duan et al., ICCV 2019), in
plain PyTorch: nothing to compile, any device, any floating dtype.

Each pool is a running maximum along one spatial axis of a (B, C, H, W) map:

    TopPool     out[..., h, w] = max over h' >= h of x[..., h', w]
    BottomPool  out[..., h, w] = max over h' <= h of x[..., h', w]
    LeftPool    out[..., h, w] = max over w' >= w of x[..., h, w']
    RightPool   out[..., h, w] = max over w' <= w of x[..., h, w']

Two exact methods in one custom autograd function, picked by device
(`default_method`):
- "slices" (CPU): a scan of one slice per row or column,
  `out[i] = max(x[i], out[i - 1])`, into one preallocated output: on a CPU
  faster than flip + torch.cummax (BENCHMARKS.md, "network") and than a
  log-step doubling scan built from torch.maximum, and it saves only a bool
  mask for backward where cummax keeps an int64 index per element. A slice
  across the innermost memory axis (W of an NCHW tensor) would gather
  elements one by one, so such a tensor is scanned through a copy in which
  that axis is not innermost, and the result keeps that layout (no copy
  back); channels-last tensors are scanned in place.
- "whole" (GPU): torch.cummax over the whole tensor forward, and backward
  as one cummin/cummax of positions and one scatter_add, a dozen kernels
  instead of the hundreds of tiny launches of a slice loop.

A pool may also be bounded (`window`, a config key for dense pages): the
maximum over the next `window` positions only, e.g. TopPool
out[..., h, w] = max over h <= h' <= h + window. It is a different operator
(CenterNet's pools run to the border), computed as a max-pool over a
-inf-padded map, with PyTorch's own backward (ties: max_pool2d's argmax).

Backward sends each output's gradient whole to the one input that holds its
maximum. Where several inputs tie for the maximum it picks the one farthest
from the output, as the original CUDA/C++ extension does
(docs/differences-from-the-original.md). Both methods encode this
with one mask: input i takes the gradients of the outputs between it and the
previous such input iff x[i] is strictly greater than every input beyond it
in its windows: for TopPool (windows h' >= h) iff x[h] > out[h + 1], for
BottomPool iff x[h] > out[h - 1]; the last position of a window always does.

Throughout, `from_end=True` is the max over positions >= i (Top, Left) and
False over positions <= i (Bottom, Right).
"""

import torch
import torch.nn.functional as F
from torch import nn


def _scan_layout(x, dim):
    """`x` itself, or a copy with the same values in which `dim` is not the
    innermost axis in memory (so each slice along `dim` is made of runs)."""
    if x.stride(dim) != 1 or x.size(dim) == 1 or x.numel() == x.size(dim):
        return x
    other = 2 if dim == 3 else 3
    return x.transpose(dim, other).contiguous().transpose(dim, other)


def _positions(n, from_end):
    return range(n - 1, -1, -1) if from_end else range(n)


def _argmax_mask(x, out, dim, from_end):
    """is_argmax[i]: x[i] is strictly greater than every input beyond i in
    its windows (module doc); the position all windows share always is."""
    n = x.size(dim)
    is_argmax = torch.empty_like(x, dtype=torch.bool)
    is_argmax.select(dim, n - 1 if from_end else 0).fill_(True)
    if n > 1:
        if from_end:
            torch.gt(x.narrow(dim, 0, n - 1), out.narrow(dim, 1, n - 1),
                     out=is_argmax.narrow(dim, 0, n - 1))
        else:
            torch.gt(x.narrow(dim, 1, n - 1), out.narrow(dim, 0, n - 1),
                     out=is_argmax.narrow(dim, 1, n - 1))
    return is_argmax


# --- CPU: one slice at a time ------------------------------------------------

def _max_by_slices(x, dim, from_end):
    x = _scan_layout(x, dim)
    out = torch.empty_like(x)  # same layout as the (possibly copied) input
    order = _positions(x.size(dim), from_end)
    out.select(dim, order[0]).copy_(x.select(dim, order[0]))
    for prev, i in zip(order, order[1:]):
        torch.maximum(x.select(dim, i), out.select(dim, prev), out=out.select(dim, i))
    return out, _argmax_mask(x, out, dim, from_end)


def _route_by_slices(grad_out, is_argmax, dim, from_end):
    # read the incoming gradient in the mask's layout, slice by slice
    if grad_out.stride() != is_argmax.stride():
        grad_out = torch.empty_like(is_argmax, dtype=grad_out.dtype).copy_(grad_out)
    grad_in = torch.empty_like(grad_out)
    # walk against the forward scan: gradients of outputs accumulate until
    # the input holding their maximum is reached, which takes them all
    acc_dtype = torch.promote_types(grad_out.dtype, torch.float32)
    pending = torch.zeros_like(grad_out.select(dim, 0), dtype=acc_dtype)
    for i in _positions(grad_out.size(dim), not from_end):
        pending += grad_out.select(dim, i)
        takes = is_argmax.select(dim, i)
        torch.mul(pending, takes, out=grad_in.select(dim, i))
        pending.masked_fill_(takes, 0)
    return grad_in


# --- GPU: whole-tensor scans ---------------------------------------------------

def _scanned_view(t, dim):
    """(view, axis, permuted): a channels-last tensor is scanned as its
    contiguous (B, H, W, C) view, so results come out channels-last too."""
    if not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1), dim - 1, True
    return t, dim, False


def _unview(t, permuted):
    return t.permute(0, 3, 1, 2) if permuted else t


def _max_whole(x, dim, from_end):
    view, axis, permuted = _scanned_view(x, dim)
    if from_end:
        out = torch.flip(torch.cummax(torch.flip(view, [axis]), axis).values, [axis])
    else:
        out = torch.cummax(view, axis).values
    out = _unview(out, permuted)
    return out, _argmax_mask(x, out, dim, from_end)


def _route_whole(grad_out, is_argmax, dim, from_end):
    is_argmax, axis, permuted = _scanned_view(is_argmax, dim)
    if permuted:
        grad_out = grad_out.permute(0, 2, 3, 1)
    n = is_argmax.size(axis)
    shape = [1] * is_argmax.dim()
    shape[axis] = n
    positions = torch.arange(n, device=is_argmax.device).view(shape)
    # argmax of output i: the nearest is_argmax position at or after i
    # (from_end) or at or before i
    if from_end:
        source = torch.where(is_argmax, positions, n)
        source = torch.flip(torch.cummin(torch.flip(source, [axis]), axis).values, [axis])
    else:
        source = torch.cummax(torch.where(is_argmax, positions, -1), axis).values
    acc_dtype = torch.promote_types(grad_out.dtype, torch.float32)
    grad_in = torch.zeros_like(is_argmax, dtype=acc_dtype)
    grad_in.scatter_add_(axis, source, grad_out.to(acc_dtype))
    return _unview(grad_in.to(grad_out.dtype), permuted)


_METHODS = {"slices": (_max_by_slices, _route_by_slices), "whole": (_max_whole, _route_whole)}


def default_method(x):
    """"slices" on the CPU, where it is the fastest (module doc); "whole" on
    GPUs, where 128 slices mean hundreds of tiny kernel launches (an order of
    magnitude slower there, measured on an H100)."""
    return "slices" if x.device.type == "cpu" else "whole"


class _DirectionalMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim, from_end, method):
        out, is_argmax = _METHODS[method][0](x, dim, from_end)
        ctx.dim, ctx.from_end, ctx.method = dim, from_end, method
        ctx.save_for_backward(is_argmax)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (is_argmax,) = ctx.saved_tensors
        grad_in = _METHODS[ctx.method][1](grad_out, is_argmax, ctx.dim, ctx.from_end)
        return grad_in, None, None, None


def windowed_max(x, dim, ahead, behind=0):
    """Maximum of `x` (B, C, H, W) over positions i - behind .. i + ahead along
    `dim` (2 or 3); the parts of the window beyond the tensor are left out.

    A max-pool of kernel behind + ahead + 1 over x padded with -inf: PyTorch's
    max_pool2d keeps the argmax for backward and is vectorised over channels
    in channels-last tensors."""
    n = x.size(dim)
    ahead, behind = min(ahead, n - 1), min(behind, n - 1)
    if ahead == behind == 0:
        return x
    kernel = behind + ahead + 1
    # F.pad takes (left, right, top, bottom) of the last two axes
    pad = (behind, ahead, 0, 0) if dim == 3 else (0, 0, behind, ahead)
    padded = F.pad(x, pad, value=float("-inf"))
    size = (1, kernel) if dim == 3 else (kernel, 1)
    return F.max_pool2d(padded, size, stride=1)


def directional_max(x, dim, from_end, method=None, window=None):
    """Running maximum of `x` along `dim` (2: height, 3: width) of a
    (B, C, H, W) tensor, from the end (positions >= i) or from the start.
    `method`: "slices" or "whole" (both exact, same gradients); None picks
    the faster for the tensor's device. `window`: look only this many
    positions beyond i (None: to the border, CenterNet's pools)."""
    if x.dim() != 4 or dim not in (2, 3):
        raise ValueError(f"corner pooling takes (B, C, H, W) tensors along dim 2 or 3, "
                         f"got shape {tuple(x.shape)} and dim {dim}")
    if window is not None:
        if window < 0:
            raise ValueError(f"a pooling window is >= 0 positions, got {window}")
        return windowed_max(x, dim, ahead=window) if from_end else \
            windowed_max(x, dim, ahead=0, behind=window)
    method = method or default_method(x)
    if method not in _METHODS:
        raise ValueError(f"unknown corner pooling method {method!r}; use one of {sorted(_METHODS)}")
    if x.size(dim) == 0:
        return x.clone()
    return _DirectionalMax.apply(x, dim, from_end, method)


class _Pool(nn.Module):
    dim = from_end = None

    def __init__(self, window=None):
        super().__init__()
        self.window = window

    def forward(self, x):
        return directional_max(x, self.dim, from_end=self.from_end, window=self.window)

    def extra_repr(self):
        return "" if self.window is None else f"window={self.window}"


class TopPool(_Pool):
    """out[..., h, w] = max over h' >= h: the top-left corner looks down."""
    dim, from_end = 2, True


class BottomPool(_Pool):
    """out[..., h, w] = max over h' <= h: the bottom-right corner looks up."""
    dim, from_end = 2, False


class LeftPool(_Pool):
    """out[..., h, w] = max over w' >= w: the top-left corner looks right."""
    dim, from_end = 3, True


class RightPool(_Pool):
    """out[..., h, w] = max over w' <= w: the bottom-right corner looks left."""
    dim, from_end = 3, False
