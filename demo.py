#!/usr/bin/env python
"""Detect objects on pictures without annotations, with a trained CenterNet.

    python demo.py CenterNet-52 --testiter 5000 --images page.jpg --out demo_out
    python demo.py CenterNet-52 --testiter best --images photos/ --out demo_out
    python demo.py CenterNet-52 --testiter latest --images data/ks/ks_test.txt --out demo_out
    python demo.py CenterNet-52 --onnx CenterNet-52_5000.onnx --images photos/ --out demo_out

--images is one image, a folder (its .jpg, .jpeg, .png and .bmp files, sorted
by name) or a ks_*.txt file (the image of each line; its boxes are ignored).
For each image it writes `<out>/<stem>.jpg`, the picture with the boxes
scoring at least db.vis_threshold, and `<out>/<stem>.json`, every detection
(box x1, y1, x2, y2 in image pixels, score, class index, class name). It runs
the pipeline of test.py (test/run.py, test/kp_detection.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from config import ConfigError
from test.cli import (add_network_arguments, choose_device, load_test_config, resolve_iteration,
                      show_warnings_briefly)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Detect objects on pictures with a trained CenterNet.")
    add_network_arguments(parser, testiter_required=False)
    parser.add_argument("--onnx", default=None, metavar="FILE",
                        help="run this model exported by export.py (onnxruntime) instead of a "
                             "snapshot; the config still gives scales, decoding and names")
    parser.add_argument("--images", required=True,
                        help="an image, a folder of images or a ks_*.txt file")
    parser.add_argument("--out", required=True, help="folder for the pictures and JSON files")
    args = parser.parse_args(argv)
    if (args.testiter is None) == (args.onnx is None):
        parser.error("give either --testiter (a snapshot) or --onnx (an exported model)")
    return args


def image_paths(source: str) -> list[str]:
    """The images named by --images: a file, a folder or a ks txt file."""
    if os.path.isdir(source):
        names = sorted(n for n in os.listdir(source) if n.lower().endswith(IMAGE_EXTENSIONS))
        if not names:
            raise ValueError(f"{source}: no {', '.join(IMAGE_EXTENSIONS)} files in this folder")
        return [os.path.join(source, n) for n in names]
    if not os.path.isfile(source):
        raise ValueError(f"{source}: no such file or folder")
    if source.lower().endswith(".txt"):
        return ks_image_paths(source)
    return [source]


def ks_image_paths(path: str) -> list[str]:
    """The image path of each line of a ks txt file (ks-format.md), boxes ignored."""
    folder = os.path.dirname(os.path.abspath(path))
    paths = []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            image = line.split()[0]
            paths.append(image if os.path.isabs(image) else os.path.join(folder, image))
    if not paths:
        raise ValueError(f"{path}: no image lines")
    return paths


def unique_stems(paths: list[str]) -> list[str]:
    """File stems, with _2, _3, ... added where two images share one."""
    stems, seen = [], {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return stems


def image_records(paths: list[str]):
    """An ImageRecord without boxes per image; every unreadable image named at once."""
    from db import ImageRecord, image_size
    from db.errors import ImageReadError

    records, problems = [], []
    for i, path in enumerate(paths):
        try:
            width, height = image_size(path)
        except ImageReadError as e:
            problems.append(str(e))
            continue
        records.append(ImageRecord(image_id=i + 1, path=os.path.abspath(path), width=width,
                                   height=height, boxes=[], classes=[]))
    if problems:
        raise ValueError("cannot read these images:\n  " + "\n  ".join(problems))
    return records


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

    from nnet.checkpoints import load_trained_network
    from nnet.onnx_model import OnnxNetwork
    from test.evaluate import write_json
    from test.run import detect_records
    from test.timing import StageTimer, device_sync
    from test.visualize import render, write_picture

    try:
        cfg = load_test_config(args.config, args.suffix, check_data=False,
                               precision=args.precision, assignments=args.set)
        records = image_records(image_paths(args.images))
    except (ConfigError, ValueError) as e:
        print(f"demo.py: {e}", file=sys.stderr)
        return 2
    device = choose_device(args.device)
    iteration = args.onnx or resolve_iteration(cfg, args.testiter)
    try:
        net = (OnnxNetwork(args.onnx, cfg, device) if args.onnx
               else load_trained_network(cfg, iteration, device))
    except (FileNotFoundError, RuntimeError) as e:
        print(f"demo.py: {e}", file=sys.stderr)
        return 1

    os.makedirs(args.out, exist_ok=True)
    stems = dict(zip((r.image_id for r in records), unique_stems([r.path for r in records])))
    names = cfg.db.category_names

    def save(record, image, detections):
        stem = os.path.join(args.out, stems[record.image_id])
        write_picture(stem + ".jpg", render(image, detections, cfg))
        write_json(stem + ".json", detections_json(record, detections, names))

    print(f"detecting with {cfg.name} iteration {iteration} on {len(records)} images on {device}")
    timer = StageTimer(device_sync(device))
    detections = detect_records(net, records, cfg, device, timer, on_image=save, progress=True)
    total = sum(len(d) for d in detections.values())
    print(f"{total} detections; pictures and JSON files in {args.out}")
    print(timer.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
