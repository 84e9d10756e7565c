"""One trained snapshot on synthetic and real pages side by side: where the
detector stands on real ink (issues 22 and 23).

    python -m bench.bench_real CenterNet-tiny --testiter latest
    python -m bench.bench_real CenterNet-tiny --testiter latest --set db.first_look_side=800

Scored with test.py's pipeline and evaluation (test/run.py), the config as
it is (or changed by --set):

- the synthetic validation pages and the held-out style (`ks_holdout.txt`,
  generated with `python -m db.synth --style holdout` when missing), and the
  same of the generator before its realism features and content mix (made
  once under cache/bench_real/: what the detector was good at before);
- 20 pages composed of real photographed problems
  (`../shared/tools/real_pages.py crops-dev paper OUT --pages 20 --seed 7`);
- the photos with hand-made boxes (`photos-labelled-dev`), at their own size
  and shrunk to a long side of 1440 px;
- the unlabelled photos (`photos-dev`): problems found (score >= 0.3) at
  their own size and at 1440 px, per photo.

For each set AP, AP50, per-category AP50, class-blind AP50 (one detection
per place) and recall and precision at score 0.3 (IoU 0.5, any class). The
real sets are read from ../shared/real when this machine has it (bench/real.py;
nothing made from them is written into the project) and said to be missing
when not. Writes the "real-<config>" section of BENCHMARKS.md (or, with
--section, that one).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch

from bench.bench_class_errors import best_per_place
from bench.real import RealSets
from bench.report import markdown_table, write_section
from config import PROJECT_ROOT, load_config, parse_assignments
from db import load_db
from nnet.checkpoints import find_snapshot, load_trained_network
from test.cli import iteration_argument
from test.evaluate import coco_results, max_dets_for, run_cocoeval, summarize
from test.run import detect_records, detect_split
from test.timing import StageTimer

FOUND_SCORE = 0.3   # "problems found": what issue 22 counts on the photos
MATCH_IOU = 0.5


def recall_precision(records, detections, score: float = FOUND_SCORE) -> tuple[float, float]:
    """Recall and precision, at IoU >= 0.5 one to one and any class, of the
    detections scoring at least `score` (one per place: the best)."""
    from test.boxes import coco_iou

    found = wanted = matched = 0
    for record in records:
        boxes = detections.get(record.image_id, np.zeros((0, 6)))
        boxes = boxes[boxes[:, 4] >= score]
        if len(boxes):  # a box named under several classes counts once
            _, first = np.unique(np.round(boxes[:, :4], 1), axis=0, return_index=True)
            boxes = boxes[np.sort(first)]
        found += len(boxes)
        wanted += record.num_objects
        if not len(boxes) or not record.num_objects:
            continue
        iou = coco_iou(record.boxes, boxes[:, :4])
        used = set()
        for t in np.argsort(-iou.max(axis=1)):
            for d in np.argsort(-iou[t]):
                if iou[t, d] < MATCH_IOU:
                    break
                if d not in used:
                    used.add(d)
                    matched += 1
                    break
    return matched / max(wanted, 1), matched / max(found, 1)


def score_set(net, cfg, data_dir: str, split: str = "val", pages: int = 0) -> dict:
    """AP, AP50, per-category AP50, class-blind AP50, recall and precision at
    score 0.3, ms per page, of the pages of `data_dir`'s ks_<split>.txt."""
    cfg = load_config(cfg.path, name=cfg.name, overrides=_with_data(cfg, data_dir))
    db = load_db(cfg, split)
    with tempfile.TemporaryDirectory() as out_dir:
        run = detect_split(net, cfg, db, "cpu", out_dir, max_images=pages)
    results = coco_results(run.detections, db.category_ids)
    image_ids = list(run.detections)
    blind = summarize(run_cocoeval(db.coco_gt(), best_per_place(results), image_ids,
                                   max_dets_for(cfg), use_categories=False))
    recall, precision = recall_precision([db.record(i) for i in image_ids], run.detections)
    m = run.metrics
    return {"pages": len(image_ids), "AP": m["AP"], "AP50": m["AP50"],
            "per_category_AP50": m["per_category_AP50"], "blind_AP50": blind["AP50"],
            "recall": recall, "precision": precision,
            "ms": 1000 * sum(run.timer.seconds.values()) / max(run.timer.images, 1)}


def count_found(net, cfg, folder: str) -> dict:
    """{photo name: problems found (one per place, score >= 0.3)} in a folder of pictures."""
    from demo import image_paths, image_records

    paths, _ = image_paths(folder)
    records, _ = image_records(paths, cfg.db.max_image_pixels)
    found = detect_records(net, records, cfg, "cpu", StageTimer())
    counts = {}
    for record in records:
        boxes = found[record.image_id]
        boxes = boxes[boxes[:, 4] >= FOUND_SCORE]
        counts[os.path.basename(record.path)] = len(np.unique(np.round(boxes[:, :4], 1), axis=0))
    return counts


