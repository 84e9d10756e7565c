"""The confusion matrix of a test run: which category each true box was
detected as, which boxes were missed, which detections lie on no object.

    table = confusion_matrix(records, detections, db.category_names, cfg.db.confusion_threshold)
    metrics["confusion_matrix"] = table            # numbers, in metrics.json
    draw_confusion_matrix(table, "confusion_matrix.png")
    print(format_confusion_matrix(table))

Rows are the true categories plus "background" (detections that match no
true box); columns the predicted categories plus "missed" (true boxes that
match no detection). Only detections scoring at least `score_threshold`
(db.confusion_threshold) count. Matching is one to
one and greedy, as YOLO's and torchvision's confusion matrices do it: every
(true box, detection) pair with IoU >= 0.5, whatever the categories, taken
best IoU first (higher score first on ties), each box and each detection
used once (test/boxes.py match_greedy). IoU is pycocotools'
(`pycocotools.mask.iou`, test/boxes.py coco_iou), the one COCOeval scores
AP50 with. A detection that duplicates a matched one (CenterNet-tiny
reports a box once per category its centre heatmap considers) counts as
background.
"""

from __future__ import annotations

import numpy as np

from .boxes import coco_iou, match_greedy

IOU_THRESHOLD = 0.5
BACKGROUND = "background"
MISSED = "missed"
PICTURE = "confusion_matrix.png"


def match_image(true_boxes, true_classes, detections, categories: int,
                iou_threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """The (categories + 1) x (categories + 1) counts of one image; `detections`
    (D, 6) x1, y1, x2, y2, score, class, already cut at the score threshold."""
    counts = np.zeros((categories + 1, categories + 1), dtype=np.int64)
    true_classes = np.asarray(true_classes, dtype=np.int64).reshape(-1)
    detections = np.asarray(detections, dtype=np.float64).reshape(-1, 6)
    detected_classes = detections[:, 5].astype(np.int64)
    iou = coco_iou(true_boxes, detections[:, :4])   # (G, D)
    true_used = np.zeros(len(true_classes), dtype=bool)
    detection_used = np.zeros(len(detections), dtype=bool)
    for gi, di in match_greedy(iou, iou_threshold, column_scores=detections[:, 4]):
        true_used[gi] = detection_used[di] = True
        counts[true_classes[gi], detected_classes[di]] += 1
    np.add.at(counts, (true_classes[~true_used], categories), 1)
    np.add.at(counts, (categories, detected_classes[~detection_used]), 1)
    return counts


def confusion_matrix(records, detections_by_image: dict, category_names,
                     score_threshold: float, iou_threshold: float = IOU_THRESHOLD) -> dict:
    """The confusion matrix of `records` (ImageRecords with their true boxes)
    and `detections_by_image` ({image_id: (N, 6)}), as metrics.json holds it:
    {"true": [names..., "background"], "predicted": [names..., "missed"],
     "counts": rows of ints, "iou_threshold", "score_threshold"}."""
    categories = len(category_names)
    counts = np.zeros((categories + 1, categories + 1), dtype=np.int64)
    for record in records:
        found = np.asarray(detections_by_image.get(record.image_id, np.zeros((0, 6))),
                           dtype=np.float64).reshape(-1, 6)
        found = found[found[:, 4] >= score_threshold]
        counts += match_image(record.boxes, record.classes, found, categories, iou_threshold)
    return {"true": list(category_names) + [BACKGROUND],
            "predicted": list(category_names) + [MISSED],
            "counts": counts.tolist(),
            "iou_threshold": iou_threshold, "score_threshold": float(score_threshold)}


def format_confusion_matrix(table: dict) -> str:
    """The matrix as test.py prints it: rows true, columns predicted."""
    rows, columns = table["true"], table["predicted"]
    width = max(8, *(len(name) for name in rows + columns))
    lines = [f"confusion matrix (rows: true, columns: detected at IoU >= "
             f"{table['iou_threshold']:g}, score >= {table['score_threshold']:g}):",
             "  " + " " * width + "".join(f"{name:>{width + 1}}" for name in columns)]
    for name, row in zip(rows, table["counts"]):
        lines.append(f"  {name:<{width}}" + "".join(f"{count:>{width + 1}}" for count in row))
    return "\n".join(lines)


def draw_confusion_matrix(table: dict, path: str) -> str:
    """A PNG of the matrix: each cell's count, coloured by its share of its
    row (of a true category's boxes; of the background detections)."""
    from matplotlib.figure import Figure

    counts = np.asarray(table["counts"], dtype=np.float64)
    rows, columns = table["true"], table["predicted"]
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = 1.0 + 0.75 * len(columns)
    figure = Figure(figsize=(size + 1.5, size), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=ax, label="share of the row", shrink=0.8)
    for i in range(len(rows)):
        for j in range(len(columns)):
            if counts[i, j]:
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("detected as")
    ax.set_ylabel("true category")
    ax.set_title(f"IoU >= {table['iou_threshold']:g}, score >= {table['score_threshold']:g}",
                 fontsize=9)
    figure.savefig(path, dpi=100)
    return path
