# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Soft-NMS selection compiled with Cython: the fast path of external/nms.py.

Build in place with `python setup_cpu_nms.py build_ext --inplace`. Implements
soft-NMS (Bodla et al. 2017, "Soft-NMS: Improving Object Detection With One Line of
Code") with CenterNet's weighted box merge (Duan et al. 2019, "CenterNet: Keypoint
Triplets for Object Detection", external/nms.pyx of the original code). The rules
are documented in external/nms.py; external/nms_numpy.py is the same algorithm in
numpy, and the two agree to float32 rounding (tests/test_nms.py checks both against
a plain-Python reference).

Unlike the original, rows are never swapped: the boxes still in play are a list of
row indices kept in input order, so a tie in score goes to the earliest row, and the
caller gathers whole rows (every column) from the returned indices.
"""
import numpy as np

from libc.math cimport exp, pow
from libc.stdint cimport int64_t

# Methods, as external/nms.py maps the config names onto them.
cdef enum:
    HARD = 0
    LINEAR = 1
    GAUSSIAN = 2


def select(const double[:, ::1] boxes, double Nt, int method, double sigma,
           double threshold, bint merge, double weight_exp):
    """Run soft-NMS over `boxes` and return what was kept, in selection order.

    boxes: float64 C-contiguous (N, D), D >= 5 ([x1, y1, x2, y2, score, ...]; D >= 7
    with merge, columns 5 and 6 being the top-left and bottom-right corner scores).
    Returns (keep int64 (K,) row indices into `boxes`, scores float64 (K,) at selection,
    merged float64 (K, 4) merged x1, y1, x2, y2, or None without merge).
    """
    cdef Py_ssize_t num_boxes = boxes.shape[0]
    if boxes.shape[1] < (7 if merge else 5):
        raise ValueError(f"select: boxes must be (N, >= {7 if merge else 5}), "
                         f"got ({num_boxes}, {boxes.shape[1]})")

    scores_array = np.empty(num_boxes, dtype=np.float64)
    areas_array = np.empty(num_boxes, dtype=np.float64)
    remaining_array = np.empty(num_boxes, dtype=np.int64)
    keep_array = np.empty(num_boxes, dtype=np.int64)
    kept_scores_array = np.empty(num_boxes, dtype=np.float64)
    merged_array = np.empty((num_boxes, 4), dtype=np.float64)
    cdef double[::1] scores = scores_array
    cdef double[::1] areas = areas_array
    cdef int64_t[::1] remaining = remaining_array  # rows in play, in input order
    cdef int64_t[::1] keep = keep_array
    cdef double[::1] kept_scores = kept_scores_array
    cdef double[:, ::1] merged = merged_array

    cdef Py_ssize_t i, r, pos, num_remaining = 0, num_survivors, num_kept = 0
    cdef int64_t best, other
    cdef double best_score, bx1, by1, bx2, by2, barea
    cdef double inter_w, inter_h, inter, iou, weight, merge_weight
    # Merge sums; only read when merging, zeroed to keep the compiler's flow analysis quiet.
    cdef double sum_x1 = 0, sum_y1 = 0, sum_x2 = 0, sum_y2 = 0, tl_total = 0, br_total = 0

    with nogil:
        for i in range(num_boxes):
            scores[i] = boxes[i, 4]
            # +1: coordinates are inclusive pixel indices (Fast R-CNN / CornerNet).
            areas[i] = (boxes[i, 2] - boxes[i, 0] + 1.0) * (boxes[i, 3] - boxes[i, 1] + 1.0)
            if scores[i] >= threshold:
                remaining[num_remaining] = i
                num_remaining += 1

        while num_remaining > 0:
            # Strict '>' keeps the first of equal maxima.
            pos = 0
            best_score = scores[remaining[0]]
            for r in range(1, num_remaining):
                if scores[remaining[r]] > best_score:
                    best_score = scores[remaining[r]]
                    pos = r
            best = remaining[pos]
            keep[num_kept] = best
            kept_scores[num_kept] = best_score
            bx1 = boxes[best, 0]
            by1 = boxes[best, 1]
            bx2 = boxes[best, 2]
            by2 = boxes[best, 3]
            barea = areas[best]
            if merge:
                tl_total = boxes[best, 5]
                br_total = boxes[best, 6]
                sum_x1 = bx1 * tl_total
                sum_y1 = by1 * tl_total
                sum_x2 = bx2 * br_total
                sum_y2 = by2 * br_total

            # Decay every other box and compact the survivors in place, in order.
            num_survivors = 0
            for r in range(num_remaining):
                if r == pos:
                    continue
                other = remaining[r]
                inter_w = min(bx2, boxes[other, 2]) - max(bx1, boxes[other, 0]) + 1.0
                inter_h = min(by2, boxes[other, 3]) - max(by1, boxes[other, 1]) + 1.0
                if inter_w <= 0 or inter_h <= 0:
                    # IoU 0: every method's weight is 1 (Nt >= 0) and the merge takes
                    # no part, as in the original; the box stays as it is.
                    remaining[num_survivors] = other
                    num_survivors += 1
                    continue
                inter = inter_w * inter_h
                iou = inter / (barea + areas[other] - inter)
                if method == HARD:
                    weight = 0.0 if iou > Nt else 1.0
                elif method == LINEAR:
                    weight = 1.0 - iou if iou > Nt else 1.0
                else:
                    weight = exp(-(iou * iou) / sigma)

                if merge:
                    merge_weight = pow(1.0 - weight, weight_exp)
                    sum_x1 += boxes[other, 0] * boxes[other, 5] * merge_weight
                    sum_y1 += boxes[other, 1] * boxes[other, 5] * merge_weight
                    sum_x2 += boxes[other, 2] * boxes[other, 6] * merge_weight
                    sum_y2 += boxes[other, 3] * boxes[other, 6] * merge_weight
                    tl_total += boxes[other, 5] * merge_weight
                    br_total += boxes[other, 6] * merge_weight

                scores[other] = scores[other] * weight
                if scores[other] >= threshold:
                    remaining[num_survivors] = other
                    num_survivors += 1

            if merge:
                # Zero corner scores leave nothing to average by: keep the box as it is.
                merged[num_kept, 0] = sum_x1 / tl_total if tl_total > 0 else bx1
                merged[num_kept, 1] = sum_y1 / tl_total if tl_total > 0 else by1
                merged[num_kept, 2] = sum_x2 / br_total if br_total > 0 else bx2
                merged[num_kept, 3] = sum_y2 / br_total if br_total > 0 else by2
            num_kept += 1
            num_remaining = num_survivors

    if not merge:
        return keep_array[:num_kept].copy(), kept_scores_array[:num_kept].copy(), None
    return (keep_array[:num_kept].copy(), kept_scores_array[:num_kept].copy(),
            merged_array[:num_kept].copy())
