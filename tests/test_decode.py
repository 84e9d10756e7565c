"""`_decode` (models/py_utils/kp_utils.py) on hand-made heatmaps: planted
corner and centre peaks with tags and offsets come back as exactly the
planted boxes, classes and scores; every rejected pair scores -1."""

import pytest
import torch

from models.py_utils.kp_utils import _decode

CATEGORIES, SIZE = 6, 64
BACKGROUND = -10.0

# (class, tl (x, y), br (x, y), tag, tl logit, br logit)
OBJECTS = [
    (0, (5, 6), (20, 30), 0.0, 3.0, 2.0),
    (2, (30, 10), (60, 25), 3.0, 2.5, 4.0),
    (5, (12, 40), (50, 60), 6.0, 1.5, 1.0),
]
# corners that must not pair with anything of the right class
LONE_TOP_LEFTS = [(1, (40, 40), 9.0, 0.5), (2, (61, 30), 3.0, 0.8)]  # class 1 alone; class 2 below its br
LONE_BOTTOM_RIGHTS = [(0, (25, 35), 20.0, 0.7),   # class 0 but its tag is far from object 0's
                      (5, (8, 33), 6.0, 0.6)]     # class 5, object 5's tag, but left of its tl
TL_OFFSET, BR_OFFSET, CT_OFFSET = (0.25, 0.5), (0.75, 0.125), (0.5, 0.25)


def planted_maps():
    heat = lambda: torch.full((1, CATEGORIES, SIZE, SIZE), BACKGROUND)  # noqa: E731
    tl_heat, br_heat, ct_heat = heat(), heat(), heat()
    tl_tag, br_tag = torch.zeros(1, 1, SIZE, SIZE), torch.zeros(1, 1, SIZE, SIZE)
    tl_regr, br_regr, ct_regr = (torch.zeros(1, 2, SIZE, SIZE) for _ in range(3))
    for cls, (x1, y1), (x2, y2), tag, tl_logit, br_logit in OBJECTS:
        tl_heat[0, cls, y1, x1], br_heat[0, cls, y2, x2] = tl_logit, br_logit
        tl_tag[0, 0, y1, x1], br_tag[0, 0, y2, x2] = tag, tag
        tl_regr[0, :, y1, x1] = torch.tensor(TL_OFFSET)
        br_regr[0, :, y2, x2] = torch.tensor(BR_OFFSET)
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        ct_heat[0, cls, cy, cx] = (tl_logit + br_logit) / 2
        ct_regr[0, :, cy, cx] = torch.tensor(CT_OFFSET)
    for cls, (x, y), tag, logit in LONE_TOP_LEFTS:
        tl_heat[0, cls, y, x], tl_tag[0, 0, y, x] = logit, tag
        tl_regr[0, :, y, x] = torch.tensor(TL_OFFSET)
    for cls, (x, y), tag, logit in LONE_BOTTOM_RIGHTS:
        br_heat[0, cls, y, x], br_tag[0, 0, y, x] = logit, tag
        br_regr[0, :, y, x] = torch.tensor(BR_OFFSET)
    # a centre away from every box
    ct_heat[0, 3, 2, 60] = 0.2
    return tl_heat, br_heat, tl_tag, br_tag, tl_regr, br_regr, ct_heat, ct_regr


def score(logit):
    return torch.sigmoid(torch.tensor(logit, dtype=torch.float32))


def all_planted_pairs(ae_threshold):
    """Every (top-left, bottom-right) pair of planted corners with the
    decoder's output row, worked out one by one."""
    tls = [(c, tl, tag, lt) for c, tl, _, tag, lt, _ in OBJECTS] + LONE_TOP_LEFTS
    brs = [(c, br, tag, lb) for c, _, br, tag, _, lb in OBJECTS] + LONE_BOTTOM_RIGHTS
    rows = []
    for tl_cls, (x1, y1), tl_tag, tl_logit in tls:
        for br_cls, (x2, y2), br_tag, br_logit in brs:
            box = (x1 + TL_OFFSET[0], y1 + TL_OFFSET[1], x2 + BR_OFFSET[0], y2 + BR_OFFSET[1])
            tl_score, br_score = score(tl_logit), score(br_logit)
            rejected = (tl_cls != br_cls or abs(tl_tag - br_tag) > ae_threshold
                        or box[2] < box[0] or box[3] < box[1])
            pair_score = -1.0 if rejected else ((tl_score + br_score) / 2).item()
            rows.append((*box, pair_score, tl_score.item(), br_score.item(), float(tl_cls)))
    return rows


def expected_boxes():
    rows = []
    for cls, (x1, y1), (x2, y2), _, tl_logit, br_logit in OBJECTS:
        tl_score, br_score = score(tl_logit), score(br_logit)
        rows.append((x1 + TL_OFFSET[0], y1 + TL_OFFSET[1], x2 + BR_OFFSET[0], y2 + BR_OFFSET[1],
                     ((tl_score + br_score) / 2).item(), tl_score.item(), br_score.item(), float(cls)))
    return sorted(rows, key=lambda r: -r[4])


