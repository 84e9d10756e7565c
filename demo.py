#!/usr/bin/env python
"""Detect objects on pictures without annotations, with a trained CenterNet.

    python demo.py CenterNet-52 --testiter 5000 --images page.jpg --out demo_out
    python demo.py CenterNet-52 --testiter best --images photos/ --out demo_out
    python demo.py CenterNet-52 --testiter latest --images data/ks/ks_test.txt --out demo_out
    python demo.py CenterNet-52 --onnx CenterNet-52_5000.onnx --images photos/ --out demo_out

--images is one image, a folder (its .jpg, .jpeg, .png and .bmp files, sorted
by name; with --recursive those of its sub-folders too) or a ks_*.txt file
(the image of each line; its boxes are ignored). What a folder holds besides
is named, with why it was passed over. For each image it writes
`<out>/<stem>.jpg`, the picture with the boxes scoring at least
db.draw_threshold (one per place), and `<out>/<stem>.json`, every detection (box x1, y1, x2, y2
in image pixels, score, class index, class name); a sub-folder's images go to
the same sub-folder of <out>. It runs the pipeline of test.py (test/run.py,
test/kp_detection.py).

Every output path is checked before anything is loaded (outputs.py): an
--out that cannot be written, an output that would replace an input, and a
file in --out that demo.py did not write (its manifest .demo-outputs.json
lists those it did, with their SHA-256) are refused, and nothing is written.
Images of one stem get outputs of their own (a, a_2, ...).

An image that cannot be read (empty, corrupt, over db.max_image_pixels) does
not stop the others: every readable image is processed and the unreadable
ones are listed at the end, each with its reason. Exit status (exit_codes.py):
0 when at least one image was processed, 2 when none could be (or the config
or snapshot is unusable), 1 with --strict when any image could not be read.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from config import ConfigError
from exit_codes import DONE, PROBLEMS, REFUSED
from nnet.device import Precision, choose_device, precision_for
from test.cli import add_network_arguments, load_test_config, show_warnings_briefly

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
SHOWN_ENTRIES = 20  # passed-over or unreadable files listed one a line; the rest are counted


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Detect objects on pictures with a trained CenterNet.")
    add_network_arguments(parser, testiter_required=False)
    parser.add_argument("--onnx", default=None, metavar="FILE",
                        help="run this model exported by export.py (onnxruntime) instead of a "
                             "snapshot; the config still gives scales, decoding and names")
    parser.add_argument("--images", required=True,
                        help="an image, a folder of images or a ks_*.txt file")
    parser.add_argument("--out", required=True, help="folder for the pictures and JSON files")
    parser.add_argument("--recursive", action="store_true",
                        help="with a folder: the images of its sub-folders too")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when any image cannot be read (default: "
                             "only when none can, with status 2)")
    args = parser.parse_args(argv)
    if (args.testiter is None) == (args.onnx is None):
        parser.error("give either --testiter (a snapshot) or --onnx (an exported model)")
    return args


def image_paths(source: str, recursive: bool = False) -> tuple[list[str], list[tuple[str, str]]]:
    """The images named by --images (a file, a folder or a ks txt file), and
    the entries of a folder passed over, each with why: (paths, [(path, reason)])."""
    if os.path.isdir(source):
        paths, passed_over = _folder_images(source, recursive)
        if not paths:
            raise ValueError(f"{source}: no {', '.join(IMAGE_EXTENSIONS)} files in this folder"
                             + (" or its sub-folders" if recursive else "")
                             + _listing(" (it holds ", passed_over, ")"))
        return paths, passed_over
    if not os.path.isfile(source):
        from db.image_io import not_a_file
        why = not_a_file(source)
        raise ValueError(f"{source}: " + ("no such file or folder" if why == "no such file" else
                                          f"{why}; --images takes an image, a folder of images "
                                          f"or a ks txt file"))
    if source.lower().endswith(".txt"):
        from db.ks import ks_image_paths
        return ks_image_paths(source), []  # the image of each line; boxes ignored
    return [source], []


def _folder_images(folder: str, recursive: bool):
    paths, passed_over = [], []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            if not recursive:
                passed_over.append((path + os.sep, "a folder (--recursive reads its images too)"))
            elif os.path.islink(path):  # a link to a parent would never end
                passed_over.append((path + os.sep, "a link to a folder, not followed"))
            else:
                more, more_passed_over = _folder_images(path, recursive)
                paths += more
                passed_over += more_passed_over
        elif name.lower().endswith(IMAGE_EXTENSIONS):
            paths.append(path)
        else:
            passed_over.append((path, f"not named {', '.join(IMAGE_EXTENSIONS)}"))
    return paths, passed_over


def _listing(head: str, entries: list[tuple[str, str]], tail: str = "") -> str:
    """'head a (why), b (why), ... and N more tail'; '' without entries."""
    if not entries:
        return ""
    shown = [f"{path} ({why})" for path, why in entries[:SHOWN_ENTRIES]]
    more = len(entries) - len(shown)
    return head + ", ".join(shown) + (f" and {more} more" if more else "") + tail


def _lines(entries: list[tuple[str, str]]) -> str:
    """Each 'path: reason' on a line of its own, the first SHOWN_ENTRIES."""
    lines = [f"  {path}: {why}" for path, why in entries[:SHOWN_ENTRIES]]
    if len(entries) > SHOWN_ENTRIES:
        lines.append(f"  ... and {len(entries) - SHOWN_ENTRIES} more")
    return "\n".join(lines)


def unique_stems(paths: list[str], root: str | None = None, reserved=()) -> list[str]:
    """File stems (relative to the folder `root`, with its sub-folders, when
    given), with _2, _3, ... added where two images share one, never making
    another image's stem or one of `reserved` (outputs.unique_stems)."""
    from outputs import unique_stems as made_unique

    names = [os.path.relpath(path, root) if root else os.path.basename(path) for path in paths]
    return made_unique([os.path.splitext(name)[0] for name in names], reserved)


