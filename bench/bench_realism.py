"""Realism ablations (issue 23): what each feature of the synthetic pages that
imitates real workbook photos (db/synth_realism.py) buys on real ink. Every
row generates the synthetic set with some features left out (`python -m
db.synth --without ...`, the same seed), trains CenterNet-tiny on it from
scratch for the same iterations (the config's, without its time budget, so
a busy machine trains the same steps), and scores the snapshot with
bench/bench_real.py: that generator's validation pages and held-out style,
the pages composed of real problems, the labelled real photos at their own
size, and the problems found on the unlabelled photos.

    python -m bench.bench_realism --row "all features"
    python -m bench.bench_realism --row "without mnist_digits" --without mnist_digits
    python -m bench.bench_realism --row "tiny: box crop 24x120" --set db.box_crop=[24,120]
    python -m bench.bench_realism --report-only

Rows accumulate in <workdir>/rows.jsonl (one per --row name, the last run
kept) and the "realism-ablation" section of BENCHMARKS.md shows them all.
Each row's data, snapshots and results stay under <workdir>/<row>/ (synthetic
pages only: the real pictures are read where they are, bench/real.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings

import torch

from bench.bench_real import FOUND_SCORE, score_everywhere
from bench.real import RealSets
from bench.report import markdown_table, write_section
from config import PROJECT_ROOT, load_config, parse_assignments
from db.synth_realism import FEATURES, OFF_BY_DEFAULT
from nnet.checkpoints import find_snapshot, load_trained_network


def folder_name(row: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", row).strip("_") or "row"


def generate(data_dir: str, without: str, content: str) -> None:
    if os.path.isfile(os.path.join(data_dir, "ks_holdout.txt")):
        return   # made by an earlier run of this row
    shutil.rmtree(data_dir, ignore_errors=True)
    for style in ("main", "holdout"):
        command = [sys.executable, "-m", "db.synth", "--out", data_dir, "--seed", "0",
                   "--style", style, "--content", content]
        # a row is every feature but those it leaves out, the ones off by default too
        left_out = [name for name in without.split(",") if name]
        switched_on = [name for name in OFF_BY_DEFAULT if name not in left_out]
        if switched_on:
            command += ["--with", ",".join(switched_on)]
        left_out = [name for name in left_out if name not in OFF_BY_DEFAULT]
        if left_out:
            command += ["--without", ",".join(left_out)]
        subprocess.run(command, check=True, cwd=PROJECT_ROOT)


def train(config: str, settings: list[str], data_dir: str, cache_dir: str) -> float:
    """train.py from scratch; the minutes it took."""
    shutil.rmtree(os.path.join(cache_dir, "nnet"), ignore_errors=True)
    command = [sys.executable, os.path.join(PROJECT_ROOT, "train.py"), config,
               "--set", f"system.data_dir={data_dir}", "--set", f"system.cache_dir={cache_dir}",
               "--set", "system.time_budget=null"]
    for setting in settings:
        command += ["--set", setting]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) / 60


def run_row(args) -> dict:
    folder = os.path.join(args.workdir, folder_name(args.row))
    data_dir, cache_dir = os.path.join(folder, "data"), os.path.join(folder, "cache")
    generate(data_dir, args.without, args.content)
    minutes = train(args.config, args.set, data_dir, cache_dir)
    overrides = parse_assignments(args.set + [f"system.data_dir={data_dir}",
                                              f"system.cache_dir={cache_dir}"])
    cfg = load_config(args.config, overrides=overrides)
    snapshot = find_snapshot(cfg, "latest")
    net = load_trained_network(cfg, snapshot, torch.device("cpu"))
    warnings.simplefilter("ignore")
    with RealSets() as real:
        scores = score_everywhere(net, cfg, real)
        missing = real.missing
    return {"row": args.row, "without": args.without, "content": args.content, "set": args.set,
            "iteration": snapshot.iteration, "train_minutes": minutes, "scores": scores,
            "missing": missing, "date": time.strftime("%Y-%m-%d")}


COLUMNS = (("synthetic validation", "val"), ("held-out style", "held-out"),
           ("synthetic validation, pages of before the realism features", "val of before"),
           ("held-out style, pages of before", "held-out of before"),
           ("real problems, composed (20 pages, seed 7)", "composed real"),
           ("real photos, own size", "real photos"))


def table(rows: list[dict]) -> str:
    header = ["row", "left out", "content", "settings"]
    for _, short in COLUMNS:
        header += [f"{short} AP50", f"{short} AP"]
    header += ["composed real: class-blind AP50", "real photos: class-blind AP50",
               f"photos-dev found (>= {FOUND_SCORE})", "train min"]
    body = []
    for r in rows:
        s = r["scores"]
        line = [r["row"], r["without"] or "-", r.get("content", "basic"), " ".join(r["set"]) or "-"]
        for label, _ in COLUMNS:
            line += ([f"{s[label]['AP50']:.3f}", f"{s[label]['AP']:.3f}"] if label in s
                     else ["-", "-"])
        line += [f"{s[c]['blind_AP50']:.3f}" if c in s else "-" for c in
                 (COLUMNS[4][0], COLUMNS[5][0])]
        photos = s.get("photos")
        line += [str(sum(a for a, _ in photos.values())) if photos else "-",
                 f"{r['train_minutes']:.1f}"]
        body.append(line)
    return markdown_table(header, body)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", help="the row's name (its folder under --workdir)")
    parser.add_argument("--without", default="", help="realism features left out (db.synth --without)")
    parser.add_argument("--content", default="basic",
                        help="the problems drawn (python -m db.synth --content; default basic: "
                             "a op b, compare and fill, as before the content mix)")
    parser.add_argument("--features", default=None,
                        help="exactly these realism features, comma-separated (the others left "
                             "out; a row queued before later features were written stays as asked)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a config setting of the row, for training and testing")
    parser.add_argument("--config", default="CenterNet-tiny")
    parser.add_argument("--workdir", default=os.path.join(PROJECT_ROOT, "cache", "realism"))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if args.features is not None:
        wanted = {name for name in args.features.split(",") if name}
        unknown = wanted - set(FEATURES)
        if unknown:
            parser.error(f"unknown features {sorted(unknown)}; the features are {FEATURES}")
        args.without = ",".join(name for name in FEATURES if name not in wanted)
    os.makedirs(args.workdir, exist_ok=True)
    rows_path = os.path.join(args.workdir, "rows.jsonl")
    rows = []
    if os.path.isfile(rows_path):
        with open(rows_path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
    if not args.report_only:
        if not args.row:
            parser.error("--row is required (or --report-only)")
        row = run_row(args)
        rows = [r for r in rows if r["row"] != args.row] + [row]
        with open(rows_path + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        os.replace(rows_path + ".tmp", rows_path)
        print(json.dumps({k: v for k, v in row.items() if k != "scores"}), flush=True)
    missing = sorted({m for r in rows for m in r.get("missing", [])})
    body = ("Each row: the synthetic set generated with the features of db/synth_realism.py "
            "but those left out and the problems of `--content` (seed 0: 600 training, 100 "
            "validation and 100 held-out-style pages), CenterNet-tiny trained on it from "
            "scratch for the config's iterations of the day (900; 1800 where the settings say "
            "so), without a time budget, then scored as "
            "bench/bench_real.py scores (its own validation and held-out pages; the real "
            "sets are the same for every row). Rows are in the order they were run; each "
            "adds one change to the row above it unless it says otherwise. \"Left out\" "
            "is of the features written by the day of the row (a feature written later was "
            "not drawn in earlier rows); a row draws every other one, those off by default "
            "(db/synth_realism.py OFF_BY_DEFAULT) too.\n\n"
            + table(rows)
            + ("\n\nNot measured on this machine: " + "; ".join(missing) + "." if missing else ""))
    print(write_section("realism-ablation", body, cmd="python -m bench.bench_realism --row NAME "
                                                      "[--without FEATURES] [--set KEY=VALUE]"))


if __name__ == "__main__":
    main()
