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

With `db.classes_from` "boxes" the centres carry no class (one channel,
class 0): any centre confirms a box, which the box classifier names later
(test/kp_detection.py).

With `db.center_size` every centre also predicts its object's width and
height, and it confirms only a box whose width and height are within a
factor `db.size_tolerance` of its prediction. On a grid of problems a
top-left corner of one row and a bottom-right corner two rows down make a box
whose central region holds the middle problem's centre; its size does not.

Everything here is in image pixels, after every scale and flip has been
mapped back, so centres found at any test scale confirm boxes of every scale.
"""

from __future__ import annotations

import numpy as np

# detection columns (the layout of models.py_utils.kp_utils._decode)
X1, Y1, X2, Y2, SCORE, TL_SCORE, BR_SCORE, CLASS = range(8)
# centre columns (C_WIDTH, C_HEIGHT only with db.center_size)
CX, CY, C_CLASS, C_SCORE, C_WIDTH, C_HEIGHT = range(6)

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
    centers: (M, 4) x, y, class, score in image pixels (M, 6 with the
    predicted width and height).
    Returns (N', 8), the confirmed boxes with their new score (and class).
    """
    detections = detections[detections[:, SCORE] > -1]
    if len(detections) == 0 or len(centers) == 0:
        return np.zeros((0, detections.shape[1]), dtype=np.float32)

    regions = central_regions(detections[:, :4], cfg.db.center_region_area,
                              cfg.db.center_region_small_n, cfg.db.center_region_large_n)
    size_limit = None
    if cfg.db.center_size:
        if centers.shape[1] <= C_HEIGHT:
            raise ValueError("db.center_size is set but the centres carry no predicted size: "
                             "the network has no size head (was it trained with center_size?)")
        size_limit = np.log(cfg.db.size_tolerance)
    if not cfg.db.class_agnostic_corners:
        return _confirm(detections, regions, centers, size_limit, same_class=True)

    kept = []
    for category in np.unique(centers[:, C_CLASS]):
        of_class = centers[centers[:, C_CLASS] == category]
        confirmed = _confirm(detections, regions, of_class, size_limit, same_class=False)
        confirmed[:, CLASS] = category
        kept.append(confirmed)
    return np.concatenate(kept, axis=0)


def _pairs(regions, centers):
    """(box, centre) index pairs whose centre lies strictly between the left and
    right of the box's central region, in chunks of at most _MAX_PAIRS pairs:
    the centres sorted by x, each region's centres are a range of them, so the
    work grows with the pairs that can match, not with boxes x centres."""
    order = np.argsort(centers[:, CX], kind="stable")
    xs = centers[order, CX]
    first = np.searchsorted(xs, regions[:, 0], side="right")     # x > left
    end = np.searchsorted(xs, regions[:, 2], side="left")        # x < right
    counts = np.maximum(end - first, 0)
    totals = np.cumsum(counts)
    start = 0
    while start < len(regions):
        stop = max(start + 1, int(np.searchsorted(totals, totals[start] - counts[start]
                                                  + _MAX_PAIRS, side="right")))
        part_counts = counts[start:stop]
        boxes = np.repeat(np.arange(start, stop), part_counts)
        within = np.arange(len(boxes)) - np.repeat(np.cumsum(part_counts) - part_counts, part_counts)
        yield boxes, order[np.repeat(first[start:stop], part_counts) + within]
        start = stop


def _confirm(detections, regions, centers, size_limit, same_class):
    """The boxes with a centre strictly inside their central region (of the
    box's class when `same_class`; with a predicted size within `size_limit`,
    a log ratio, of the box's when given), rescored with the best such centre."""
    best_score = np.full(len(detections), -np.inf, dtype=np.float64)
    for boxes, found in _pairs(regions, centers):
        cy = centers[found, CY]
        inside = (cy > regions[boxes, 1]) & (cy < regions[boxes, 3])
        if same_class:
            inside &= centers[found, C_CLASS] == detections[boxes, CLASS]
        if size_limit is not None:
            for side, (low, high) in ((C_WIDTH, (X1, X2)), (C_HEIGHT, (Y1, Y2))):
                extent = np.maximum(detections[boxes, high] - detections[boxes, low], 1e-6)
                predicted = np.maximum(centers[found, side], 1e-6)
                inside &= np.abs(np.log(extent / predicted)) <= size_limit
        np.maximum.at(best_score, boxes[inside], centers[found[inside], C_SCORE])

    confirmed = np.isfinite(best_score)
    kept = detections[confirmed].copy()
    kept[:, SCORE] = (kept[:, TL_SCORE] + kept[:, BR_SCORE] + best_score[confirmed]) / 3
    return kept.astype(np.float32, copy=False)
