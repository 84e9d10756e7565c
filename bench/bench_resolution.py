"""The same pages at any resolution: one trained snapshot tested on the first
validation pages as generated and resized so that their long side is 700,
1400, 2800 and 4032 pixels (boxes scaled along, JPEG quality 95), with the
test scales chosen from each page (db.test_scale_mode "objects",
test/scales.py) and, as the baseline in the same run, with the scales of the
stored pixels as before (db.test_scale_mode "pixels", db.test_scales [0.6]).

    python -m bench.bench_resolution CenterNet-tiny --testiter latest
    python -m bench.bench_resolution CenterNet-tiny --testiter latest --pages 40 --repeat 3

Reported per size: AP and AP50 (test/evaluate.py, as test.py), the
milliseconds per page in the network (the first look's whole pass included),
per page in all stages (reading and resizing the JPEG included, as if nothing
overlapped), and wall-clock per page (the next page is read while the network
runs), each the median of `--repeat` passes; then the ratios of the 4032-px
pages to the 1400-px ones, and the peak memory of demo.py on one 4032-px page
(its own process, `ru_maxrss`). The pages are written to --workdir once and
kept. Writes the "resolution-<config>" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import cv2
import torch

from bench.report import markdown_table, write_section
from config import PROJECT_ROOT, load_config
from db import load_db, read_image
from nnet.checkpoints import find_snapshot, load_trained_network
from test.cli import iteration_argument
from test.run import detect_split

SIDES = (700, 1400, 2800, 4032)
JPEG_QUALITY = 95
BEFORE = {"test_scale_mode": "pixels", "test_scales": [0.6]}   # CenterNet-tiny before issue 22


def resized_pages(db, count: int, side: int, out_dir: str) -> str:
    """The first `count` pages of `db` with their long side `side` px, and
    their ks_val.txt, in `out_dir` (made once); returns out_dir."""
    listing = os.path.join(out_dir, "ks_val.txt")
    if os.path.isfile(listing):
        return out_dir
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    lines = []
    for i, record in enumerate(db.records[:count]):
        image = read_image(record.path)
        ratio = side / max(record.height, record.width)
        width, height = round(record.width * ratio), round(record.height * ratio)
        resized = cv2.resize(image, (width, height),
                             interpolation=cv2.INTER_AREA if ratio < 1 else cv2.INTER_CUBIC)
        name = f"images/page_{i:03d}.jpg"
        cv2.imwrite(os.path.join(out_dir, name), resized, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        boxes = record.boxes * [width / record.width, height / record.height,
                                width / record.width, height / record.height]
        lines.append(" ".join([name] + [f"{x1:.2f},{y1:.2f},{x2:.2f},{y2:.2f},{c}" for
                                        (x1, y1, x2, y2), c in zip(boxes, record.classes)]))
    tmp = listing + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, listing)
    return out_dir


def measure(net, cfg, db, count: int):
    """(AP, AP50, network ms/page, all stages ms/page, wall ms/page) of one pass."""
    with tempfile.TemporaryDirectory() as out_dir:
        start = time.perf_counter()
        run = detect_split(net, cfg, db, "cpu", out_dir, max_images=count)
        wall = time.perf_counter() - start
    seconds, pages = run.timer.seconds, run.timer.images
    network = seconds["network"] + seconds.get("first look", 0.0)
    return (run.metrics["AP"], run.metrics["AP50"], 1000 * network / pages,
            1000 * sum(seconds.values()) / pages, 1000 * wall / pages)


# Runs demo.py as its only child and prints that child's peak resident memory
# (ru_maxrss, KiB): measured from a fresh process, so nothing of this one counts.
_PEAK_OF_CHILD = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def demo_peak_memory(args, page: str) -> float:
    """Peak resident memory, MiB, of demo.py detecting `page` in its own process."""
    with tempfile.TemporaryDirectory() as out_dir:
        demo = [sys.executable, os.path.join(PROJECT_ROOT, "demo.py"), args.config,
                "--testiter", str(args.testiter), "--images", page, "--out",
                os.path.join(out_dir, "out"), "--device", "cpu"]
        done = subprocess.run([sys.executable, "-c", _PEAK_OF_CHILD, *demo], check=True,
                              capture_output=True, text=True)
    return int(done.stdout.split()[-1]) / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--testiter", type=iteration_argument, default="latest")
    parser.add_argument("--pages", type=int, default=40, help="first N validation pages")
    parser.add_argument("--repeat", type=int, default=3, help="passes per size (medians)")
    parser.add_argument("--workdir", default=os.path.join(PROJECT_ROOT, "cache", "bench_resolution"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    base = load_config(args.config)
    snapshot = find_snapshot(base, args.testiter)
    net = load_trained_network(base, snapshot, torch.device("cpu"))
    val = load_db(base, base.system.val_split)
    count = min(args.pages, len(val))
    sets = {"as generated": base.system.data_dir}
    for side in SIDES:
        sets[f"{side} px"] = resized_pages(val, count, side, os.path.join(args.workdir, str(side)))

    rows, figures = [], {}
    for mode, settings in (("objects (now)", {}), ("pixels x 0.6 (before)", BEFORE)):
        for label, data_dir in sets.items():
            cfg = load_config(args.config, overrides={"system": {"data_dir": data_dir},
                                                      "db": dict(settings)})
            db = load_db(cfg, base.system.val_split if label == "as generated" else "val")
            passes = [measure(net, cfg, db, count) for _ in range(args.repeat)]
            ap, ap50 = passes[0][:2]   # deterministic: the same in every pass
            times = [statistics.median(p[k] for p in passes) for k in (2, 3, 4)]
            figures[(mode, label)] = (ap, ap50, *times)
            rows.append([mode, label, f"{ap:.3f}", f"{ap50:.3f}",
                         *(f"{t:.0f}" for t in times)])
            print(rows[-1], flush=True)

    now = {label: figures[("objects (now)", label)] for label in sets}
    generated = now["as generated"]
    worst_ap = max(abs(now[f"{s} px"][0] - generated[0]) for s in SIDES)
    worst_ap50 = max(abs(now[f"{s} px"][1] - generated[1]) for s in SIDES)
    large, usual = now["4032 px"], now["1400 px"]
    peak = demo_peak_memory(args, os.path.join(sets["4032 px"], "images", "page_000.jpg"))
    page = read_image(os.path.join(sets["4032 px"], "images", "page_000.jpg"))
    body = (
        f"Snapshot {base.name} iteration {snapshot.iteration}; the first {count} pages of "
        f"{val.source}, as generated and resized to each long side (JPEG quality "
        f"{JPEG_QUALITY}, boxes scaled along). 'objects': the config as it is "
        f"(db.test_scale_mode {base.db.test_scale_mode!r}, test_object_height "
        f"{base.db.test_object_height:g}, first_look_side {base.db.first_look_side}); "
        f"'pixels x 0.6': the scales of the stored pixels as before, in the same run. "
        f"Times are medians of {args.repeat} passes, ms per page; 'network' includes the "
        f"first look's whole pass; 'all stages' adds reading and resizing the JPEG, "
        f"decoding, the centre check, NMS and the box classifier as if nothing overlapped; "
        f"'wall' is the pass's clock time per page (the next page is read while the network "
        f"runs).\n\n"
        + markdown_table(["scales", "pages", "AP", "AP50", "network ms", "all stages ms",
                          "wall ms"], rows)
        + f"\n\nWith the scales from the page, the largest difference from the pages as "
          f"generated is {worst_ap:.3f} AP and {worst_ap50:.3f} AP50 (goal: 0.03 each). "
          f"A 4032-px page against a 1400-px one: network {large[2] / usual[2]:.2f}x, all "
          f"stages {large[3] / usual[3]:.2f}x, wall {large[4] / usual[4]:.2f}x (goal: at most "
          f"1.5x). Peak memory of `demo.py` on one {page.shape[1]} x {page.shape[0]} page "
          f"({page.shape[0] * page.shape[1] / 1e6:.1f} megapixels): {peak:.0f} MiB.")
    print(write_section(f"resolution-{base.name}", body))


if __name__ == "__main__":
    main()
