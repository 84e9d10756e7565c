"""Evaluation of a split's detections with the COCO detection metrics
(pycocotools COCOeval, bbox; https://cocodataset.org/#detection-eval).

    results = coco_results(detections_by_image, db.category_ids)   # results.json
    metrics = evaluate(results, db, cfg, image_ids)                 # metrics.json

Dense pages: a 口算 page holds up to 160 problems, more than COCO's 100
detections per image (COCOeval applies maxDets to each image and category, so
the limit bites when one category fills a page). COCOeval's maxDets becomes
[1, 10, 100] plus `db.max_per_image` when that is larger, and AP, AP50, AP75,
APs, APm, APl and the per-category AP are computed at the largest maxDets
from `eval["precision"]` with the formula of COCOeval.summarize (the mean of
the precisions that are > -1; -1 where the split has no ground truth in that
area range, null for a category without ground truth). AR1, AR10 and AR100
are COCO's. With max_per_image <= 100 every number equals
COCOeval.summarize's.

Pages without objects: COCO AP does not count a detection on a page without
ground truth unless it outranks a true one, so every evaluation also counts
the detections scoring at least `db.empty_page_threshold` on those pages,
each a false positive, and per page. A split whose pages all hold no objects
(a ks file marked "# annotated", db/ks.py) has undefined AP and AR (-1,
COCO's value without ground truth); that count is its measure.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings

import numpy as np

from .pr_curves import pr_curves


class DetectionWarning(UserWarning):
    """Something about a test run the user should know: no detections at all,
    pages denser than db.top_k."""


# the keys of metrics.json, in the order they are printed
SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")


def coco_results(detections_by_image: dict, category_ids) -> list[dict]:
    """{image_id: (N, 6) x1, y1, x2, y2, score, class} -> COCO results list."""
    results = []
    for image_id, detections in detections_by_image.items():
        for x1, y1, x2, y2, score, cls in np.asarray(detections, dtype=np.float64).tolist():
            results.append({
                "image_id": int(image_id),
                "category_id": int(category_ids[int(cls)]),
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "score": round(score, 5),
            })
    return results


def write_json(path: str, payload) -> None:
    """Write JSON through a temporary file, so a crash never leaves half a file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, ensure_ascii=False)
    os.replace(tmp, path)


def max_dets_for(cfg) -> list[int]:
    """COCOeval's maxDets: COCO's [1, 10, 100], plus db.max_per_image when larger."""
    max_dets = [1, 10, 100]
    if cfg.db.max_per_image > max_dets[-1]:
        max_dets.append(cfg.db.max_per_image)
    return max_dets


def run_cocoeval(coco_gt, results: list[dict], image_ids, max_dets, use_categories: bool = True):
    """A COCOeval (bbox) evaluated and accumulated, without pycocotools' chatter;
    `use_categories` False scores every detection against every true box."""
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        coco_eval = COCOeval(coco_gt, coco_dt, "bbox")
        coco_eval.params.imgIds = sorted(int(i) for i in image_ids)
        coco_eval.params.maxDets = list(max_dets)
        coco_eval.params.useCats = int(use_categories)
        coco_eval.evaluate()
        coco_eval.accumulate()
    return coco_eval


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def summarize(coco_eval, max_dets: int | None = None) -> dict:
    """AP, AP50, AP75, APs, APm, APl at `max_dets` (default: the largest
    maxDets), AR1, AR10, AR100; COCOeval.summarize's formula."""
    params = coco_eval.params
    max_dets = max_dets or params.maxDets[-1]
    precision = coco_eval.eval["precision"]  # (T iou, R recall, K class, A area, M maxDets)
    recall = coco_eval.eval["recall"]        # (T, K, A, M)
    m = params.maxDets.index(max_dets)
    area = {label: i for i, label in enumerate(params.areaRngLbl)}
    iou = {thr: int(np.argmin(np.abs(params.iouThrs - thr))) for thr in (0.5, 0.75)}
    summary = {
        "AP": _mean_valid(precision[:, :, :, area["all"], m]),
        "AP50": _mean_valid(precision[iou[0.5], :, :, area["all"], m]),
        "AP75": _mean_valid(precision[iou[0.75], :, :, area["all"], m]),
        "APs": _mean_valid(precision[:, :, :, area["small"], m]),
        "APm": _mean_valid(precision[:, :, :, area["medium"], m]),
        "APl": _mean_valid(precision[:, :, :, area["large"], m]),
    }
    for dets in (1, 10, 100):
        summary[f"AR{dets}"] = _mean_valid(recall[:, :, area["all"], params.maxDets.index(dets)])
    return summary


def per_category_ap(coco_eval, category_ids, category_names, max_dets: int | None = None) -> dict:
    """{name: (AP, AP50) or None}, at `max_dets`; None for a class without ground truth."""
    params = coco_eval.params
    m = params.maxDets.index(max_dets or params.maxDets[-1])
    a = params.areaRngLbl.index("all")
    i50 = int(np.argmin(np.abs(params.iouThrs - 0.5)))
    precision = coco_eval.eval["precision"]
    table = {}
    for category_id, name in zip(category_ids, category_names):
        k = params.catIds.index(category_id)
        ap, ap50 = _mean_valid(precision[:, :, k, a, m]), _mean_valid(precision[i50, :, k, a, m])
        table[name] = None if ap == -1 else (ap, ap50)
    return table


