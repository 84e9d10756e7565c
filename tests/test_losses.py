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


HEAD_ORDER = ("tl_heat", "br_heat", "ct_heat", "tl_tag", "br_tag", "tl_regr", "br_regr", "ct_regr")
TARGET_ORDER = ("tl_heatmap", "br_heatmap", "ct_heatmap", "tag_mask", "tl_regr", "br_regr", "ct_regr")


def _outputs_and_targets(batch=2, categories=3, size=8, slots=5, dtype=torch.float32):
    """One stack's outputs (a dict, as kp.forward gives) and the targets (a dict)."""
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
    outs = {name: o.to(dtype).requires_grad_() for name, o in zip(HEAD_ORDER, outs)}
    return outs, dict(zip(TARGET_ORDER, targets))


def test_aeloss_combines_the_terms():
    outs, targets = _outputs_and_targets()
    losses = AELoss(pull_weight=0.1, push_weight=0.1, regr_weight=1)([outs], targets)
    total, focal, pull, push, regr = (losses[k] for k in ("total", "focal", "pull", "push", "regr"))
    heats = [_sigmoid(outs[k]) for k in ("tl_heat", "br_heat", "ct_heat")]
    expected_focal = sum(_neg_loss([h], targets[t]) for h, t in
                         zip(heats, ("tl_heatmap", "br_heatmap", "ct_heatmap")))
    mask = targets["tag_mask"]
    raw_pull, raw_push = _ae_loss(outs["tl_tag"], outs["br_tag"], mask)
    expected_regr = sum(_regr_loss(outs[k], targets[k], mask) for k in ("tl_regr", "br_regr", "ct_regr"))
    assert torch.allclose(focal, expected_focal)
    assert torch.allclose(pull, 0.1 * raw_pull) and torch.allclose(push, 0.1 * raw_push)
    assert torch.allclose(regr, expected_regr)
    assert losses["size"] == 0 and losses["class"] == 0  # no such heads
    assert torch.allclose(total, focal + pull + push + regr)
    assert all(t.dim() == 0 for t in losses.values())
    total.backward()
    assert all(o.grad is not None and torch.isfinite(o.grad).all() for o in outs.values())


def test_aeloss_averages_over_stacks():
    outs, targets = _outputs_and_targets()
    one = AELoss()([outs], targets)
    two = AELoss()([outs, outs], targets)
    for name in one:
        assert torch.allclose(one[name], two[name])


def test_aeloss_is_float32_for_bfloat16_outputs():
    outs, targets = _outputs_and_targets(dtype=torch.bfloat16)
    losses = AELoss()([outs], targets)
    assert all(t.dtype == torch.float32 and torch.isfinite(t) for t in losses.values())
    losses["total"].backward()
    assert all(o.grad.dtype == torch.bfloat16 for o in outs.values())


def test_aeloss_names_the_head_whose_target_does_not_fit():
    outs, targets = _outputs_and_targets(categories=3)
    targets["ct_heatmap"] = torch.zeros(2, 6, 8, 8)
    with pytest.raises(ValueError) as error:
        AELoss()([outs], targets)
    message = str(error.value)
    assert "ct_heat" in message and "(2, 3, 8, 8)" in message and "(2, 6, 8, 8)" in message
    assert "db.categories" in message


def test_size_and_box_class_losses():
    outs, targets = _outputs_and_targets()
    mask = targets["tag_mask"]
    true_sizes = torch.rand(2, 5, 2)
    outs["ct_size"] = (true_sizes + 0.5).requires_grad_()     # every size off by 0.5
    labels = torch.full((2, 3), -1, dtype=torch.long)
    labels[0, :2] = torch.tensor([4, 1])                      # two boxes, one empty image
    logits = torch.zeros(2, 3, 6)
    logits[0, 0, 4] = logits[0, 1, 1] = 10.0                  # both right, sure
    outs["box_cls"] = logits.requires_grad_()
    targets.update(ct_size=true_sizes, box_classes=labels)
    losses = AELoss(size_weight=2.0, class_weight=1.0)([outs], targets)
    # L1 of 0.5 on each of 2 values per object, per object: 1.0, weighted 2
    assert losses["size"].item() == pytest.approx(2 * 0.5 * 2 * mask.sum().item() / mask.sum().item(), rel=1e-3)
    assert losses["class"].item() == pytest.approx(-torch.log_softmax(logits[0, 0], 0)[4].item(), rel=1e-3)
    wrong = labels.clone()
    wrong[0, 1] = 0                                           # one box of another class
    assert AELoss()([outs], {**targets, "box_classes": wrong})["class"] > losses["class"]
    with pytest.raises(ValueError, match="boxes_per_image"):
        AELoss()([outs], {**targets, "box_classes": labels[:, :2]})
