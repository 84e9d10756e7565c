#!/usr/bin/env python
"""Grade photographed 口算 pages: detect every problem, read it, mark it.

    python grade.py CenterNet-tiny --testiter latest --images page.jpg --out graded
    python grade.py CenterNet-tiny --testiter 400 --images photos/ --out graded
    python grade.py CenterNet-tiny --testiter latest --images data/ks/ks_val.txt --out graded
    python grade.py CenterNet-tiny --images data/ks/ks_val.txt --gt-boxes --out graded  # reader alone

The same conventions as demo.py (--images is an image, a folder or a ks txt
file; unreadable images are listed and passed over; exit status 0, 1 with
--strict, 2), and the same pipeline: the detector's snapshot is loaded as
demo.py loads it and each page goes through test/run.py's detect_records.
Then, per page:

1. the boxes scoring at least --threshold (default db.grade_threshold), one
   per place (db.same_place_iou), none with db.grade_inside_share of its area
   inside a better one (reader/grading.py select_boxes);
2. each box read by the recognizer (--reader, config/reader/<name>.json, its
   snapshot --reader-iter; train it with train_reader.py): the printed part
   and the handwritten answer (reader/engine.py); where it is not sure (not
   read as answered rightly, or a best path under reader.settled_confidence),
   PP-OCR's line recognizer reads the box too and the readings are weighed
   together (reader/ppocr.py, reader/decoding.py second_opinion; installed
   with `pip install --no-deps -r requirements-ocr.txt`, which
   scripts/setup.sh does where it can; without it grade.py says so and reads
   with the recognizer alone);
3. each problem marked exactly (reader/arithmetic.py): right, wrong,
   unanswered (nothing written) or unreadable (a box with nothing in it, a
   printed part that is no problem, an answer that is not a number or not
   >, < or = where a relation is asked), with the reason;
4. `<out>/<stem>.json` (every problem: box, detector score and category,
   reading and confidences, decision, the right answer, the reason; the
   page's score) and `<out>/<stem>.jpg` (a tick or a cross and the right
   answer beside each problem, a '?' for unanswered and unreadable ones, the
   score on top).

`<out>/summary.json` holds the totals and the time per page. The outputs are
checked before anything is loaded, as demo.py's are (outputs.py; grade.py's
manifest is .grade-outputs.json). When --images
is a ks txt file with its side file ks_<split>_text.jsonl beside it
(docs/ks-format.md), the readings are also compared with it: of the
ground-truth problems the detector found (IoU >= db.grade_truth_iou), the share whose
printed part and answer were read exactly and whose decision was right.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import Counter

from config import ConfigError
from exit_codes import PROBLEMS, REFUSED
from nnet.device import choose_device, precision_for
from test.cli import add_network_arguments, load_test_config, show_warnings_briefly

DEFAULT_READER = "CRNN-tiny"
SUMMARY = "summary.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Grade 口算 pages: detect, read and mark every problem.")
    add_network_arguments(parser, testiter_required=False)
    parser.add_argument("--images", required=True, help="an image, a folder of images or a ks_*.txt file")
    parser.add_argument("--out", required=True, help="folder for the pictures and JSON files")
    parser.add_argument("--reader", default=DEFAULT_READER,
                        help=f"recognizer config (config/reader/<name>.json; default {DEFAULT_READER})")
    parser.add_argument("--reader-iter", default="latest",
                        help="recognizer snapshot: an iteration or 'latest' (default)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="grade the boxes scoring at least this (default: db.grade_threshold)")
    parser.add_argument("--gt-boxes", action="store_true",
                        help="with a ks txt file: grade the boxes of its side file "
                             "ks_<split>_text.jsonl instead of detecting (the reader alone)")
    parser.add_argument("--max-images", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--recursive", action="store_true",
                        help="with a folder: the images of its sub-folders too")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when any image cannot be read")
    args = parser.parse_args(argv)
    if args.gt_boxes and not args.images.lower().endswith(".txt"):
        parser.error("--gt-boxes needs --images to be a ks txt file with its side file")
    if not args.gt_boxes and args.testiter is None:
        parser.error("give --testiter (the detector's snapshot), or --gt-boxes with a ks txt file")
    if args.reader_iter != "latest":
        try:
            args.reader_iter = int(args.reader_iter)
        except ValueError:
            parser.error(f"--reader-iter: an iteration number or 'latest', got {args.reader_iter!r}")
    if args.max_images < 0:
        parser.error(f"--max-images must be >= 0 (0: all), got {args.max_images}")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        parser.error(f"--threshold must be within [0, 1], got {args.threshold}")
    return args


def side_file(images: str) -> str | None:
    """ks_<split>_text.jsonl beside a ks_<split>.txt, when there is one."""
    if not images.lower().endswith(".txt"):
        return None
    path = os.path.splitext(images)[0] + "_text.jsonl"
    return path if os.path.isfile(path) else None


def main(argv=None) -> int:
    args = parse_args(argv)
    show_warnings_briefly()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from demo import (
        cannot_write,
        end_status,
        image_paths,
        output_stems,
        own_files,
        planned_outputs,
        readable_images,
    )
    from nnet.snapshot import SnapshotError
    from reader.arithmetic import DECISIONS
    from reader.config import load_reader_config
    from reader.engine import load_reader
    from reader.grading import (
        accuracy,
        compare_with_truth,
        draw_grades,
        grade_boxes,
        page_json,
        score_line,
        score_of,
        select_boxes,
    )
    from reader.text import TextFileError, read_text_file
    from test.evaluate import write_json
    from test.timing import StageTimer, device_sync
    from test.visualize import write_picture

    try:
        cfg = load_test_config(args.config, args.suffix, check_data=False,
                               precision=args.precision, assignments=args.set)
        device = choose_device(args.device)
        precision = precision_for(cfg, device, args.precision and "--precision")
        paths, passed_over = image_paths(args.images, args.recursive)
        reader_cfg = load_reader_config(args.reader)
        truth_path = side_file(args.images)
        truth = {}
        if truth_path:
            truth = {os.path.abspath(p.image): p for p in read_text_file(truth_path)}
        if args.gt_boxes and not truth_path:
            raise ValueError(f"--gt-boxes: no side file {os.path.splitext(args.images)[0]}_text.jsonl")
    except (ConfigError, ValueError, TextFileError) as e:
        print(f"grade.py: {e}", file=sys.stderr)
        return REFUSED
    if args.max_images > 0:
        paths = paths[:args.max_images]
    print(precision)
    readable = readable_images("grade.py", args.images, paths, passed_over,
                               cfg.db.max_image_pixels)
    if readable is None:
        return REFUSED
    records, unreadable = readable
    stems = output_stems(records, args.images, reserved=own_files("grade.py"))
    outputs = planned_outputs("grade.py", args.out, stems,
                              [*paths, args.images] + ([truth_path] if truth_path else []),
                              extra=[SUMMARY])
    if outputs is None:
        return REFUSED
    try:
        net, iteration = None, None
        if not args.gt_boxes:
            from nnet.checkpoints import find_snapshot, load_trained_network
            snapshot = find_snapshot(cfg, args.testiter)
            net, iteration = load_trained_network(cfg, snapshot, device), snapshot.iteration
        reader = load_reader(reader_cfg, args.reader_iter, device)
    except SnapshotError as e:
        print(f"grade.py: {e}", file=sys.stderr)
        return REFUSED

    threshold = cfg.db.grade_threshold if args.threshold is None else args.threshold
    names = cfg.db.category_names
    about = {"detector": {"config": cfg.name, "iteration": iteration, "threshold": threshold}
             if not args.gt_boxes else {"boxes": "ground truth (--gt-boxes)"},
             "reader": {"config": reader_cfg.name, "iteration": reader.iteration}}
    if reader.short_of_plan:
        about["reader"]["short_of_plan"] = reader.short_of_plan
    about["reader"]["second_opinion"] = ("PP-OCR where the recognizer is not sure"
                                         if reader.line_reader is not None else "none")
    if reader.missing:   # asked for in the config, not installed: said once, graded without it
        print(f"grade.py: note: {reader.missing}; reading with the recognizer alone")
        about["reader"]["second_opinion_missing"] = reader.missing
    decisions, counts, pages = Counter(), {}, []
    reading_seconds = [0.0]
    marking_seconds = [0.0]
    second_opinions = [0]

    def grade_page(record, image, detections):
        started = time.perf_counter()
        page_truth = truth.get(os.path.abspath(record.path))
        if args.gt_boxes:
            boxes = page_truth.boxes if page_truth is not None else []
        else:
            boxes = select_boxes(detections, threshold, cfg.db.same_place_iou,
                                 cfg.db.grade_inside_share)
        marking = time.perf_counter()
        problems = grade_boxes(reader, image, boxes)
        marking_seconds[0] += time.perf_counter() - marking
        second_opinions[0] += sum(p.second_opinion for p in problems)
        result = page_json(record.path, image, problems, None if args.gt_boxes else names, **about)
        if page_truth is not None:
            page_counts = compare_with_truth(problems, page_truth, cfg.db.grade_truth_iou)
            result["truth"] = page_counts
            for key, value in page_counts.items():
                counts[key] = counts.get(key, 0) + value
        stem = stems[record.image_id]
        path = os.path.join(args.out, stem)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_picture(path + ".jpg", draw_grades(image, problems))
        write_json(path + ".json", result)
        outputs.wrote(stem + ".jpg", stem + ".json")
        for decision in DECISIONS:
            decisions[decision] += result["score"][decision]
        pages.append({"image": record.path, "score": result["score"]["score"]})
        reading_seconds[0] += time.perf_counter() - started

    def cannot_decode(record, error):
        unreadable.append((record.path, error.reason or str(error)))

    what = "ground-truth boxes" if args.gt_boxes else f"{cfg.name} iteration {iteration}"
    print(f"grading {len(records)} images with {what} and reader {reader_cfg.name} "
          f"iteration {reader.iteration} on {device}")
    timer = StageTimer(device_sync(device))
    started = time.perf_counter()
    try:
        outputs.begin()
        if args.gt_boxes:
            from tqdm import tqdm

            from db import ImageReadError, read_image
            for record in tqdm(records, desc="grading", unit="image", dynamic_ncols=True):
                try:
                    image = read_image(record.path)
                except ImageReadError as error:
                    cannot_decode(record, error)
                    continue
                grade_page(record, image, None)
        else:
            from test.run import detect_records
            detect_records(net, records, cfg, device, timer, on_image=grade_page, progress=True,
                           on_error=cannot_decode)
    except OSError as e:  # checked at the start; a disk filling up is what is left
        print(f"grade.py: {cannot_write(e)}", file=sys.stderr)
        return PROBLEMS
    seconds = time.perf_counter() - started
    totals = score_of(decisions)
    summary = {**about, "images": len(pages), "totals": totals,
               "seconds_per_page": round(seconds / max(len(pages), 1), 3),
               "reading_seconds_per_page": round(reading_seconds[0] / max(len(pages), 1), 3),
               # the reading and marking alone (reader/grading.py grade_boxes), without writing
               "read_mark_seconds_per_page": round(marking_seconds[0] / max(len(pages), 1), 3),
               "second_opinions": second_opinions[0],
               "pages": pages}
    if counts:
        summary["accuracy"] = accuracy(counts)
    try:
        write_json(os.path.join(args.out, SUMMARY), summary)
        outputs.wrote(SUMMARY)
        outputs.finish()
    except OSError as e:
        print(f"grade.py: {cannot_write(e)}", file=sys.stderr)
        return PROBLEMS
    print(f"{len(pages)} pages, {totals['problems']} problems: {score_line(totals)}; "
          f"{summary['seconds_per_page']} s per page ({summary['reading_seconds_per_page']} s reading, "
          f"marking and writing, of which {summary['read_mark_seconds_per_page']} s reading and "
          f"marking; PP-OCR asked about {second_opinions[0]} problems); pictures and JSON files "
          f"in {args.out}")
    if counts:
        a = summary["accuracy"]
        print(f"against {os.path.basename(truth_path)}: found {a['found']} of {a['truth']} problems; "
              f"of those, printed part exact {a['printed_exact']}, answer exact {a['answer_exact']}, "
              f"decision right {a['decision_accuracy']}")
    if reader.short_of_plan:  # the results are only as good as that run
        print(f"warning: the reader: {reader.short_of_plan}")
    return end_status(unreadable, len(paths), bool(pages), args.strict)


if __name__ == "__main__":
    sys.exit(main())
