"""Where a trained snapshot loses AP: finding the problems or naming them.

    python -m bench.bench_class_errors CenterNet-tiny --testiter latest --max-images 40

Runs the test pipeline (test/run.py, as test.py) on the validation split and
scores the same detections three ways with pycocotools:

- with classes: the usual COCO AP, what test.py prints;
- class-blind: every detection and every true box as one category;
- class-blind, one per place: the same after keeping, among detections with
  the same box (to 0.1 pixel), only the best-scoring one (with class-agnostic
  corners a box is reported once for each category its centres suggest, and
  without this its copies count as false positives).

A large gap between "with classes" and "class-blind, one per place" says the
boxes are found but their categories are wrong: the lever is classification
(more training, the centre heads), not localisation or decoding.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import torch

from bench.report import markdown_table, write_section
from config import load_config
from db import load_db
from nnet.checkpoints import find_snapshot, load_trained_network
from test.cli import iteration_argument
from test.evaluate import coco_results, max_dets_for, run_cocoeval, summarize
from test.run import detect_split


def best_per_place(results: list[dict]) -> list[dict]:
    """Of the detections with the same image and box (to 0.1 pixel), the best-scoring one."""
    best = {}
    for r in results:
        key = (r["image_id"], tuple(round(v, 1) for v in r["bbox"]))
        if key not in best or best[key]["score"] < r["score"]:
            best[key] = r
    return list(best.values())


def coco_ap(coco_gt, results, image_ids, max_dets, use_categories):
    """(AP, AP50) at the largest maxDets."""
    coco_eval = run_cocoeval(coco_gt, results, image_ids, max_dets, use_categories)
    summary = summarize(coco_eval)
    return summary["AP"], summary["AP50"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--testiter", type=iteration_argument, default="latest")
    parser.add_argument("--max-images", type=int, default=0)
    args = parser.parse_args(argv)

    cfg = load_config(args.config)
    snapshot = find_snapshot(cfg, args.testiter)
    iteration = snapshot.iteration
    net = load_trained_network(cfg, snapshot, torch.device("cpu"))
    db = load_db(cfg, cfg.system.val_split)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as out_dir:
        run = detect_split(net, cfg, db, "cpu", out_dir, max_images=args.max_images)
    results = coco_results(run.detections, db.category_ids)
    image_ids = list(run.detections)
    max_dets = max_dets_for(cfg)
    rows = []
    for name, scored, use_categories in (("with classes", results, True),
                                         ("class-blind", results, False),
                                         ("class-blind, one per place", best_per_place(results),
                                          False)):
        ap, ap50 = coco_ap(db.coco_gt(), scored, image_ids, max_dets, use_categories)
        rows.append([name, len(scored), f"{ap:.3f}", f"{ap50:.3f}"])
        print(rows[-1], flush=True)
    body = (f"Snapshot {cfg.name} iteration {iteration}, {len(image_ids)} validation pages of "
            f"{db.source}, test scales {cfg.db.test_scales}, COCO AP at up to {max_dets[-1]} "
            f"detections per page.\n\n"
            + markdown_table(["scored", "detections", "AP", "AP50"], rows))
    write_section(f"class_errors-{cfg.name}", body)
    print(body)


if __name__ == "__main__":
    main()
