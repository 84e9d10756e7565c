"""Corner pooling (models/py_utils/corner_pool.py) against the slow obvious
loop: values, gradients (gradcheck, and the original's argmax rule on ties),
low-precision dtypes and channels-last tensors; and center pooling against
the original's TopPool->BottomPool + LeftPool->RightPool composition."""

import pytest
import torch

from models.py_utils import BottomPool, LeftPool, RightPool, TopPool
from models.py_utils.corner_pool import default_method, directional_max
from models.py_utils.pool_modules import CenterPooling

# pool class -> (axis scanned, True when out[i] takes the max over positions >= i)
POOLS = {TopPool: (2, True), BottomPool: (2, False), LeftPool: (3, True), RightPool: (3, False)}
# both methods are checked on the CPU; each device uses one of them by default
METHODS = ["slices", "whole"]


def run_pool(pool, x, method):
    dim, from_end = POOLS[pool]
    return directional_max(x, dim, from_end, method=method)


def slow_pool(x, dim, from_end):
    """out[i] = max of x over positions >= i (from_end) or <= i, one position at a time."""
    out = torch.empty_like(x)
    n = x.size(dim)
    for i in range(n):
        window = x.narrow(dim, i, n - i) if from_end else x.narrow(dim, 0, i + 1)
        out.select(dim, i).copy_(window.amax(dim))
    return out


def original_backward(x, grad_out, dim, from_end):
    """Gradient of the original C++ extension: scanning from the window's far
    end, the argmax moves only on a strictly greater value, and each output's
    gradient goes whole to its argmax."""
    n = x.size(dim)
    x_m = x.movedim(dim, -1).reshape(-1, n)
    g_m = grad_out.movedim(dim, -1).reshape(-1, n)
    out_m = torch.zeros_like(x_m)
    order = range(n - 1, -1, -1) if from_end else range(n)
    for row in range(x_m.shape[0]):
        best, best_i = None, None
        for i in order:
            if best is None or x_m[row, i] > best:
                best, best_i = x_m[row, i], i
            out_m[row, best_i] += g_m[row, i]
    return out_m.reshape(x.movedim(dim, -1).shape).movedim(-1, dim)


def tie_free(shape, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    values = torch.randperm(torch.Size(shape).numel(), generator=generator).to(dtype)
    return (values / values.numel()).reshape(shape)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("pool", list(POOLS), ids=lambda p: p.__name__)
@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (1, 2, 1, 5), (1, 1, 6, 1)])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_pool_equals_slow_loop(method, pool, shape, layout):
    dim, from_end = POOLS[pool]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(run_pool(pool, x, method), slow_pool(x, dim, from_end))


def test_pool_modules_use_the_device_default():
    x = torch.randn(1, 2, 5, 6)
    assert default_method(x) == "slices"
    for pool in POOLS:
        assert torch.equal(pool()(x), run_pool(pool, x, "slices"))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("pool", list(POOLS), ids=lambda p: p.__name__)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_pool_gradcheck(method, pool, layout):
    x = tie_free((2, 3, 5, 6))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    assert torch.autograd.gradcheck(lambda t: run_pool(pool, t, method), (x.requires_grad_(),))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("pool", list(POOLS), ids=lambda p: p.__name__)
def test_pool_gradient_on_ties_follows_the_original(method, pool):
    dim, from_end = POOLS[pool]
    generator = torch.Generator().manual_seed(2)
    x = torch.randint(0, 3, (2, 2, 6, 7), generator=generator).double().requires_grad_()
    # integer gradients: sums are exact in any order
    grad_out = torch.randint(-9, 10, x.shape, generator=generator).double()
    run_pool(pool, x, method).backward(grad_out)
    assert torch.equal(x.grad, original_backward(x.detach(), grad_out, dim, from_end))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("pool", list(POOLS), ids=lambda p: p.__name__)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_matches_float32(method, pool, dtype):
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(3)).to(dtype)
    out = run_pool(pool, x, method)
    assert out.dtype == dtype
    assert torch.equal(out.float(), run_pool(pool, x.float(), method))  # max is exact in any dtype
    x.requires_grad_()
    run_pool(pool, x, method).sum().backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad.float()).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("pool", list(POOLS), ids=lambda p: p.__name__)