def _with_data(cfg, data_dir):
    """cfg's overrides ({"db.top_k": 700}) as load_config takes them, data_dir set."""
    overrides = {}
    for key, value in cfg.overrides.items():
        section, name = key.split(".", 1)
        overrides.setdefault(section, {})[name] = value
    overrides.setdefault("system", {})["data_dir"] = data_dir
    return overrides


def holdout_dir(cfg) -> str:
    """The config's data folder, with ks_holdout.txt made there when missing."""
    data = cfg.system.data_dir
    if not os.path.isfile(os.path.join(data, "ks_holdout.txt")):
        subprocess.run([sys.executable, "-m", "db.synth", "--out", data, "--style", "holdout"],
                       check=True, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL)
    return data


PLAIN_PAGES = os.path.join(PROJECT_ROOT, "cache", "bench_real", "pages-before-realism")


def plain_dir() -> str:
    """Validation and held-out pages of the generator as it was before the
    realism features and the content mix (db.synth --without all --content
    basic, seed 0: the pages to the byte), made once under cache/."""
    from db.synth_realism import FEATURES

    if not os.path.isfile(os.path.join(PLAIN_PAGES, "ks_holdout.txt")):
        for style, counts in (("main", ["--train", "0", "--val", "100", "--test", "0"]),
                              ("holdout", [])):
            subprocess.run([sys.executable, "-m", "db.synth", "--out", PLAIN_PAGES, "--seed", "0",
                            "--style", style, "--content", "basic", "--without",
                            ",".join(FEATURES), *counts], check=True, cwd=PROJECT_ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return PLAIN_PAGES


def score_everywhere(net, cfg, real: RealSets, pages: int = 0) -> dict:
    """{set name: score_set(...)} over every set this machine has, plus
    "photos": {name: (found at own size, found at 1440 px)}."""
    scores = {"synthetic validation": score_set(net, cfg, cfg.system.data_dir,
                                                cfg.system.val_split, pages),
              "held-out style": score_set(net, cfg, holdout_dir(cfg), "holdout", pages),
              "synthetic validation, pages of before the realism features":
                  score_set(net, cfg, plain_dir(), "val", pages),
              "held-out style, pages of before": score_set(net, cfg, plain_dir(), "holdout",
                                                           pages)}
    if real.composed:
        scores["real problems, composed (20 pages, seed 7)"] = score_set(net, cfg, real.composed)
    if real.labelled:
        scores["real photos, own size"] = score_set(net, cfg, real.labelled)
        scores["real photos, 1440 px"] = score_set(net, cfg, real.labelled_resized(1440))
    if real.photos:
        own, small = count_found(net, cfg, real.photos), count_found(net, cfg,
                                                                     real.photos_resized(1440))
        scores["photos"] = {name: (own[name], small.get(name, 0)) for name in own}
    return scores


def report(cfg, iteration, scores, missing) -> str:
    names = cfg.db.category_names
    rows = []
    for label, s in scores.items():
        if label == "photos":
            continue
        per = s["per_category_AP50"]
        rows.append([label, s["pages"], f"{s['AP']:.3f}", f"{s['AP50']:.3f}",
                     *(f"{per.get(n) or 0:.2f}" for n in names), f"{s['blind_AP50']:.3f}",
                     f"{s['recall']:.2f}", f"{s['precision']:.2f}", f"{s['ms']:.0f}"])
    body = (f"Snapshot {cfg.name} iteration {iteration}"
            + (f", with {', '.join(f'{k}={v}' for k, v in cfg.overrides.items())}"
               if cfg.overrides else "")
            + ". Per-category columns: AP50; class-blind AP50 keeps one detection per place; "
              f"recall and precision at score {FOUND_SCORE}, IoU {MATCH_IOU}, any class; ms: "
              "all test stages per page.\n\n"
            + markdown_table(["pages", "n", "AP", "AP50", *names, "class-blind AP50",
                              "recall", "precision", "ms/page"], rows))
    if "photos" in scores:
        photos = scores["photos"]
        own = sum(a for a, _ in photos.values())
        small = sum(b for _, b in photos.values())
        body += (f"\n\nProblems found (score >= {FOUND_SCORE}) on the {len(photos)} unlabelled "
                 f"photos (photos-dev): {own} at their own size, {small} shrunk to 1440 px; per "
                 f"photo (own / 1440): "
                 + ", ".join(f"{name} {a}/{b}" for name, (a, b) in sorted(photos.items())))
    if missing:
        body += "\n\nNot measured on this machine: " + "; ".join(missing) + "."
    return body


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--testiter", type=iteration_argument, default="latest")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--pages", type=int, default=0,
                        help="synthetic pages scored per set (0: all)")
    parser.add_argument("--section", default=None, help="BENCHMARKS.md section (default real-<config>)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    cfg = load_config(args.config, overrides=parse_assignments(args.set) or None)
    snapshot = find_snapshot(cfg, args.testiter)
    net = load_trained_network(cfg, snapshot, torch.device("cpu"))
    with RealSets() as real:
        scores = score_everywhere(net, cfg, real, args.pages)
        missing = real.missing
    body = report(cfg, snapshot.iteration, scores, missing)
    print(write_section(args.section or f"real-{cfg.name}", body))


if __name__ == "__main__":
    main()
