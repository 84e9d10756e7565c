"""The training losses (models/py_utils/kp_utils.py, kp.py AELoss) on
hand-computed cases, against a faithful copy of the original CenterNet's
`_ae_loss` where the original was right, and on the three cases where it
was wrong (bool masks, a batch of one image, images with one object)."""

import math

import pytest
import torch

from models.py_utils.kp import AELoss
from models.py_utils.kp_utils import _ae_loss, _neg_loss, _regr_loss, _sigmoid


def original_ae_loss(tag0, tag1, mask):
    """The original's formula, line for line (Duankaiwen/CenterNet
    kp_utils.py), valid for uint8 masks, batches > 1 and >= 2 objects."""
    num = mask.sum(dim=1, keepdim=True).float()
    tag0 = tag0.squeeze()
    tag1 = tag1.squeeze()
    tag_mean = (tag0 + tag1) / 2
    tag0 = torch.pow(tag0 - tag_mean, 2) / (num + 1e-4)
    tag0 = tag0[mask.bool()].sum()
    tag1 = torch.pow(tag1 - tag_mean, 2) / (num + 1e-4)
    tag1 = tag1[mask.bool()].sum()
    pull = tag0 + tag1
    mask = mask.unsqueeze(1) + mask.unsqueeze(2)
    mask = mask.eq(2)
    num = num.unsqueeze(2)
    num2 = (num - 1) * num
    dist = tag_mean.unsqueeze(1) - tag_mean.unsqueeze(2)
    dist = 1 - torch.abs(dist)
    dist = torch.nn.functional.relu(dist)
    dist = dist - 1 / (num + 1e-4)
    dist = dist / (num2 + 1e-4)
    dist = dist[mask]
    push = dist.sum()
    return pull, push


def ideal_ae_loss(tags0, tags1):
    """Pull and push of one image from plain Python lists (no epsilons)."""
    n = len(tags0)
    means = [(a + b) / 2 for a, b in zip(tags0, tags1)]
    pull = sum((a - m) ** 2 + (b - m) ** 2 for a, b, m in zip(tags0, tags1, means)) / n if n else 0.0
    push = 0.0
    if n >= 2:
        push = sum(max(0.0, 1 - abs(means[j] - means[k]))
                   for j in range(n) for k in range(n) if j != k) / (n * (n - 1))
    return pull, push


def batch_of(images, slots=6):
    """(tags0, tags1, uint8 mask) padded to `slots` from per-image tag lists."""
    batch = len(images)
    tag0, tag1 = torch.zeros(batch, slots, 1), torch.zeros(batch, slots, 1)
    mask = torch.zeros(batch, slots, dtype=torch.uint8)
    for b, (t0, t1) in enumerate(images):
        tag0[b, :len(t0), 0] = torch.tensor(t0)
        tag1[b, :len(t1), 0] = torch.tensor(t1)
        mask[b, :len(t0)] = 1
    return tag0, tag1, mask


def test_sigmoid_is_clamped_and_leaves_its_input_alone():
    x = torch.tensor([-100.0, 0.0, 100.0])
    assert torch.equal(_sigmoid(x), torch.tensor([1e-4, 0.5, 1 - 1e-4]))
    assert torch.equal(x, torch.tensor([-100.0, 0.0, 100.0]))


def test_focal_loss_by_hand():
    gt = torch.tensor([1.0, 0.5, 0.0]).reshape(1, 1, 1, 3)
    pred = torch.tensor([0.8, 0.3, 0.1]).reshape(1, 1, 1, 3)
    pos = math.log(0.8) * 0.2 ** 2
    neg = math.log(0.7) * 0.3 ** 2 * 0.5 ** 4 + math.log(0.9) * 0.1 ** 2 * 1.0
    assert _neg_loss([pred], gt).item() == pytest.approx(-(pos + neg), rel=1e-6)
    # one term per stack, summed
    assert _neg_loss([pred, pred], gt).item() == pytest.approx(-2 * (pos + neg), rel=1e-6)