def image_records(paths: list[str], max_pixels: int):
    """An ImageRecord without boxes per readable image, and the others with
    why: (records, [(path, reason)]). The size rule is db.max_image_pixels."""
    from db import ImageRecord, image_size
    from db.errors import ImageReadError

    records, unreadable = [], []
    for i, path in enumerate(paths):
        try:
            width, height = image_size(path, max_pixels)
        except ImageReadError as e:
            unreadable.append((path, e.reason or str(e)))
            continue
        records.append(ImageRecord(image_id=i + 1, path=os.path.abspath(path), width=width,
                                   height=height, boxes=[], classes=[]))
    return records, unreadable


def readable_images(program: str, source: str, paths: list[str],
                    passed_over: list[tuple[str, str]], max_pixels: int):
    """demo.py's and grade.py's first look at --images: says on stderr which
    entries were passed over, then reads every image's size. (records,
    unreadable) as `image_records` gives them, or None after saying that none
    of them can be read."""
    if passed_over:
        print(f"passed over {len(passed_over)} entries of {source}:\n{_lines(passed_over)}",
              file=sys.stderr)
    records, unreadable = image_records(paths, max_pixels)
    if not records:
        print(f"{program}: none of the {len(paths)} images can be read:\n{_lines(unreadable)}",
              file=sys.stderr)
        return None
    return records, unreadable


def output_stems(records, source: str, reserved=()) -> dict:
    """image_id -> the stem of its output files: the image's name, relative
    to --images when that is a folder (sub-folders kept), made unique and
    none of `reserved` (the names of the tool's own files)."""
    root = os.path.abspath(source) if os.path.isdir(source) else None
    return dict(zip((r.image_id for r in records),
                    unique_stems([r.path for r in records], root=root, reserved=reserved)))


def planned_outputs(program: str, out: str, stems: dict, inputs, extra=()):
    """The OutputPlan (outputs.py) of `program`'s files in `out`: <stem>.jpg
    and <stem>.json per image and the files named in `extra`, checked against
    `inputs` and what `out` holds; None after saying on stderr why they may
    not be written (nothing was)."""
    from outputs import OutputError, OutputPlan

    plan = OutputPlan(program, out, inputs)
    try:
        plan.check([stem + extension for stem in stems.values() for extension in (".jpg", ".json")]
                   + list(extra))
    except OutputError as e:
        print(f"{program}: {e}", file=sys.stderr)
        return None
    return plan


