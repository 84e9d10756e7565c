"""The box geometry of test time (test/boxes.py): IoU against values worked
out by hand, greedy one-to-one matching with its tie rules, and the rule
that keeps one box per place, which the pictures and grading share."""

from __future__ import annotations

import numpy as np
import pytest

from test.boxes import coco_iou, iou, match_greedy, one_per_place, share_inside


def test_iou_of_boxes_worked_out_by_hand():
    a = np.array([[0, 0, 10, 10], [0, 0, 4, 10]], np.float64)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float64)
    # 50 shared of 150; identical; apart. The thin box: 0 shared with the right half, 40 of 100
    expected = [[50 / 150, 1.0, 0.0], [0.0, 40 / 100, 0.0]]
    np.testing.assert_allclose(iou(a, b), expected)
    np.testing.assert_allclose(coco_iou(a, b), expected)
    assert iou(a, np.zeros((0, 4))).shape == (2, 0) and coco_iou(a, np.zeros((0, 4))).shape == (2, 0)
    # a zero-area box overlaps nothing, and does not divide by zero
    assert iou([[3, 3, 3, 3]], [[3, 3, 3, 3]]).tolist() == [[0.0]]


def test_share_inside_is_the_part_of_each_box_within_the_other():
    piece, whole = [[60, 10, 110, 30]], [[10, 10, 110, 30]]
    assert share_inside(piece, whole).tolist() == [[1.0]]
    assert share_inside(whole, piece).tolist() == [[0.5]]


def test_matching_takes_the_best_overlap_first_each_row_and_column_once():
    overlap = np.array([[0.9, 0.8, 0.0],
                        [0.95, 0.6, 0.0],
                        [0.0, 0.0, 0.4]])
    # (1, 0) first; row 0 then takes column 1; 0.4 is under the threshold
    assert match_greedy(overlap, 0.5) == [(1, 0), (0, 1)]
    assert match_greedy(overlap, 0.4) == [(1, 0), (0, 1), (2, 2)]
    assert match_greedy(np.zeros((0, 3)), 0.5) == []


def test_equal_overlaps_go_to_the_better_score_else_the_earlier_row_and_column():
    tie = np.array([[0.7, 0.7],
                    [0.7, 0.7]])
    assert match_greedy(tie, 0.5) == [(0, 0), (1, 1)]
    # column 1 scores better: it is taken first, by the earlier row
    assert match_greedy(tie, 0.5, column_scores=[0.2, 0.9]) == [(0, 1), (1, 0)]


def test_one_box_per_place_keeps_the_best_of_boxes_overlapping_by_more_than_the_limit():
    detections = np.array([[10, 10, 80, 30, 0.4, 2],     # one place under three categories
                           [10, 10, 80, 30, 0.9, 1],
                           [11, 11, 81, 31, 0.5, 3],
                           [10, 60, 80, 80, 0.3, 4],     # another place
                           [10, 90, 80, 99, 0.05, 0]])   # under the score threshold
    kept = one_per_place(detections, 0.1)
    assert kept[:, 5].tolist() == [1, 4] and kept[:, 4].tolist() == [0.9, 0.3]
    # overlapping by IoU 1/3: two places at the default limit 0.5, one at 0.3
    halves = np.array([[0, 0, 10, 10, 0.9, 0], [5, 0, 15, 10, 0.8, 0]])
    assert len(one_per_place(halves, 0.1)) == 2
    assert one_per_place(halves, 0.1, same_place_iou=0.3)[:, 4].tolist() == [0.9]
    assert one_per_place(np.zeros((0, 6)), 0.1).shape == (0, 6)


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_equal_scores_keep_their_order(threshold):
    detections = np.array([[0, 0, 10, 10, 0.5, 3], [0, 0, 10, 10, 0.5, 1]])
    assert one_per_place(detections, threshold)[:, 5].tolist() == [3]