def test_focal_loss_without_objects_is_the_negative_term():
    gt = torch.tensor([0.5, 0.0]).reshape(1, 1, 1, 2)
    pred = torch.tensor([0.3, 0.1]).reshape(1, 1, 1, 2)
    neg = math.log(0.7) * 0.3 ** 2 * 0.5 ** 4 + math.log(0.9) * 0.1 ** 2
    assert _neg_loss([pred], gt).item() == pytest.approx(-neg, rel=1e-6)


def test_focal_loss_divides_by_the_number_of_objects():
    gt = torch.zeros(2, 3, 4, 4)
    gt[0, 1, 2, 2] = gt[1, 0, 0, 3] = 1
    pred = torch.full((2, 3, 4, 4), 0.5)
    pos = 2 * math.log(0.5) * 0.25
    neg = (gt.numel() - 2) * math.log(0.5) * 0.25
    assert _neg_loss([pred], gt).item() == pytest.approx(-(pos + neg) / 2, rel=1e-6)


def test_ae_loss_by_hand():
    images = [([0.0, 3.0, 0.6], [0.2, 3.4, 1.0]), ([1.0, 1.5], [1.0, 1.5])]
    pull, push = _ae_loss(*batch_of(images))
    expected = [ideal_ae_loss(t0, t1) for t0, t1 in images]
    # the original's 1e-4 epsilons and diagonal terms move values by ~1e-4
    assert pull.item() == pytest.approx(sum(p for p, _ in expected), abs=1e-3)
    assert push.item() == pytest.approx(sum(q for _, q in expected), abs=1e-3)
    assert push.item() > 0.5  # 0.0 and 0.6 (means 0.1, 0.8) and 1.0, 1.5 are close


def test_ae_loss_equals_the_original_where_it_was_right():
    generator = torch.Generator().manual_seed(0)
    batch, slots = 4, 12
    tag0 = torch.randn(batch, slots, 1, generator=generator)
    tag1 = tag0 + 0.3 * torch.randn(batch, slots, 1, generator=generator)
    mask = torch.zeros(batch, slots, dtype=torch.uint8)
    for b, count in enumerate([2, 5, 12, 3]):
        mask[b, :count] = 1
    pull, push = _ae_loss(tag0, tag1, mask)
    original_pull, original_push = original_ae_loss(tag0, tag1, mask)
    assert torch.allclose(pull, original_pull, rtol=1e-6, atol=1e-7)
    assert torch.allclose(push, original_push, rtol=1e-6, atol=1e-7)


def test_ae_loss_bool_mask_equals_uint8_mask():
    tag0, tag1, mask = batch_of([([0.0, 0.5, 2.0], [0.1, 0.4, 2.2]), ([1.0, 1.2], [1.1, 1.3])])
    pull_u8, push_u8 = _ae_loss(tag0, tag1, mask)
    pull_bool, push_bool = _ae_loss(tag0, tag1, mask.bool())
    assert push_u8.item() > 0.1
    assert torch.equal(push_bool, push_u8) and torch.equal(pull_bool, pull_u8)
    # the original's bug: bool + bool never equals 2, so push was always 0
    assert original_ae_loss(tag0, tag1, mask.bool())[1].item() == 0


def test_ae_loss_batch_of_one_image():
    images = [([0.0, 0.5, 2.0], [0.1, 0.4, 2.2])]
    tag0, tag1, mask = batch_of(images)
    pull, push = _ae_loss(tag0, tag1, mask)
    ideal_pull, ideal_push = ideal_ae_loss(*images[0])
    assert pull.item() == pytest.approx(ideal_pull, abs=1e-3)
    assert push.item() == pytest.approx(ideal_push, abs=1e-3)
    # (B, L) tags work as well as (B, L, 1)
    assert torch.equal(_ae_loss(tag0[..., 0], tag1[..., 0], mask)[1], push)


