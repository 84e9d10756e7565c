"""Soft-NMS selection in numpy: the fallback used when external/_cpu_nms is not built.

Implements the same `select` as the Cython module external/_cpu_nms.pyx (soft-NMS,
Bodla et al. 2017, "Soft-NMS: Improving Object Detection With One Line of Code",
with CenterNet's weighted box merge, Duan et al. 2019); external/nms.py documents the
rules both follow and turns the result into rows. The selection loop is sequential
by nature (each pick depends on the scores the previous picks decayed); within one
pick, the overlap test over every box in play, and the IoU, decay, merge and
discards over the overlapping ones, are one numpy expression each. Arithmetic is
float64 with the Cython code's operations in the Cython code's order (only the merge
sums may add up in another order), so the two agree to float32 rounding.
"""
import numpy as np

# Methods, as external/nms.py maps the config names onto them.
HARD, LINEAR, GAUSSIAN = 0, 1, 2

# Rows of the working array, which holds one column per box still in play.
_X1, _Y1, _X2, _Y2, _AREA, _SCORE, _TL, _BR = range(8)
# The corner score that weighs each coordinate in the merge: x1, y1 by top-left, x2, y2 by bottom-right.
_CORNER_OF = [_TL, _TL, _BR, _BR]


def select(boxes, Nt, method, sigma, threshold, merge, weight_exp):
    """Run soft-NMS over `boxes` and return what was kept, in selection order.

    boxes: float64 (N, D), D >= 5 ([x1, y1, x2, y2, score, ...]; D >= 7 with merge,
    columns 5 and 6 being the top-left and bottom-right corner scores).
    Returns (keep int64 (K,) row indices into `boxes`, scores float64 (K,) at selection,
    merged float64 (K, 4) merged x1, y1, x2, y2, or None without merge).
    """
    boxes = np.ascontiguousarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] < (7 if merge else 5):
        raise ValueError(f"select: boxes must be (N, >= {7 if merge else 5}), got {boxes.shape}")
    x1, y1, x2, y2, scores = (boxes[:, c] for c in range(5))
    # +1: coordinates are inclusive pixel indices (the Fast R-CNN / CornerNet convention).
    areas = (x2 - x1 + 1.0) * (y2 - y1 + 1.0)
    columns = [x1, y1, x2, y2, areas, scores] + ([boxes[:, 5], boxes[:, 6]] if merge else [])
    remaining = np.flatnonzero(scores >= threshold)  # (R,) ascending: ties pick the first row
    # One contiguous row per column, so that each column reads without striding.
    work = np.stack(columns)[:, remaining]  # (6 or 8, R), boxes follow `remaining`

    keep, kept_scores, merged = [], [], []
    while remaining.size:
        pos = int(np.argmax(work[_SCORE]))  # first maximum, as in the Cython loop
        chosen = work[:, pos].copy()
        keep.append(remaining[pos])
        kept_scores.append(chosen[_SCORE])

        inter_w = np.minimum(chosen[_X2], work[_X2]) - np.maximum(chosen[_X1], work[_X1]) + 1.0
        inter_h = np.minimum(chosen[_Y2], work[_Y2]) - np.maximum(chosen[_Y1], work[_Y1]) + 1.0
        # Only boxes that overlap the chosen one can change: elsewhere IoU is 0, every
        # method's weight is 1 (Nt >= 0) and the merge takes no part, as in the original.
        near = np.flatnonzero((inter_w > 0) & (inter_h > 0))
        near = near[near != pos]
        near_boxes = work[:, near]  # (columns, M)
        inter = inter_w[near] * inter_h[near]
        iou = inter / (chosen[_AREA] + near_boxes[_AREA] - inter)
        if method == HARD:
            weight = np.where(iou > Nt, 0.0, 1.0)
        elif method == LINEAR:
            weight = np.where(iou > Nt, 1.0 - iou, 1.0)
        else:
            weight = np.exp(-(iou * iou) / sigma)

        if merge:
            merge_weight = (1.0 - weight) ** weight_exp
            corner_weight = near_boxes[_CORNER_OF] * merge_weight  # (4, M)
            # The chosen box itself counts with weight 1.
            totals = chosen[_CORNER_OF] + corner_weight.sum(axis=1)
            sums = chosen[:4] * chosen[_CORNER_OF] + (near_boxes[:4] * corner_weight).sum(axis=1)
            # Zero corner scores leave nothing to average by: keep the box as it is.
            merged.append(np.where(totals > 0, sums / np.where(totals > 0, totals, 1.0), chosen[:4]))

        decayed = near_boxes[_SCORE] * weight
        work[_SCORE, near] = decayed
        survives = np.ones(work.shape[1], dtype=bool)
        survives[near[decayed < threshold]] = False
        survives[pos] = False
        work = work[:, survives]
        remaining = remaining[survives]

    keep = np.asarray(keep, dtype=np.int64)
    kept_scores = np.asarray(kept_scores, dtype=np.float64)
    if not merge:
        return keep, kept_scores, None
    return keep, kept_scores, np.asarray(merged, dtype=np.float64).reshape(-1, 4)