def zero_metrics(db, cfg, image_ids) -> dict:
    metrics = {key: 0.0 for key in SUMMARY_KEYS}
    metrics["per_category"] = {name: 0.0 for name in db.category_names}
    metrics["per_category_AP50"] = {name: 0.0 for name in db.category_names}
    metrics.update(max_dets=max_dets_for(cfg)[-1], num_images=len(image_ids), num_detections=0)
    return metrics


def false_positives_on_empty_pages(results: list[dict], db, image_ids, threshold: float) -> dict:
    """The pages without objects among `image_ids`, and the detections on them
    scoring at least `threshold`: every one is a false positive."""
    empty = {int(i) for i in image_ids if db.record(i).num_objects == 0}
    count = sum(1 for r in results if r["image_id"] in empty and r["score"] >= threshold)
    return {"empty_pages": len(empty), "empty_page_false_positives": count,
            "empty_page_false_positives_per_page": count / len(empty) if empty else None,
            "false_positive_threshold": threshold}


def undefined_metrics(db, cfg, image_ids, num_detections: int) -> dict:
    """Metrics of pages without any ground truth: AP and AR undefined (-1)."""
    metrics = {key: -1.0 for key in SUMMARY_KEYS}
    metrics["per_category"] = {name: None for name in db.category_names}
    metrics["per_category_AP50"] = {name: None for name in db.category_names}
    metrics.update(max_dets=max_dets_for(cfg)[-1], num_images=len(image_ids),
                   num_detections=num_detections)
    return metrics


def evaluate(results: list[dict], db, cfg, image_ids) -> dict:
    """COCO metrics of `results` on the images `image_ids` of `db` (the metrics.json dict).

    Keys: AP, AP50, AP75, APs, APm, APl (at max_dets), AR1, AR10, AR100,
    per_category {name: AP or null (no ground truth)}, per_category_AP50,
    pr_curves (test/pr_curves.py: per-category precision at IoU 0.5 against recall),
    max_dets, num_images, num_detections, and on the pages without objects
    empty_pages, empty_page_false_positives (detections >= db.empty_page_threshold),
    empty_page_false_positives_per_page, false_positive_threshold.
    No detections at all: every metric 0.0 and a warning. No objects on any
    page: AP and AR -1 (undefined), per-category null, no pr_curves.
    """
    image_ids = list(image_ids)
    empty_pages = false_positives_on_empty_pages(results, db, image_ids,
                                                 cfg.db.empty_page_threshold)
    if empty_pages["empty_pages"] == len(image_ids):
        metrics = undefined_metrics(db, cfg, image_ids, len(results))
        metrics.update(empty_pages)
        return metrics
    if not results:
        warnings.warn(f"no detections on any of the {len(image_ids)} images of "
                      f"{db.source}: every metric is 0", DetectionWarning, stacklevel=2)
        return {**zero_metrics(db, cfg, image_ids), **empty_pages}
    max_dets = max_dets_for(cfg)
    coco_eval = run_cocoeval(db.coco_gt(), results, image_ids, max_dets)
    metrics = summarize(coco_eval)
    per_category = per_category_ap(coco_eval, db.category_ids, db.category_names)
    metrics["per_category"] = {name: None if v is None else v[0] for name, v in per_category.items()}
    metrics["per_category_AP50"] = {name: None if v is None else v[1]
                                    for name, v in per_category.items()}
    metrics["pr_curves"] = pr_curves(coco_eval, db.category_ids, db.category_names)
    metrics.update(max_dets=max_dets[-1], num_images=len(image_ids), num_detections=len(results))
    metrics.update(empty_pages)
    return metrics


def format_metrics(metrics: dict, threshold_key: str = "db.empty_page_threshold") -> str:
    """The summary and the per-category table, as printed by test.py;
    `threshold_key` names the key that set the empty pages' threshold
    (Config.key_setting)."""
    max_dets = metrics["max_dets"]
    lines = [f"COCO bbox metrics on {metrics['num_images']} images, "
             f"{metrics['num_detections']} detections (AP at {max_dets} detections per image):"]
    lines.append("  " + "  ".join(f"{key:>6}" for key in SUMMARY_KEYS))
    lines.append("  " + "  ".join(f"{_number(metrics[key]):>6}" for key in SUMMARY_KEYS))
    per_category = metrics.get("per_category") or {}
    if per_category:
        ap50 = metrics.get("per_category_AP50") or {}
        width = max(8, max(len(name) for name in per_category))
        lines.append(f"  {'category':<{width}}  {'AP':>6}  {'AP50':>6}")
        for name, ap in per_category.items():
            lines.append(f"  {name:<{width}}  {_number(ap):>6}  {_number(ap50.get(name)):>6}")
    empty = metrics.get("empty_pages")
    if empty:
        if empty == metrics["num_images"]:
            lines.append("  no page holds an object: AP and AR are undefined (-)")
        count = metrics["empty_page_false_positives"]
        lines.append(f"  pages without objects: {empty}; detections on them scoring >= "
                     f"{metrics['false_positive_threshold']:g} ({threshold_key}): {count} "
                     f"({count / empty:.2f} per page), every one a false positive")
    return "\n".join(lines)


def _number(value) -> str:
    if value is None or value == -1:
        return "-"
    return f"{value:.3f}"
