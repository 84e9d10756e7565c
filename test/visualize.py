"""Debug pictures of test.py --debug and demo.py: the predicted boxes of one
image, one colour per category with its name and score, over the ground truth
drawn thin and dashed in black and white (visible on any page).

A picture shows what the detector found, once per place (test/boxes.py
`one_per_place`): of boxes that overlap by IoU above db.same_place_iou (the
same problem reported under several categories, kept in results.json for
AP), only the best-scoring is drawn, with its category. Labels are sized to their box (a dense page has small
boxes close together), sit above the box, and a label that would cover
another one moves inside its box.

Colours are evenly spaced hues for however many categories the config has;
pictures are encoded in memory and written as bytes, so non-ASCII (Chinese)
file names work on every platform.
"""

from __future__ import annotations

import colorsys
import os
import re

import cv2
import numpy as np

from .boxes import SAME_PLACE_IOU, one_per_place

_FONT = cv2.FONT_HERSHEY_SIMPLEX
# A label's text is this fraction of its box's height (within the limits below).
LABEL_HEIGHT = 0.45
_FONT_HEIGHT_AT_SCALE_1 = 22.0  # pixels of cv2.FONT_HERSHEY_SIMPLEX's capitals at scale 1
_MIN_FONT_SCALE = 0.25


def category_colors(categories: int) -> list[tuple[int, int, int]]:
    """One stable, saturated BGR colour per category: evenly spaced hues."""
    colors = []
    for c in range(categories):
        r, g, b = colorsys.hsv_to_rgb(c / max(categories, 1), 0.85, 0.9)
        colors.append((int(b * 255), int(g * 255), int(r * 255)))
    return colors


def _line_width(image: np.ndarray) -> int:
    return max(1, round(min(image.shape[:2]) / 600))


def _dashed_rectangle(picture, x1, y1, x2, y2, width, dash):
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)]
    for (ax, ay), (bx, by) in zip(corners, corners[1:]):
        length = max(abs(bx - ax), abs(by - ay))
        for start in range(0, length, 2 * dash):
            end = min(start + dash, length)
            p = (ax + (bx - ax) * start // max(length, 1), ay + (by - ay) * start // max(length, 1))
            q = (ax + (bx - ax) * end // max(length, 1), ay + (by - ay) * end // max(length, 1))
            cv2.line(picture, p, q, (255, 255, 255), width, cv2.LINE_AA)


def draw_ground_truth(picture: np.ndarray, boxes: np.ndarray) -> None:
    """Ground-truth boxes, thin black with white dashes, in place."""
    width = max(1, _line_width(picture) // 2)
    for x1, y1, x2, y2 in np.round(np.asarray(boxes, dtype=np.float64)).astype(int).tolist():
        cv2.rectangle(picture, (x1, y1), (x2, y2), (0, 0, 0), width, cv2.LINE_AA)
        _dashed_rectangle(picture, x1, y1, x2, y2, width, dash=3 * width + 2)


def _overlaps(rect, rects) -> bool:
    x1, y1, x2, y2 = rect
    return any(x1 < b[2] and b[0] < x2 and y1 < b[3] and b[1] < y2 for b in rects)


def draw_detections(picture: np.ndarray, detections: np.ndarray, names, colors,
                    threshold: float, same_place_iou: float = SAME_PLACE_IOU) -> int:
    """The boxes scoring >= threshold, one per place (test/boxes.py
    `one_per_place`), coloured by class and labelled 'name score', in place;
    returns how many."""
    shown = one_per_place(detections, threshold, same_place_iou)
    width = _line_width(picture)
    labels = []  # rectangles of the labels drawn so far
    for x1, y1, x2, y2, score, cls in shown.tolist():
        cls = int(cls)
        color = colors[cls]
        p, q = (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2)))
        cv2.rectangle(picture, p, q, color, width, cv2.LINE_AA)
        label = f"{names[cls]} {score:.2f}"
        font_scale = max(_MIN_FONT_SCALE, min(0.35 * width, LABEL_HEIGHT * (q[1] - p[1])
                                              / _FONT_HEIGHT_AT_SCALE_1))
        (text_w, text_h), baseline = cv2.getTextSize(label, _FONT, font_scale, 1)
        above = (p[0], p[1] - text_h - baseline, p[0] + text_w, p[1])
        inside = (p[0], p[1], p[0] + text_w, p[1] + text_h + baseline)
        rect = above if above[1] >= 0 and not _overlaps(above, labels) else inside
        if _overlaps(rect, labels):
            continue  # the box stays; its label would hide another one
        labels.append(rect)
        cv2.rectangle(picture, rect[:2], rect[2:], color, -1)
        cv2.putText(picture, label, (rect[0], rect[1] + text_h), _FONT, font_scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return len(shown)


def render(image: np.ndarray, detections: np.ndarray, cfg, names=None,
           gt_boxes: np.ndarray | None = None) -> np.ndarray:
    """A copy of the BGR image with the ground truth (if given) and the detections
    scoring >= db.draw_threshold, one per place (db.same_place_iou)."""
    picture = image.copy()
    if gt_boxes is not None and len(gt_boxes):
        draw_ground_truth(picture, gt_boxes)
    draw_detections(picture, detections, names or cfg.db.category_names,
                    category_colors(cfg.db.categories), cfg.db.draw_threshold,
                    cfg.db.same_place_iou)
    return picture


def write_picture(path: str, picture: np.ndarray, quality: int = 90) -> None:
    """Write a JPEG (or PNG, by extension) through cv2.imencode: any path, any platform."""
    extension = os.path.splitext(path)[1].lower() or ".jpg"
    params = [int(cv2.IMWRITE_JPEG_QUALITY), quality] if extension in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(extension, picture, params)
    if not ok:
        raise OSError(f"cannot encode a picture for {path}")
    with open(path, "wb") as f:
        f.write(data.tobytes())


def picture_stem(image_id: int, path: str) -> str:
    """`<image_id>_<file stem>`: unique within a split, readable, any script kept."""
    stem = os.path.splitext(os.path.basename(path))[0]
    stem = re.sub(r'[\\/:*?"<>|\s]+', "_", stem)  # characters that some file systems refuse
    return f"{image_id:06d}_{stem}"