def test_ae_loss_single_object_and_empty_images_add_no_push():
    lone = ([0.3], [0.5])
    pull, push = _ae_loss(*batch_of([lone, ([], [])]))
    assert push.item() == 0
    assert pull.item() == pytest.approx(ideal_ae_loss(*lone)[0], rel=1e-3)
    # the original added about 1 for the lone object
    assert original_ae_loss(*batch_of([lone, ([2.0, 5.0], [2.0, 5.0])]))[1].item() > 0.9
    # beside an image of several objects, push is that image's alone
    pair = ([2.0, 2.5], [2.0, 2.5])
    assert _ae_loss(*batch_of([lone, pair]))[1].item() == pytest.approx(
        _ae_loss(*batch_of([pair]))[1].item(), rel=1e-6)


def test_regr_loss_by_hand():
    regr = torch.tensor([[[0.5, 0.5], [2.0, 0.0], [9.0, 9.0]]])
    gt = torch.tensor([[[0.0, 0.5], [0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    # smooth L1: 0.5 * 0.5^2 for |d| = 0.5, |d| - 0.5 for |d| = 2
    expected = (0.125 + 1.5) / 2
    assert _regr_loss(regr, gt, mask).item() == pytest.approx(expected, rel=1e-4)
    assert _regr_loss(regr, gt, torch.zeros_like(mask)).item() == 0


def _outputs_and_targets(batch=2, categories=3, size=8, slots=5, dtype=torch.float32):
    generator = torch.Generator().manual_seed(1)
    rand = lambda *shape: torch.randn(*shape, generator=generator)  # noqa: E731
    outs = [rand(batch, categories, size, size) for _ in range(3)]
    outs += [rand(batch, slots, 1) for _ in range(2)]
    outs += [rand(batch, slots, 2) for _ in range(3)]
    heat = torch.zeros(batch, categories, size, size)
    heat[0, 1, 2, 3] = heat[1, 2, 5, 5] = 1
    mask = torch.zeros(batch, slots, dtype=torch.bool)
    mask[:, :2] = True
    targets = [heat, heat.clone(), heat.clone(), mask] + [torch.rand(batch, slots, 2, generator=generator)
                                                          for _ in range(3)]
    return [o.to(dtype).requires_grad_() for o in outs], targets


def test_aeloss_combines_the_terms():
    outs, targets = _outputs_and_targets()
    total, focal, pull, push, regr = AELoss(pull_weight=0.1, push_weight=0.1, regr_weight=1)(outs, targets)
    heats = [_sigmoid(o) for o in outs[:3]]
    expected_focal = sum(_neg_loss([h], t) for h, t in zip(heats, targets[:3]))
    raw_pull, raw_push = _ae_loss(outs[3], outs[4], targets[3])
    expected_regr = sum(_regr_loss(o, t, targets[3]) for o, t in zip(outs[5:], targets[4:]))
    assert torch.allclose(focal, expected_focal)
    assert torch.allclose(pull, 0.1 * raw_pull) and torch.allclose(push, 0.1 * raw_push)
    assert torch.allclose(regr, expected_regr)
    assert torch.allclose(total, focal + pull + push + regr)
    assert all(t.dim() == 0 for t in (total, focal, pull, push, regr))
    total.backward()
    assert all(o.grad is not None and torch.isfinite(o.grad).all() for o in outs)


def test_aeloss_averages_over_stacks():
    outs, targets = _outputs_and_targets()
    one = AELoss()(outs, targets)
    two = AELoss()(outs + outs, targets)
    for a, b in zip(one, two):
        assert torch.allclose(a, b)


def test_aeloss_is_float32_for_bfloat16_outputs():
    outs, targets = _outputs_and_targets(dtype=torch.bfloat16)
    losses = AELoss()(outs, targets)
    assert all(t.dtype == torch.float32 and torch.isfinite(t) for t in losses)
    losses[0].backward()
    assert all(o.grad.dtype == torch.bfloat16 for o in outs)
