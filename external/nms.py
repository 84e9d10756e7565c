"""Soft-NMS and soft-NMS with box merging: the per-class suppression of CenterNet's tester.

Soft-NMS is Bodla et al. 2017, "Soft-NMS: Improving Object Detection With One Line of
Code"; the merge variant is from CornerNet / CenterNet (Duan et al. 2019, "CenterNet:
Keypoint Triplets for Object Detection", external/nms.pyx of the original code).

    from external.nms import soft_nms, soft_nms_merge
    kept = soft_nms(boxes, Nt=0.5, method="exp_soft_nms")
    kept = soft_nms_merge(boxes, Nt=0.5, method=cfg.db.nms_algorithm, weight_exp=cfg.db.weight_exp)

boxes: (N, D) [x1, y1, x2, y2, score, ...], D >= 5; soft_nms_merge needs D >= 7 with
columns 5 and 6 the top-left and bottom-right corner scores. The result is a new
array of the kept rows, whole rows (every column travels with its box), in the order
they were selected, which is descending final score; the input is left untouched.

The rules, shared by the compiled module (external/_cpu_nms.pyx) and the numpy
fallback (external/nms_numpy.py):
- Boxes in play start as every box with score >= threshold. Repeatedly the box in
  play with the highest current score is kept, with that score; among equal scores
  the earliest row of the input wins.
- Every other box in play is decayed by a weight of its IoU with the kept box, then
  leaves play if its score fell below threshold. IoU uses inclusive pixel
  coordinates (width x2 - x1 + 1), and boxes that do not overlap have IoU 0.
  method 0 / "nms":             weight 0 if IoU > Nt else 1 (hard NMS)
  method 1 / "linear_soft_nms": weight 1 - IoU if IoU > Nt else 1
  method 2 / "exp_soft_nms":    weight exp(-IoU^2 / sigma)
- soft_nms_merge also moves each kept box to the average of itself (weight 1) and the
  boxes in play that overlap it at that moment, each with merge weight
  (1 - weight)^weight_exp, times the top-left score (column 5) for x1, y1 and the
  bottom-right score (column 6) for x2, y2. Boxes are compared by their own,
  unmerged coordinates. If those corner scores sum to 0 the box keeps its coordinates.
- Arithmetic is float64; the result has the input's float dtype (float32 otherwise).

How these rules differ from the original's nms.pyx: docs/differences-from-the-original.md.
"""
import math
import numbers
import sys

import numpy as np

from external import nms_numpy

try:
    import external._cpu_nms as _compiled
    _compiled_import_error = None
except ImportError as error:  # not built (or built for another Python): use the fallback
    _compiled = None
    _compiled_import_error = error

METHODS = {"nms": 0, "linear_soft_nms": 1, "exp_soft_nms": 2}

_notice_shown = False


def soft_nms(boxes, Nt, method, sigma=0.5, threshold=0.001):
    """Soft-NMS of (N, >=5) boxes [x1, y1, x2, y2, score, ...]; returns the kept rows (new array).

    Nt: IoU threshold (>= 0) of hard and linear NMS; method: 0/1/2 or
    "nms"/"linear_soft_nms"/"exp_soft_nms"; sigma: gaussian width (> 0);
    threshold: scores below it are discarded (> 0).
    """
    return _run(boxes, Nt, method, sigma, threshold, merge=False, weight_exp=0.0)


def soft_nms_merge(boxes, Nt, method, sigma=0.5, threshold=0.001, weight_exp=6):
    """soft_nms, and each kept box becomes the weighted average of itself and the boxes it suppresses.

    boxes: (N, >=7) [x1, y1, x2, y2, score, tl_score, br_score, ...]; weight_exp (>= 0,
    may be inf) sharpens the merge weights (1 - weight)^weight_exp: the larger, the less
    softly suppressed boxes pull on the kept one.
    """
    return _run(boxes, Nt, method, sigma, threshold, merge=True, weight_exp=weight_exp)


