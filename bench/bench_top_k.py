"""What db.top_k costs and buys on dense pages: one trained snapshot tested on
the validation pages at several top_k values (num_dets scaled with it),
reporting AP, AP50, AR100 and the milliseconds per page spent decoding,
checking centres and in NMS.

    python -m bench.bench_top_k CenterNet-tiny --testiter latest --top-k 100 200 400 700
    python -m bench.bench_top_k CenterNet-tiny --testiter 200 --max-images 40

Writes the "top_k-<config>" section of BENCHMARKS.md.
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
from test.run import detect_split


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--testiter", type=iteration_argument, default="latest")
    parser.add_argument("--top-k", type=int, nargs="+", default=[100, 200, 400, 700])
    parser.add_argument("--max-images", type=int, default=0)
    args = parser.parse_args(argv)

    base = load_config(args.config)
    snapshot = find_snapshot(base, args.testiter)
    iteration = snapshot.iteration
    net = load_trained_network(base, snapshot, torch.device("cpu"))
    db = load_db(base, base.system.val_split)
    rows = []
    warnings.simplefilter("ignore")
    for top_k in args.top_k:
        # keep the ratio of kept pairs to possible pairs of the config
        num_dets = max(1, min(top_k * top_k, round(base.db.num_dets * top_k / base.db.top_k)))
        cfg = load_config(args.config, overrides={"db": {"top_k": top_k, "num_dets": num_dets}})
        with tempfile.TemporaryDirectory() as out_dir:
            run = detect_split(net, cfg, db, "cpu", out_dir, max_images=args.max_images)
        seconds = run.timer.seconds
        after_network = seconds["decoding"] + seconds["centre check"] + seconds["nms"]
        m = run.metrics
        rows.append([top_k, num_dets, f"{m['AP']:.3f}", f"{m['AP50']:.3f}", f"{m['AR100']:.3f}",
                     f"{1000 * after_network / run.timer.images:.0f}"])
        print(rows[-1], flush=True)
    counts = db.object_counts()[:args.max_images or None]
    body = (f"Snapshot {base.name} iteration {iteration}, {len(counts)} validation pages of "
            f"{db.source} (up to {counts.max()} objects, {counts.mean():.0f} on average), test "
            f"scales {base.db.test_scales}, everything else as the config. ms/page: decoding, "
            f"centre check and NMS on the CPU, after the network.\n\n"
            + markdown_table(["top_k", "num_dets", "AP", "AP50", "AR100", "ms/page after the network"],
                             rows))
    write_section(f"top_k-{base.name}", body)
    print(body)


if __name__ == "__main__":
    main()