def own_files(program: str) -> tuple[str, ...]:
    """The stems an image may not take in `program`'s --out: its manifest's
    (and grade.py's summary.json)."""
    from outputs import manifest_name

    return (os.path.splitext(manifest_name(program))[0],) + (("summary",) if program == "grade.py"
                                                             else ())


def detections_json(record, detections, names) -> dict:
    return {
        "image": record.path, "width": record.width, "height": record.height,
        "detections": [
            {"box": [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)],
             "score": round(score, 5), "class": int(cls), "name": names[int(cls)]}
            for x1, y1, x2, y2, score, cls in detections.astype(float).tolist()],
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    show_warnings_briefly()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from nnet.checkpoints import find_snapshot, load_trained_network
    from nnet.onnx_model import OnnxModelError, OnnxNetwork
    from nnet.snapshot import SnapshotError
    from test.evaluate import write_json
    from test.run import detect_records
    from test.timing import StageTimer, device_sync
    from test.visualize import render, write_picture

    try:
        cfg = load_test_config(args.config, args.suffix, check_data=False,
                               precision=args.precision, assignments=args.set)
        device = choose_device(args.device)
        precision = precision_for(cfg, device, args.precision and "--precision")
        paths, passed_over = image_paths(args.images, args.recursive)
    except (ConfigError, ValueError) as e:
        print(f"demo.py: {e}", file=sys.stderr)
        return REFUSED
    print(Precision("fp32", "--onnx: onnxruntime runs the exported model in float32")
          if args.onnx else precision)
    readable = readable_images("demo.py", args.images, paths, passed_over,
                               cfg.db.max_image_pixels)
    if readable is None:
        return REFUSED
    records, unreadable = readable
    stems = output_stems(records, args.images, reserved=own_files("demo.py"))
    outputs = planned_outputs("demo.py", args.out, stems, [*paths, args.images])
    if outputs is None:
        return REFUSED
    try:
        if args.onnx:
            net, iteration = OnnxNetwork(args.onnx, cfg, device), args.onnx
        else:
            snapshot = find_snapshot(cfg, args.testiter)
            net, iteration = load_trained_network(cfg, snapshot, device), snapshot.iteration
    except (SnapshotError, OnnxModelError) as e:
        print(f"demo.py: {e}", file=sys.stderr)
        return REFUSED

    names = cfg.db.category_names

    def save(record, image, detections):
        stem = stems[record.image_id]
        path = os.path.join(args.out, stem)
        os.makedirs(os.path.dirname(path), exist_ok=True)  # a sub-folder's images (--recursive)
        write_picture(path + ".jpg", render(image, detections, cfg))
        write_json(path + ".json", detections_json(record, detections, names))
        outputs.wrote(stem + ".jpg", stem + ".json")

    def cannot_decode(record, error):
        unreadable.append((record.path, error.reason or str(error)))

    print(f"detecting with {cfg.name} iteration {iteration} on {len(records)} images on {device}")
    timer = StageTimer(device_sync(device))
    try:
        outputs.begin()
        detections = detect_records(net, records, cfg, device, timer, on_image=save, progress=True,
                                    on_error=cannot_decode)
        outputs.finish()
    except OSError as e:  # checked at the start; a disk filling up is what is left
        print(f"demo.py: {cannot_write(e)}", file=sys.stderr)
        return PROBLEMS
    total = sum(len(d) for d in detections.values())
    print(f"{total} detections on {len(detections)} images; pictures and JSON files in {args.out}")
    print(timer.report())
    return end_status(unreadable, len(paths), bool(detections), args.strict)


def cannot_write(error: OSError) -> str:
    """'cannot write PATH: why' for an error of writing an output."""
    from outputs import why_not_writable

    return (f"cannot write {error.filename or 'an output file'}: {why_not_writable(error)}; "
            f"the files written so far are kept")


def end_status(unreadable: list[tuple[str, str]], images: int, processed: bool,
               strict: bool) -> int:
    """List the images that could not be read; the exit status of a run over
    `images` images (demo.py, grade.py): 2 when none was processed, 1 with
    --strict when some could not be read, else 0."""
    if unreadable:
        print(f"could not read {len(unreadable)} of {images} images (left out):\n"
              f"{_lines(unreadable)}", file=sys.stderr)
    if not processed:
        return REFUSED
    return PROBLEMS if unreadable and strict else DONE


if __name__ == "__main__":
    sys.exit(main())
