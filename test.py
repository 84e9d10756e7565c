#!/usr/bin/env python
"""Test a trained CenterNet on a split and report COCO metrics.

    python test.py CenterNet-52 --testiter 5000                 # the val split
    python test.py CenterNet-52 --testiter best --split test
    python test.py CenterNet-52 --testiter 5000 --suffix multi_scale   # config CenterNet-52-multi_scale,
                                                                       # snapshots of CenterNet-52
    python test.py CenterNet-52 --testiter latest --debug        # and a picture per image
    python test.py CenterNet-52 --testiter 5000 --set db.top_k=300 --set db.test_flip=false

Writes `<result_dir>/<config>/<split>_<iteration>[-<suffix>][-<--set>]/results.json`
(COCO detection format) and, when the split has annotations, metrics.json
(AP, AP50, ..., per-category AP, precision-recall curves at IoU 0.5, the
confusion matrix) with confusion_matrix.png and pr_curves.png beside it;
prints the metrics, the per-category table, the confusion matrix and the
time spent in each stage. The pipeline is test/ (test/run.py).

Exit status (exit_codes.py): 0 done; 1 an image could not be read part-way,
or a result could not be written (a full disk); 2 unusable config,
arguments, data or snapshot (missing, corrupt, of another network), or a
result folder that cannot be written (checked before anything is loaded).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from config import ConfigError
from exit_codes import DONE, PROBLEMS, REFUSED
from nnet.device import choose_device, precision_for
from test.cli import add_network_arguments, load_test_config, settings_suffix, show_warnings_briefly

SPLITS = ("val", "test", "train")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Test a trained CenterNet on a split (COCO metrics).")
    add_network_arguments(parser)
    parser.add_argument("--split", choices=SPLITS, default="val",
                        help="test system.<split>_split of the config (default: val)")
    parser.add_argument("--debug", action="store_true",
                        help="write a picture per image to <result folder>/debug/")
    parser.add_argument("--max-images", type=int, default=0,
                        help="test only the first N images of the split (0: all)")
    args = parser.parse_args(argv)
    if args.max_images < 0:
        parser.error(f"--max-images must be >= 0 (0: all), got {args.max_images}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    show_warnings_briefly()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from db import load_db
    from db.errors import AnnotationError, ImageReadError
    from nnet.checkpoints import find_snapshot, load_trained_network, read_snapshot
    from nnet.snapshot import SnapshotError
    from outputs import OutputError, check_output_folder, why_not_writable
    from test.confusion import format_confusion_matrix
    from test.evaluate import format_metrics
    from test.run import detect_split

    try:
        cfg = load_test_config(args.config, args.suffix, precision=args.precision,
                               assignments=args.set)
        device = choose_device(args.device)
        precision = precision_for(cfg, device, args.precision and "--precision")
    except ConfigError as e:
        print(f"test.py: {e}", file=sys.stderr)
        return REFUSED
    print(precision)
    split = cfg.system[f"{args.split}_split"]

    try:
        snapshot = find_snapshot(cfg, args.testiter)  # a wrong --testiter fails before the data is read
        # --precision changes the results too: it names the folder like --set
        folder = (f"{split}_{snapshot.iteration}" + (f"-{args.suffix}" if args.suffix else "")
                  + settings_suffix(args.set + ([f"precision={args.precision}"]
                                                if args.precision else [])))
        out_dir = os.path.join(cfg.result_dir, folder)
        check_output_folder(out_dir, "the result folder (system.result_dir)")
        db = load_db(cfg, split)  # FileNotFoundError: no annotation file
        net = load_trained_network(cfg, snapshot, device)
        produced_by = training_record(read_snapshot(snapshot.path), snapshot)
    except (SnapshotError, FileNotFoundError, AnnotationError, OutputError) as e:
        print(f"test.py: {e}", file=sys.stderr)
        return REFUSED
    iteration = snapshot.iteration
    print(f"snapshot: {snapshot.path}, iteration {iteration}"
          + (f" of {produced_by['planned_iterations']} planned, "
             f"{produced_by['training_minutes']:.1f} min of training"
             if produced_by.get("training_minutes") else ""))
    if produced_by.get("short_of_plan"):
        print(f"warning: {produced_by['short_of_plan']}")

    produced_by["precision"] = f"{precision.name} ({precision.reason})"
    print(f"testing {cfg.name} iteration {iteration} on {db.source} ({len(db)} images, "
          f"scales {cfg.db.test_scales}, flip {cfg.db.test_flip}) on {device}")
    try:
        run = detect_split(net, cfg, db, device, out_dir, debug=args.debug,
                           max_images=args.max_images, progress=True, produced_by=produced_by)
    except ImageReadError as e:
        print(f"test.py: {e}", file=sys.stderr)
        return PROBLEMS
    except OSError as e:  # the folder was checked at the start: a disk filling up
        print(f"test.py: cannot write {e.filename or out_dir}: {why_not_writable(e)}",
              file=sys.stderr)
        return PROBLEMS

    print(f"results: {os.path.join(out_dir, 'results.json')} ({run.num_detections} detections)")
    if run.metrics is None:
        print(f"split {split!r} has no annotations: results.json written, nothing to evaluate")
        if db.dataset == "KS":
            from db.ks import ANNOTATED_MARK
            print(f"  ({db.source} lists no boxes at all; if its pages were annotated and hold "
                  f"no objects, add the line \"{ANNOTATED_MARK}\" to it to count the false "
                  f"positives)")
    else:
        print(format_metrics(run.metrics, cfg.key_setting("db.empty_page_threshold")))
        print(format_confusion_matrix(run.metrics["confusion_matrix"]))
        pictures = [name for name in ("confusion_matrix.png", "pr_curves.png")
                    if os.path.isfile(os.path.join(out_dir, name))]
        print(f"metrics: {os.path.join(out_dir, 'metrics.json')} (and {', '.join(pictures)})")
    if args.debug:
        print(f"pictures: {os.path.join(out_dir, 'debug')}")
    print(run.timer.report())
    return DONE


def training_record(state: dict, snapshot) -> dict:
    """What produced a snapshot, for metrics.json: its file, iteration, the
    iterations its config planned, its time budget and minutes of training
    (a run cut short by system.time_budget stops before max_iter)."""
    from nnet.budget import short_run_note

    system = (state.get("config") or {}).get("system", {})
    seconds = state.get("train_seconds")
    record = {"snapshot": snapshot.path, "iteration": snapshot.iteration,
              "planned_iterations": system.get("max_iter"),
              "time_budget_minutes": system.get("time_budget"),
              "training_minutes": round(seconds / 60, 2) if seconds else None}
    done = state.get("iteration")
    if (system.get("time_budget") and seconds and seconds >= 60 * system["time_budget"]
            and isinstance(done, int)):
        # the snapshot where the budget stopped the run, perhaps far short of max_iter
        note = short_run_note(done, system.get("max_iter"), seconds, on_gpu=False)
        if note:
            record["short_of_plan"] = note
    return record


if __name__ == "__main__":
    sys.exit(main())
