"""Testing a network on a split: every image through test/kp_detection.py,
results.json in COCO format, COCO metrics (test/evaluate.py) into
metrics.json with the confusion matrix (test/confusion.py), pictures of it
and of the precision-recall curves (test/pr_curves.py) beside it, and with
`debug` a picture per image under `<out_dir>/debug/`.

    metrics = run_test(net, cfg, db, device, out_dir)       # the trainer's validation AP
    run = detect_split(net, cfg, db, device, out_dir, progress=True)   # test.py
    run.metrics, run.detections, run.timer.report()

The next image (the next `db.test_batch_images` images) is read and prepared
in a background thread while the network runs on the current one.
"""

from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from db import ImageReadError, read_image

from .confusion import PICTURE as CONFUSION_PICTURE
from .confusion import confusion_matrix, draw_confusion_matrix
from .evaluate import DetectionWarning, coco_results, evaluate, write_json
from .kp_detection import detect_images, prepare_page
from .pr_curves import PICTURE as PR_PICTURE
from .pr_curves import draw_pr_curves
from .timing import StageTimer, device_sync
from .visualize import picture_stem, render, write_picture


@dataclass
class SplitResult:
    out_dir: str
    detections: dict = field(default_factory=dict)   # image_id -> (N, 6) x1, y1, x2, y2, score, class
    metrics: dict | None = None                       # None for a split without annotations
    timer: StageTimer = field(default_factory=StageTimer)

    @property
    def num_detections(self) -> int:
        return sum(len(d) for d in self.detections.values())


def warn_if_top_k_too_small(db, cfg, records=None) -> int:
    """Warn (once) when a page holds more objects than `db.top_k`; returns the largest count."""
    records = db.records if records is None else records
    most = max((r.num_objects for r in records), default=0)
    if most > cfg.db.top_k:
        warnings.warn(
            f"{db.source}: a page holds {most} objects but db.top_k is {cfg.db.top_k}: "
            f"decoding keeps the top_k corners of an image across all categories, so at most "
            f"about {cfg.db.top_k} boxes per page can be found; raise db.top_k (and db.num_dets, "
            f"at most top_k squared) in {cfg.path or cfg.name}", DetectionWarning, stacklevel=2)
    return most


def _load_and_prepare(records, cfg, pin_memory, keep_going):
    """Read and prepare the images of one network call:
    (records read, images, prepared, [(record, ImageReadError)], seconds).
    Without `keep_going` the first unreadable image raises."""
    start = time.perf_counter()
    kept, images, prepared, failed = [], [], [], []
    for record in records:
        try:
            image = read_image(record.path)
            if image.shape[:2] != (record.height, record.width):
                raise ImageReadError(record.path, f"the image is {image.shape[1]}x{image.shape[0]} "
                                                  f"but its record says {record.width}x{record.height}")
        except ImageReadError as error:
            if not keep_going:
                raise
            failed.append((record, error))
            continue
        kept.append(record)
        images.append(image)
        # a single image goes to the device as prepared; a call of several is
        # copied into one batch first, and that batch is what gets pinned
        prepared.append(prepare_page(image, cfg, pin_memory=pin_memory and len(records) == 1))
    return kept, images, prepared, failed, time.perf_counter() - start


