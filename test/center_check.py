"""The centre-point check of CenterNet's keypoint triplets (Duan et al. 2019,
"CenterNet: Keypoint Triplets for Object Detection", section 3.1).

A box made of a top-left and a bottom-right corner is kept only when a centre
keypoint of the same class lies strictly inside the box's central region:
the middle 1/n of the box in each direction, with n = `db.center_region_small_n`
(3 in the paper) for boxes of area <= `db.center_region_area` and
n = `db.center_region_large_n` (5) for larger ones, so that large boxes, whose
corners are less reliable, need a centre closer to their middle. A kept box
scores the mean of its three keypoints, (tl + br + centre) / 3.

When several centres match one box, the best-scoring one is used (the
original took the first by index, which depends on the order of the top-k
search rather than on the evidence). With `db.class_agnostic_corners` the
corners carry no class and the centres name it: a box is kept once for every
class that has a centre inside its central region, scored with the best
centre of that class. A page whose operators the network still confuses then
yields the same box under each class it considers, ranked by the centre's
confidence, as a detector with per-class box scores (FCOS, RetinaNet) does,
instead of a single guess that is wrong as often as not.

Everything here is in image pixels, after every scale and flip has been
mapped back, so centres found at any test scale confirm boxes of every scale.
"""

from __future__ import annotations

import numpy as np

# detection columns (the layout of models.py_utils.kp_utils._decode)
X1, Y1, X2, Y2, SCORE, TL_SCORE, BR_SCORE, CLASS = range(8)
# centre columns
CX, CY, C_CLASS, C_SCORE = range(4)

# Bound on the (centres x boxes) comparison matrix built at once, so that many
# scales with a large top_k do not need gigabytes.
_MAX_PAIRS = 1 << 22


def central_regions(boxes: np.ndarray, area_limit: float, small_n: int, large_n: int) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 -> (N, 4) left, top, right, bottom of the middle 1/n."""
    widths = boxes[:, X2] - boxes[:, X1]
    heights = boxes[:, Y2] - boxes[:, Y1]
    n = np.where(widths * heights <= area_limit, small_n, large_n).astype(boxes.dtype)
    # the region starts (n - 1) / 2 of n equal parts in from each side
    margin = (n - 1) / (2 * n)
    return np.stack([boxes[:, X1] + widths * margin, boxes[:, Y1] + heights * margin,
                     boxes[:, X2] - widths * margin, boxes[:, Y2] - heights * margin], axis=1)


def center_check(detections: np.ndarray, centers: np.ndarray, cfg) -> np.ndarray:
    """Keep the boxes confirmed by a centre; rescore them (tl + br + ct) / 3.

    detections: (N, 8) x1, y1, x2, y2, score, tl_score, br_score, class, in
    image pixels; rows with score -1 (rejected pairs) are dropped.
    centers: (M, 4) x, y, class, score in image pixels.
    Returns (N', 8), the confirmed boxes with their new score (and class).
    """
    detections = detections[detections[:, SCORE] > -1]
    if len(detections) == 0 or len(centers) == 0:
        return np.zeros((0, 8), dtype=np.float32)

    regions = central_regions(detections[:, :4], cfg.db.center_region_area,
                              cfg.db.center_region_small_n, cfg.db.center_region_large_n)
    if not cfg.db.class_agnostic_corners:
        same_class = centers[:, C_CLASS, None] == detections[None, :, CLASS]
        return _confirm(detections, regions, centers, lambda part: same_class[:, part])

    kept = []
    for category in np.unique(centers[:, C_CLASS]):
        of_class = centers[centers[:, C_CLASS] == category]
        confirmed = _confirm(detections, regions, of_class, None)
        confirmed[:, CLASS] = category
        kept.append(confirmed)
    return np.concatenate(kept, axis=0)


def _confirm(detections, regions, centers, class_match):
    """The boxes with a centre inside their region (and of their class when
    `class_match(part)` gives the (M, n) class agreement), rescored."""
    best_score = np.full(len(detections), -np.inf, dtype=np.float64)
    chunk = max(1, _MAX_PAIRS // len(centers))
    cx, cy = centers[:, CX, None], centers[:, CY, None]  # (M, 1)
    for start in range(0, len(detections), chunk):
        part = slice(start, start + chunk)
        left, top, right, bottom = (regions[part, i][None, :] for i in range(4))  # (1, n)
        inside = (cx > left) & (cx < right) & (cy > top) & (cy < bottom)  # (M, n)
        if class_match is not None:
            inside &= class_match(part)
        scores = np.where(inside, centers[:, C_SCORE, None], -np.inf)  # (M, n)
        best_score[part] = scores.max(axis=0)

    confirmed = np.isfinite(best_score)
    kept = detections[confirmed].copy()
    kept[:, SCORE] = (kept[:, TL_SCORE] + kept[:, BR_SCORE] + best_score[confirmed]) / 3
    return kept.astype(np.float32, copy=False)
