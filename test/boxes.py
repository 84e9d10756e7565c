"""Box geometry at test time, in one place: IoU, greedy one-to-one matching
and the "one box per place" rule. Boxes are rows x1, y1, x2, y2 in pixels,
continuous coordinates (a box's width is x2 - x1).

    overlap = iou(found, truth)                      # (F, T)
    pairs = match_greedy(overlap, 0.5)               # [(f, t), ...], best overlap first
    rows = one_per_place(detections, 0.1, 0.5)       # the best row of each place

Who uses what:
- the debug pictures (test/visualize.py) and grading (reader/grading.py
  select_boxes) show and grade one box per place (`one_per_place`): the
  decoder may report one place under several categories, which results.json
  keeps for AP;
- grading against the ground truth (reader/grading.py match_boxes) matches
  on `iou`;
- the confusion matrix (test/confusion.py) matches on `coco_iou`, the IoU
  COCOeval scores AP50 with, so that its counts and AP50 agree at the
  threshold to the last bit; ties between equal overlaps go to the better
  score there (`match_greedy`'s `column_scores`).

The soft-NMS (external/nms_numpy.py and the compiled external/_cpu_nms.pyx)
keeps its own IoU: inclusive pixel coordinates (width x2 - x1 + 1, the
convention of the original's NMS), one box against those overlapping it,
written with the compiled module's operations in its order so that the
fallback and the compiled code agree.
"""

from __future__ import annotations

import numpy as np

# Boxes overlapping a better-scoring one by more than this IoU are the same
# place reported again (db.same_place_iou; its default).
SAME_PLACE_IOU = 0.5

_EPS = 1e-9  # keeps a zero-area union from dividing by zero


def _as_boxes(boxes) -> np.ndarray:
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) intersection areas of (A, 4) and (B, 4) boxes."""
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(width, 0, None) * np.clip(height, 0, None)


def area(boxes) -> np.ndarray:
    """(N,) areas of (N, 4) boxes."""
    boxes = _as_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def iou(a, b) -> np.ndarray:
    """(A, B) intersection over union of boxes `a` (A, 4) and `b` (B, 4); 0
    where they do not overlap."""
    a, b = _as_boxes(a), _as_boxes(b)
    inter = _intersection(a, b)
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, _EPS)


def share_inside(a, b) -> np.ndarray:
    """(A, B) share of each box of `a` that lies inside each box of `b`
    (intersection over a's own area)."""
    a, b = _as_boxes(a), _as_boxes(b)
    return _intersection(a, b) / np.maximum(area(a), _EPS)[:, None]


def coco_iou(a, b) -> np.ndarray:
    """(A, B) IoU of boxes `a` and `b` as pycocotools computes it
    (`pycocotools.mask.iou`, from x, y, width, height), the IoU of COCOeval."""
    from pycocotools import mask as mask_utils

    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))

    def xywh(boxes):
        boxes = _as_boxes(boxes).copy()
        boxes[:, 2:] -= boxes[:, :2]
        return boxes

    # mask.iou(detections, ground truth, iscrowd) gives (len(b), len(a))
    overlap = mask_utils.iou(xywh(b), xywh(a), [0] * len(a))
    return np.asarray(overlap, dtype=np.float64).reshape(len(b), len(a)).T


def match_greedy(overlap, threshold: float, column_scores=None) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs of the (R, C) `overlap` matrix whose
    overlap is >= threshold, taken greedily: best overlap first, each row and
    each column used once. Among equal overlaps the column with the higher
    `column_scores` (C,) goes first when they are given, then the earlier
    row, then the earlier column. The pairs come in the order they were taken."""
    overlap = np.asarray(overlap, dtype=np.float64)
    rows, columns = np.nonzero(overlap >= threshold)   # row-major: earlier row, then column
    keys = (-overlap[rows, columns],)
    if column_scores is not None:
        keys = (-np.asarray(column_scores, dtype=np.float64)[columns],) + keys
    order = np.lexsort(keys)   # stable; the last key sorts first
    pairs, rows_used, columns_used = [], set(), set()
    for r, c in zip(rows[order].tolist(), columns[order].tolist()):
        if r in rows_used or c in columns_used:
            continue
        rows_used.add(r)
        columns_used.add(c)
        pairs.append((r, c))
    return pairs


def one_per_place(detections, threshold: float, same_place_iou: float = SAME_PLACE_IOU) -> np.ndarray:
    """Rows (x1, y1, x2, y2, score, class) scoring >= threshold, best first,
    without those overlapping a better kept row by IoU > same_place_iou: a
    place reported under several categories keeps its best one."""
    detections = np.asarray(detections, dtype=np.float64).reshape(-1, 6)
    shown = detections[detections[:, 4] >= threshold]
    shown = shown[np.argsort(-shown[:, 4], kind="stable")]
    kept = []
    for i in range(len(shown)):
        if kept and (iou(shown[i:i + 1, :4], shown[kept, :4]) > same_place_iou).any():
            continue
        kept.append(i)
    return shown[kept]