def detect_records(net, records, cfg, device, timer: StageTimer, on_image=None, progress=False,
                   on_error=None):
    """{image_id: (N, 6) final detections} of `records`, `db.test_batch_images`
    per network call; `on_image(record, image, detections)` is called for each
    (debug pictures). The next call's images are prepared while the network runs.

    An image that cannot be decoded raises `ImageReadError`; with
    `on_error(record, error)` it is passed there instead and left out (demo.py
    goes on with the other images)."""
    device = torch.device(device)
    pin_memory = device.type == "cuda"
    per_call = cfg.db.test_batch_images
    groups = [records[i:i + per_call] for i in range(0, len(records), per_call)]
    detections = {}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(records), desc="testing", unit="image", dynamic_ncols=True)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-prepare") as pool:
        keep_going = on_error is not None
        pending = (pool.submit(_load_and_prepare, groups[0], cfg, pin_memory, keep_going)
                   if groups else None)
        for g, group in enumerate(groups):
            kept, images, prepared, failed, seconds = pending.result()
            timer.add("preparation", seconds)
            if g + 1 < len(groups):
                pending = pool.submit(_load_and_prepare, groups[g + 1], cfg, pin_memory, keep_going)
            for record, error in failed:
                on_error(record, error)
            found = (detect_images(net, prepared, cfg, device, timer, pin_memory=pin_memory)
                     if prepared else [])
            for record, image, boxes in zip(kept, images, found):
                timer.images += 1
                detections[record.image_id] = boxes
                if on_image is not None:
                    on_image(record, image, boxes)
            if bar is not None:
                bar.update(len(group))
    if bar is not None:
        bar.close()
    return detections


def detect_split(net, cfg, db, device, out_dir: str, debug: bool = False, max_images: int = 0,
               progress: bool = False, produced_by: dict | None = None) -> SplitResult:
    """Detect every image of `db` (the first `max_images` if > 0), write
    `<out_dir>/results.json`, and with annotations evaluate into `<out_dir>/metrics.json`
    (with `produced_by`, what trained the snapshot, under that key)."""
    records = db.records[:max_images] if max_images > 0 else db.records
    os.makedirs(out_dir, exist_ok=True)
    warn_if_top_k_too_small(db, cfg, records)

    on_image = None
    if debug:
        debug_dir = os.path.join(out_dir, "debug")
        os.makedirs(debug_dir, exist_ok=True)

        def on_image(record, image, found):
            gt_boxes = record.boxes if db.has_annotations else None
            picture = render(image, found, cfg, names=db.category_names, gt_boxes=gt_boxes)
            write_picture(os.path.join(debug_dir, picture_stem(record.image_id, record.path) + ".jpg"),
                          picture)

    run = SplitResult(out_dir=out_dir, timer=StageTimer(device_sync(device)))
    was_training = net.training
    net.eval()
    try:
        run.detections = detect_records(net, records, cfg, device, run.timer, on_image, progress)
    finally:
        net.train(was_training)

    results = coco_results(run.detections, db.category_ids)
    write_json(os.path.join(out_dir, "results.json"), results)
    if not db.has_annotations:
        if not results:
            warnings.warn(f"no detections on any of the {len(records)} images of {db.source}",
                          DetectionWarning, stacklevel=2)
        return run
    run.metrics = evaluate(results, db, cfg, [r.image_id for r in records])
    run.metrics["overrides"] = cfg.overrides  # what changed the config file's settings
    if produced_by is not None:
        run.metrics["produced_by"] = produced_by
    run.metrics["confusion_matrix"] = confusion_matrix(records, run.detections, db.category_names,
                                                       cfg.db.confusion_threshold)
    write_json(os.path.join(out_dir, "metrics.json"), run.metrics)
    draw_confusion_matrix(run.metrics["confusion_matrix"], os.path.join(out_dir, CONFUSION_PICTURE))
    if "pr_curves" in run.metrics:  # absent when nothing was detected
        draw_pr_curves(run.metrics["pr_curves"], os.path.join(out_dir, PR_PICTURE))
    return run


def run_test(net, cfg, db, device, out_dir: str, debug: bool = False, max_images: int = 0):
    """COCO metrics of `net` on `db` (the metrics.json dict), or None when the
    split has no annotations; results.json (and metrics.json) go to `out_dir`.

    For the trainer's validation AP: `net` is the bare module; it is put in
    eval mode for the run and given back in the mode it came in.
    """
    return detect_split(net, cfg, db, device, out_dir, debug=debug, max_images=max_images).metrics