def test_k5_returns_every_pair_with_rejections_at_minus_one():
    detections, center = _decode(*planted_maps(), K=5, kernel=3, ae_threshold=0.5, num_dets=1000)
    assert detections.shape == (1, 25, 8) and detections.dtype == torch.float32
    got = sorted(tuple(row) for row in detections[0].tolist())
    assert got == sorted(all_planted_pairs(ae_threshold=0.5))
    # best first: the three planted boxes, exactly
    assert [tuple(r) for r in detections[0, :3].tolist()] == expected_boxes()
    assert (detections[0, 3:, 4] == -1).all()
    assert center.shape == (1, 5, 4)


def test_k100_finds_the_planted_boxes_and_centres():
    detections, center = _decode(*planted_maps(), K=100, kernel=1, ae_threshold=0.5, num_dets=1000)
    assert detections.shape == (1, 1000, 8) and center.shape == (1, 100, 4)
    assert [tuple(r) for r in detections[0, :3].tolist()] == expected_boxes()
    # everything else is rejected or pairs a planted corner with background (score < 0.5)
    assert (detections[0, 3:, 4] < 0.5).all()
    centres = [(float((x1 + x2) // 2) + CT_OFFSET[0], float((y1 + y2) // 2) + CT_OFFSET[1], float(cls),
                score((tl + br) / 2).item())
               for cls, (x1, y1), (x2, y2), _, tl, br in OBJECTS]
    assert sorted(tuple(r) for r in center[0, :3].tolist()) == sorted(centres)


def test_ae_threshold_decides_tag_rejections():
    # at threshold 25, object 0's top-left pairs with the far-tagged bottom-right of class 0
    detections, _ = _decode(*planted_maps(), K=5, kernel=3, ae_threshold=25, num_dets=25)
    got = sorted(tuple(row) for row in detections[0].tolist())
    assert got == sorted(all_planted_pairs(ae_threshold=25))
    x1, y1 = OBJECTS[0][1]
    x2, y2 = LONE_BOTTOM_RIGHTS[0][1]
    far = (x1 + TL_OFFSET[0], y1 + TL_OFFSET[1], x2 + BR_OFFSET[0], y2 + BR_OFFSET[1])
    assert any(tuple(r[:4]) == far and r[4] > 0 for r in got)


def test_nms_kernel_drops_a_weaker_neighbour():
    maps = list(planted_maps())
    maps[0][0, 0, 6, 6] = 2.9  # beside object 0's top-left (logit 3.0), same class
    maps[4][0, :, 6, 6] = torch.tensor([0.375, 0.0])
    with_nms, _ = _decode(*maps, K=6, kernel=3, ae_threshold=0.5, num_dets=36)
    without, _ = _decode(*maps, K=6, kernel=1, ae_threshold=0.5, num_dets=36)
    x_neighbour = 6.375
    assert not (with_nms[0, :, 0] == x_neighbour).any()
    assert (without[0, :, 0] == x_neighbour).any()


def test_low_precision_maps_decode_to_float32():
    maps = [m.to(torch.bfloat16) for m in planted_maps()]
    detections, center = _decode(*maps, K=5, kernel=3, ae_threshold=0.5, num_dets=25)
    assert detections.dtype == center.dtype == torch.float32
    assert detections[0, :3, 7].tolist() == [r[7] for r in expected_boxes()]


def test_batches_decode_each_image_on_its_own():
    one = planted_maps()
    empty = [torch.full_like(m, BACKGROUND) if i in (0, 1, 6) else torch.zeros_like(m)
             for i, m in enumerate(one)]
    both = [torch.cat([a, b]) for a, b in zip(empty, one)]
    detections, _ = _decode(*both, K=5, kernel=3, ae_threshold=0.5, num_dets=25)
    alone, _ = _decode(*one, K=5, kernel=3, ae_threshold=0.5, num_dets=25)
    assert torch.equal(detections[1, :3], alone[0, :3])
    assert (detections[0, :, 4] < 0.01).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_decode_on_cuda_matches_cpu():
    maps = planted_maps()
    cpu, _ = _decode(*maps, K=5, kernel=3, ae_threshold=0.5, num_dets=25)
    cuda, center = _decode(*[m.cuda() for m in maps], K=5, kernel=3, ae_threshold=0.5, num_dets=25)
    assert cuda.is_cuda and center.is_cuda
    # sigmoid may differ in the last bit between devices
    assert torch.allclose(cuda[0, :3].cpu(), cpu[0, :3], rtol=1e-6, atol=1e-6)


def test_channels_last_maps_decode_the_same():
    maps = planted_maps()
    nhwc = [m.contiguous(memory_format=torch.channels_last) for m in maps]
    expected = _decode(*maps, K=5, kernel=3, ae_threshold=0.5, num_dets=25)
    got = _decode(*nhwc, K=5, kernel=3, ae_threshold=0.5, num_dets=25)
    assert torch.equal(got[0][0, :3], expected[0][0, :3]) and torch.equal(got[1], expected[1])
