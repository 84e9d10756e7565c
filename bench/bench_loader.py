"""Data loading during training: images per second of CenterNet-tiny training
on the CPU with 0, 1 and 2 DataLoader workers, and the share of every step
spent waiting for the next batch.

    python -m bench.bench_loader [--data data/ks] [--steps 30] [--workers 0 1 2]

Each setting runs train.py's own loop (train.main, the tiny config as it is,
--device cpu --workers W) for `--warmup` + `--steps` iterations in a scratch
folder, and reads the per-iteration timings train.py writes to log.jsonl
(step_s: from the end of one step to the end of the next; data_wait_s: the
part of it spent waiting for the batch). The first `--warmup` iterations
(workers starting, first allocations) are left out. With no --data and no
data/ks, a small synthetic set is generated first (python -m db.synth).
Writes the "loader" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile

from bench.report import markdown_table, write_section
from config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = "CenterNet-tiny"
GENERATED_PAGES = {"train": 64, "val": 4, "test": 4}


def ensure_data(data_dir: str) -> str:
    if os.path.isfile(os.path.join(data_dir, "ks_train.txt")):
        return data_dir
    from db.synth import generate
    print(f"no ks_train.txt in {data_dir}: generating {GENERATED_PAGES} synthetic pages",
          file=sys.stderr)
    generate(data_dir, GENERATED_PAGES, seed=0)
    return data_dir


def run_training(data_dir: str, workers: int, iterations: int, scratch: str) -> list[dict]:
    """train.main on the tiny config; the log.jsonl lines of its steps."""
    import train
    name = f"bench_loader_w{workers}"
    config_path = os.path.join(scratch, f"{name}.json")
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump({"base": CONFIG,
                   "system": {"data_dir": data_dir, "cache_dir": os.path.join(scratch, "cache"),
                              "result_dir": os.path.join(scratch, "results"),
                              "max_iter": iterations, "snapshot": iterations,
                              "val_iter": 0, "val_ap_iter": 0}}, f)
    with contextlib.redirect_stderr(io.StringIO()):  # the progress bar
        code = train.main([config_path, "--device", "cpu", "--workers", str(workers)])
    if code != 0:
        raise SystemExit(f"train.py failed (exit {code}) with --workers {workers}")
    cfg = load_config(config_path)
    with open(os.path.join(cfg.snapshot_dir, "log.jsonl"), encoding="utf-8") as f:
        return [entry for entry in map(json.loads, f) if "step_s" in entry]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "ks"),
                        help="folder with ks_train.txt (default: data/ks)")
    parser.add_argument("--steps", type=int, default=30, help="measured iterations per setting")
    parser.add_argument("--warmup", type=int, default=3, help="iterations left out at the start")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)

    data_dir = ensure_data(os.path.abspath(args.data))
    cfg = load_config(CONFIG, overrides={"system": {"data_dir": data_dir}})
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as scratch:
        for workers in args.workers:
            steps = run_training(data_dir, workers, args.warmup + args.steps, scratch)
            measured = steps[args.warmup:]
            seconds = sum(e["step_s"] for e in measured)
            waited = sum(e["data_wait_s"] for e in measured)
            images = cfg.system.batch_size * len(measured)
            rows.append([workers, f"{images / seconds:.2f}",
                         f"{100 * waited / seconds:.0f} %",
                         f"{statistics.median(e['step_s'] for e in measured):.2f}",
                         f"{statistics.median(e['data_wait_s'] for e in measured):.3f}"])
            print(f"workers {workers}: {images / seconds:.2f} images/s, "
                  f"waiting {100 * waited / seconds:.0f} % of the time", flush=True)

    body = (f"{CONFIG} training on the CPU (`train.py --device cpu`), batch "
            f"{cfg.system.batch_size} of {cfg.db.input_size[1]}x{cfg.db.input_size[0]} crops, "
            f"{args.steps} iterations per row after {args.warmup} left out, pages from "
            f"`{os.path.relpath(data_dir, ROOT)}`. Waiting: the share of step time spent "
            f"waiting for the next batch.\n\n"
            + markdown_table(["workers", "images/s", "waiting for data", "median step (s)",
                              "median wait (s)"], rows))
    print(write_section("loader", body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