def test_channels_last_stays_channels_last(method, pool):
    x = torch.randn(2, 8, 6, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    out = run_pool(pool, x, method)
    assert out.is_contiguous(memory_format=torch.channels_last)
    out.backward(torch.ones_like(out))
    assert x.grad.is_contiguous(memory_format=torch.channels_last)


def test_pools_under_autocast_after_a_convolution():
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = conv(x)
        pooled = TopPool()(features)
    assert pooled.dtype == features.dtype == torch.bfloat16
    assert torch.equal(pooled.float(), slow_pool(features.float(), 2, True))
    pooled.float().sum().backward()
    assert torch.isfinite(conv.weight.grad).all()


def test_center_pooling_equals_the_original_four_pool_composition():
    torch.manual_seed(4)
    module = CenterPooling(dim=6, pool_dim=4).eval()
    x = torch.randn(2, 6, 7, 9)
    with torch.no_grad():
        column_max = BottomPool()(TopPool()(module.p1_conv1(x)))
        row_max = RightPool()(LeftPool()(module.p2_conv1(x)))
        pooled = module.p_bn1(module.p_conv1(column_max + row_max))
        expected = module.conv2(module.relu1(pooled + module.bn1(module.conv1(x))))
        assert torch.allclose(module(x), expected, atol=1e-6)


@pytest.mark.parametrize("pool", list(POOLS), ids=lambda p: p.__name__)
@pytest.mark.parametrize("window", [0, 1, 3, 50])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_bounded_pool_equals_slow_loop(pool, window, layout):
    dim, from_end = POOLS[pool]
    x = tie_free((2, 3, 7, 9))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    n = x.size(dim)
    expected = torch.empty_like(x)
    for i in range(n):
        start, stop = (i, min(n, i + window + 1)) if from_end else (max(0, i - window), i + 1)
        expected.select(dim, i).copy_(x.narrow(dim, start, stop - start).amax(dim))
    got = pool(window)(x.clone().requires_grad_())
    assert torch.equal(got, expected)
    got.sum().backward()  # a max-pool's own backward: finite, one share per window
    if window >= n:  # a window past the border is the paper's pool
        assert torch.equal(got, pool()(x))


def test_bounded_center_pooling_looks_both_ways():
    torch.manual_seed(4)
    module = CenterPooling(dim=6, pool_dim=4, window=[1, 2]).eval()
    paper = CenterPooling(dim=6, pool_dim=4)
    paper.load_state_dict(module.state_dict())
    x = torch.randn(2, 6, 7, 9)
    with torch.no_grad():
        column = module.p1_conv1(x)
        row = module.p2_conv1(x)
        column_max = torch.stack([column[:, :, max(0, i - 1):i + 2].amax(2) for i in range(7)], 2)
        row_max = torch.stack([row[:, :, :, max(0, j - 2):j + 3].amax(3) for j in range(9)], 3)
        pooled = module.p_bn1(module.p_conv1(column_max + row_max))
        expected = module.conv2(module.relu1(pooled + module.bn1(module.conv1(x))))
        assert torch.allclose(module(x), expected, atol=1e-6)
        assert not torch.allclose(module(x), paper.eval()(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("pool", list(POOLS), ids=lambda p: p.__name__)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_pool_on_cuda_matches_cpu(pool, dtype):
    x = torch.randn(2, 8, 16, 12, generator=torch.Generator().manual_seed(5)).to(dtype)
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(6)).to(dtype)
    cpu_x, cuda_x = x.clone().requires_grad_(), x.cuda().requires_grad_()
    pool()(cpu_x).backward(grad_out)
    cuda_out = pool()(cuda_x)
    cuda_out.backward(grad_out.cuda())
    assert torch.equal(cuda_out.cpu(), pool()(x))
    assert torch.allclose(cuda_x.grad.cpu().float(), cpu_x.grad.float(), rtol=1e-2, atol=1e-2)
