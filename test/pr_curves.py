"""Per-category precision-recall curves at IoU 0.5, read from the arrays
COCOeval already accumulated for metrics.json (test/evaluate.py), and their
picture.

    curves = pr_curves(coco_eval, db.category_ids, db.category_names)   # metrics["pr_curves"]
    draw_pr_curves(curves, "pr_curves.png")

COCOeval's `eval["precision"]` holds, per IoU threshold, category, area
range and maxDets, the interpolated precision at 101 recall points (0, 0.01,
..., 1; 0 past the largest recall reached). The curves here are its IoU 0.5,
"all" areas, largest-maxDets slice, so the mean of a category's curve is its
AP50 in metrics.json. A category without ground truth has no curve (null).
"""

from __future__ import annotations

import numpy as np

IOU = 0.5
PICTURE = "pr_curves.png"


def pr_curves(coco_eval, category_ids, category_names, max_dets: int | None = None) -> dict:
    """{"iou": 0.5, "max_dets", "recall": [101 points], "precision": {name: [101] or None}}."""
    params = coco_eval.params
    max_dets = max_dets or params.maxDets[-1]
    m = params.maxDets.index(max_dets)
    a = params.areaRngLbl.index("all")
    t = int(np.argmin(np.abs(params.iouThrs - IOU)))
    precision = coco_eval.eval["precision"]  # (T iou, R recall, K class, A area, M maxDets)
    curves = {}
    for category_id, name in zip(category_ids, category_names):
        values = precision[t, :, params.catIds.index(category_id), a, m]
        curves[name] = None if (values < 0).all() else [round(float(v), 4) for v in values]
    return {"iou": IOU, "max_dets": int(max_dets),
            "recall": [round(float(r), 4) for r in params.recThrs], "precision": curves}


def draw_pr_curves(curves: dict, path: str) -> str:
    """A PNG with one precision-recall curve per category, its AP50 in the legend."""
    from matplotlib.figure import Figure

    from .visualize import category_colors

    names = list(curves["precision"])
    colors = category_colors(len(names))  # the debug pictures' colours, BGR
    figure = Figure(figsize=(6.5, 5), layout="constrained")
    ax = figure.subplots()
    for name, (b, g, r) in zip(names, colors):
        precision = curves["precision"][name]
        if precision is None:
            continue
        ax.plot(curves["recall"], precision, color=(r / 255, g / 255, b / 255),
                label=f"{name} (AP50 {np.mean(precision):.3f})")
    drawn = [c for c in curves["precision"].values() if c is not None]
    if drawn:
        ax.plot(curves["recall"], np.mean(drawn, axis=0), color="black", linewidth=2,
                label=f"all (AP50 {np.mean(drawn):.3f})")
        ax.legend(fontsize=8, loc="lower left")
    else:
        ax.text(0.5, 0.5, "no category has ground truth", ha="center", va="center",
                transform=ax.transAxes, color="gray")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"precision-recall at IoU {curves['iou']:g} "
                 f"({curves['max_dets']} detections per image)", fontsize=10)
    figure.savefig(path, dpi=100)
    return path