def using_compiled():
    """True when the compiled module runs soft-NMS, False when the numpy fallback does."""
    return _compiled is not None


def _run(boxes, Nt, method, sigma, threshold, merge, weight_exp):
    name = "soft_nms_merge" if merge else "soft_nms"
    boxes = _checked_boxes(boxes, name, min_columns=7 if merge else 5)
    method_id = _method_id(method, name)
    Nt = _checked_number(Nt, "Nt", name, low=0.0)
    sigma = _checked_number(sigma, "sigma", name, low=0.0, low_open=True)
    threshold = _checked_number(threshold, "threshold", name, low=0.0, low_open=True,
                                why=" (a zero weight must discard a box)")
    weight_exp = _checked_number(weight_exp, "weight_exp", name, low=0.0, allow_inf=True)

    out_dtype = boxes.dtype if boxes.dtype.kind == "f" else np.dtype(np.float32)
    if boxes.shape[0] == 0:
        return np.zeros(boxes.shape, dtype=out_dtype)
    work = np.ascontiguousarray(boxes, dtype=np.float64)
    keep, scores, merged = _select_function()(work, Nt, method_id, sigma, threshold, merge, weight_exp)
    kept = boxes[keep].astype(out_dtype, copy=False)  # fancy indexing copies every column
    kept[:, 4] = scores
    if merge:
        kept[:, :4] = merged
    return kept


def _select_function():
    global _notice_shown
    if _compiled is not None:
        return _compiled.select
    if not _notice_shown:
        _notice_shown = True
        missing = getattr(_compiled_import_error, "name", None) == "external._cpu_nms"
        reason = "is not built" if missing else f"does not import ({_compiled_import_error})"
        print(f"external/nms.py: the compiled soft-NMS (external/_cpu_nms) {reason}; using the slower "
              "numpy fallback. Build it with: python setup_cpu_nms.py build_ext --inplace",
              file=sys.stderr)
    return nms_numpy.select


def _checked_boxes(boxes, name, min_columns):
    boxes = np.asarray(boxes)
    if boxes.dtype.kind not in "fiu":
        raise ValueError(f"{name}: boxes must be a numeric array, got dtype {boxes.dtype}")
    if boxes.ndim != 2 or boxes.shape[1] < min_columns:
        columns = "x1, y1, x2, y2, score, tl_score, br_score" if min_columns == 7 else "x1, y1, x2, y2, score"
        raise ValueError(f"{name}: boxes must have shape (N, >= {min_columns}) with columns "
                         f"[{columns}, ...], got shape {boxes.shape}")
    used = boxes[:, :min_columns]
    if used.dtype.kind == "f" and not np.isfinite(used).all():
        row, column = np.argwhere(~np.isfinite(used))[0]
        raise ValueError(f"{name}: boxes[{row}, {column}] is {used[row, column]}; "
                         f"the first {min_columns} columns must be finite")
    return boxes


def _method_id(method, name):
    if isinstance(method, str) and method in METHODS:
        return METHODS[method]
    if isinstance(method, numbers.Integral) and not isinstance(method, bool) and method in METHODS.values():
        return int(method)
    valid = ", ".join(f"{method_id} or {method_name!r}" for method_name, method_id in METHODS.items())
    raise ValueError(f"{name}: unknown method {method!r}; valid: {valid}")


def _checked_number(value, what, name, low, low_open=False, allow_inf=False, why=""):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: {what} must be a number, got {value!r}")
    value = float(value)
    in_range = value > low if low_open else value >= low
    if math.isnan(value) or not in_range or (math.isinf(value) and not allow_inf):
        bound = f"> {low}" if low_open else f">= {low}"
        kind = "a number" if allow_inf else "a finite number"
        raise ValueError(f"{name}: {what} must be {kind} {bound}{why}, got {value!r}")
    return value
