"""Ablations of the small detector: each variant trained from scratch with the
same seed, data and iteration budget, then scored on validation pages of the
main style and on pages of the held-out style (db/synth_style.py), one row
each in BENCHMARKS.md.

    python -m bench.bench_ablation --variants bench/ablations.json --only bounded_pools \\
        --iters 400 --tag 400it

`--variants` is a JSON object {name: {"base": config, "system": {...},
"db": {...}}}; every variant extends `base` (default CenterNet-tiny) with
max_iter = --iters and, unless it sets them, stepsize = 80 % of it and no
validation or snapshots on the way. A row gives AP and AP50 with classes,
per-category AP50, class-blind AP50 (one detection per place, best score),
AP50 on the held-out pages, the median training step, the training time and
the network and post-network time per page, all on this machine. Rows of
one --tag accumulate in <workdir>/<tag>.jsonl, and the BENCHMARKS.md
section `ablation-<tag>` shows all of them, so variants can run one by one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import torch

from bench.bench_class_errors import best_per_place
from bench.report import markdown_table, write_section
from config import load_config
from db import load_db
from nnet.checkpoints import available_iterations, load_trained_network
from test.evaluate import coco_results, evaluate, max_dets_for, run_cocoeval, summarize
from test.run import detect_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def variant_config(name, settings, args) -> str:
    """Write the variant's config file under the work folder; its path."""
    system = {"max_iter": args.iters, "stepsize": max(1, round(0.8 * args.iters)),
              "snapshot": 10 ** 7, "val_iter": 0, "val_ap_iter": 0,
              "data_dir": os.path.abspath(args.data)}
    if args.precision:  # for testing as well as training
        system["precision"] = args.precision
    system.update(settings.get("system", {}))
    system.update({"cache_dir": os.path.join(args.workdir, "cache"),
                   "result_dir": os.path.join(args.workdir, "results")})
    config = {"base": settings.get("base", "CenterNet-tiny"), "system": system,
              "db": settings.get("db", {})}
    path = os.path.join(args.workdir, f"{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
    return path


def train(config_path, args) -> tuple[float, float]:
    """train.py on the variant; (training minutes, median step seconds)."""
    cfg = load_config(config_path)
    log = os.path.join(cfg.snapshot_dir, "log.jsonl")
    if os.path.exists(log):
        os.remove(log)
    for iteration in available_iterations(cfg):
        os.remove(os.path.join(cfg.snapshot_dir, f"{cfg.name}_{iteration}.pkl"))
    command = [sys.executable, os.path.join(ROOT, "train.py"), config_path, "--device", "cpu",
               "--workers", str(args.workers)]
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return logged_times(cfg)


def logged_times(cfg) -> tuple[float, float]:
    """(training minutes, median step seconds after the first tenth) from log.jsonl."""
    with open(os.path.join(cfg.snapshot_dir, "log.jsonl"), encoding="utf-8") as f:
        entries = [json.loads(line) for line in f]
    steps = [e["step_s"] for e in entries if "step_s" in e]
    times = [e["time"] for e in entries if "time" in e]
    minutes = (times[-1] - times[0] + steps[0]) / 60
    return minutes, statistics.median(steps[len(steps) // 10:])


def score(cfg, net, split, pages):
    """Metrics with classes, class-blind one per place, and the timer, on a split."""
    db = load_db(cfg, split)
    with tempfile.TemporaryDirectory() as out_dir:
        run = detect_split(net, cfg, db, "cpu", out_dir, max_images=pages)
    image_ids = list(run.detections)
    results = coco_results(run.detections, db.category_ids)
    metrics = evaluate(results, db, cfg, image_ids)
    blind = summarize(run_cocoeval(db.coco_gt(), best_per_place(results), image_ids,
                                   max_dets_for(cfg), use_categories=False))
    return metrics, blind, run.timer


def run_variant(name, settings, args) -> dict:
    config_path = variant_config(name, settings, args)
    cfg = load_config(config_path)
    if args.reuse and args.iters in available_iterations(cfg):
        minutes, step = logged_times(cfg)
    else:
        minutes, step = train(config_path, args)
    net = load_trained_network(cfg, "latest", torch.device("cpu"))
    warnings.simplefilter("ignore")
    metrics, blind, timer = score(cfg, net, cfg.system.val_split, args.pages)
    row = {"variant": name, "iters": args.iters, "AP": metrics["AP"], "AP50": metrics["AP50"],
           "per_category_AP50": metrics["per_category_AP50"], "blind_AP50": blind["AP50"],
           "train_min": minutes, "step_s": step,
           "network_ms": 1000 * timer.seconds["network"] / max(timer.images, 1),
           "post_ms": 1000 * sum(v for k, v in timer.seconds.items()
                                 if k in ("decoding", "centre check", "nms")) / max(timer.images, 1),
           "settings": settings, "date": time.strftime("%Y-%m-%d")}
    if args.holdout_pages:
        held, held_blind, _ = score(cfg, net, "holdout", args.holdout_pages)
        row.update(holdout_AP=held["AP"], holdout_AP50=held["AP50"],
                   holdout_blind_AP50=held_blind["AP50"])
    return row


def table(rows, names) -> str:
    header = (["variant", "AP", "AP50"] + list(names) + ["class-blind AP50", "held-out AP50",
                                                         "step (s)", "train (min)",
                                                         "network ms/page", "after ms/page"])
    body = []
    for r in rows:
        per = r["per_category_AP50"]
        body.append([r["variant"], f"{r['AP']:.3f}", f"{r['AP50']:.3f}"]
                    + [f"{per.get(n) or 0:.2f}" for n in names]
                    + [f"{r['blind_AP50']:.3f}",
                       f"{r['holdout_AP50']:.3f}" if "holdout_AP50" in r else "-",
                       f"{r['step_s']:.2f}", f"{r['train_min']:.1f}",
                       f"{r['network_ms']:.0f}", f"{r['post_ms']:.0f}"])
    return markdown_table(header, body)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", required=True, help="JSON file {name: settings}")
    parser.add_argument("--only", nargs="*", help="run these variants (default: all)")
    parser.add_argument("--iters", type=int, default=400)
    parser.add_argument("--tag", required=True, help="names the rows file and the section")
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "ks"))
    parser.add_argument("--pages", type=int, default=40, help="validation pages scored")
    parser.add_argument("--holdout-pages", type=int, default=40,
                        help="pages of ks_holdout.txt scored (0: none)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=None)
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rewrite the section from the rows of --tag")
    parser.add_argument("--reuse", action="store_true",
                        help="score a variant's existing snapshot of --iters instead of training")
    parser.add_argument("--workdir", default=os.path.join(ROOT, "cache", "ablation"))
    args = parser.parse_args(argv)
    args.workdir = os.path.abspath(args.workdir)
    os.makedirs(args.workdir, exist_ok=True)
    with open(args.variants, encoding="utf-8") as f:
        variants = json.load(f)
    names = [] if args.report_only else (args.only or list(variants))
    rows_path = os.path.join(args.workdir, f"{args.tag}.jsonl")
    for name in names:
        row = run_variant(name, variants[name], args)
        with open(rows_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k != "settings"}), flush=True)

    with open(rows_path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    categories = load_config("CenterNet-tiny", check_data=False).db.category_names
    settings = "\n".join(f"- `{r['variant']}`: `{json.dumps(r['settings'])}`"
                         for r in {r["variant"]: r for r in rows}.values())
    body = (f"Every variant trained from scratch for {args.iters} iterations (seed of the "
            f"config), scored on the first {args.pages} validation pages and the first "
            f"{args.holdout_pages} held-out-style pages (`ks_holdout.txt`). Per-category "
            f"columns: AP50. Step and per-page times were taken on a machine shared with "
            f"other jobs: compare them within a row's run only.\n\n"
            + table(rows, categories) + "\n\nSettings over CenterNet-tiny:\n" + settings)
    command = (f"python -m bench.bench_ablation --variants {args.variants} --iters {args.iters} "
               f"--tag {args.tag}" + (f" --precision {args.precision}" if args.precision else ""))
    write_section(f"ablation-{args.tag}", body, cmd=command)


if __name__ == "__main__":
    main()
