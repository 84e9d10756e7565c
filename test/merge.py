"""Merging the detections of every test scale and flip into the final boxes of
one image: per-class (soft-)NMS from external/nms.py, as CornerNet/CenterNet
do at test time (Bodla et al. 2017, "Soft-NMS"; the weighted box merge of
CornerNet's soft_nms_merge), then the best `db.max_per_image` of all classes.

Settings: `db.merge_bbox` picks soft_nms_merge (with `db.weight_exp`) over
soft_nms; `db.nms_algorithm` the method ("nms", "linear_soft_nms",
"exp_soft_nms"); `db.nms_threshold` the IoU threshold Nt; `db.nms_sigma` the
gaussian width of exp_soft_nms;
`db.score_threshold` the score below which (soft-)NMS drops a box.

With `db.classes_from` "boxes" every box has class 0 here (the centres
carry none), so suppression runs once over all boxes; `by_class_probabilities`
then reports each kept box under its `db.classes_per_box` likeliest
categories of the box classifier, scored box score x probability: the best
category ranks the box, the others keep it findable for AP when the best one
is wrong.
"""

from __future__ import annotations

import numpy as np

from external import nms as external_nms

from .center_check import CLASS

# columns of a final detection
FINAL_COLUMNS = ("x1", "y1", "x2", "y2", "score", "class")


def empty_detections() -> np.ndarray:
    return np.zeros((0, len(FINAL_COLUMNS)), dtype=np.float32)


def suppress_class(boxes: np.ndarray, cfg) -> np.ndarray:
    """(N, D >= 7) x1, y1, x2, y2, score, tl, br, ... of one class -> the rows
    (soft-)NMS keeps, whole."""
    if len(boxes) == 0:
        return boxes
    boxes = np.ascontiguousarray(boxes, dtype=np.float32)
    db = cfg.db
    if db.merge_bbox:
        kept = external_nms.soft_nms_merge(boxes, Nt=db.nms_threshold, method=db.nms_algorithm,
                                           sigma=db.nms_sigma, threshold=db.score_threshold,
                                           weight_exp=db.weight_exp)
    else:
        kept = external_nms.soft_nms(boxes, Nt=db.nms_threshold, method=db.nms_algorithm,
                                     sigma=db.nms_sigma, threshold=db.score_threshold)
    return np.asarray(kept, dtype=np.float32).reshape(-1, boxes.shape[1])


def merge_detections(detections: np.ndarray, cfg) -> np.ndarray:
    """(N, 8) centre-checked boxes of every scale -> (N', 6) x1, y1, x2, y2, score, class.

    At most `db.max_per_image` rows, best first.
    """
    if len(detections) == 0:
        return empty_detections()
    classes = detections[:, CLASS].astype(np.int64)
    merged = []
    for category in np.unique(classes):
        kept = suppress_class(detections[classes == category, :7], cfg)
        if len(kept):
            rows = np.empty((len(kept), 6), dtype=np.float32)
            rows[:, :5] = kept[:, :5]
            rows[:, 5] = category
            merged.append(rows)
    if not merged:
        return empty_detections()
    merged = np.concatenate(merged)
    # stable sort: equal scores keep class order, so results are reproducible
    order = np.argsort(-merged[:, 4], kind="stable")[:cfg.db.max_per_image]
    return merged[order]


def by_class_probabilities(kept: np.ndarray, probabilities: np.ndarray, cfg) -> np.ndarray:
    """Final boxes (N, 6) and their category probabilities (N, C) -> (N', 6)
    rows, one per box and likely category, best first."""
    if len(kept) == 0:
        return empty_detections()
    per_box = min(cfg.db.classes_per_box, probabilities.shape[1])
    ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, :per_box]  # (N, per_box)
    rows = np.empty((len(kept), per_box, 6), dtype=np.float32)
    rows[:, :, :4] = kept[:, None, :4]
    rows[:, :, 4] = kept[:, 4, None] * np.take_along_axis(probabilities, ranked, axis=1)
    rows[:, :, 5] = ranked
    rows = rows.reshape(-1, 6)
    rows = rows[rows[:, 4] >= cfg.db.score_threshold]
    order = np.argsort(-rows[:, 4], kind="stable")[:cfg.db.max_per_image]
    return rows[order]
