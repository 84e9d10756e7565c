"""Benchmark of the network (models/): parameter counts, CPU forward latency
and peak memory, the tiny network's training step, and corner pooling against
the slow obvious loop, flip + torch.cummax and a plain copy. Writes the
"network" section of BENCHMARKS.md (bench/report.py).

    python -m bench.bench_network            # full run (several minutes on 2 cores)
    python -m bench.bench_network --quick    # fewer repetitions, to check it works

Latency and memory are measured in a fresh subprocess per network, so one
measurement's memory does not inflate the next; peak memory is the
subprocess's peak resident set (getrusage ru_maxrss), which includes Python,
torch and the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys

import numpy as np
import torch

from bench.report import markdown_table, write_section
from bench.timing import median_seconds
from config import load_config
from models import build_network
from models.py_utils import BottomPool, LeftPool, RightPool, TopPool
from models.py_utils.corner_pool import default_method, directional_max

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

POOL_SHAPE = (4, 128, 128, 128)
POOLS = {TopPool: (2, True), BottomPool: (2, False), LeftPool: (3, True), RightPool: (3, False)}


def peak_rss_mib():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024


# --------------------------------------------------------------------------
# measured in a subprocess
# --------------------------------------------------------------------------

def child_predict(config, side, reps):
    """Test-mode forward of batch 1, no gradients."""
    torch.manual_seed(0)
    net = build_network(load_config(config, check_data=False)).eval()
    images = torch.randn(1, 3, side, side)
    rss_built = peak_rss_mib()
    with torch.no_grad():
        seconds = median_seconds(lambda: net.predict(images), reps)
    return {"seconds": seconds, "rss_built_mib": rss_built, "peak_rss_mib": peak_rss_mib()}


def child_train_step(config, side, batch, reps):
    """Forward + backward of a training batch: random boxes, their targets
    made by the sampler (so every head's width follows the config)."""
    from models.py_utils import AELoss
    from sample.kp_detection import boxes_to_classify, keypoint_targets
    cfg = load_config(config, overrides={"db": {"input_size": side, "output_sizes": None}},
                      check_data=False)
    torch.manual_seed(0)
    net = build_network(cfg)
    rng = np.random.default_rng(0)
    examples = []
    for _ in range(batch):
        corners = rng.uniform(0, side * 0.8, (20, 2))
        boxes = np.concatenate([corners, corners + rng.uniform(8, side * 0.2, (20, 2))], 1)
        classes = rng.integers(0, cfg.db.categories, 20)
        example = keypoint_targets(boxes, classes, cfg)
        if cfg.db.classes_from == "boxes":
            example.update(boxes_to_classify(boxes, classes, cfg, rng))
        examples.append(example)
    stacked = {k: torch.from_numpy(np.stack([e[k] for e in examples])) for k in examples[0]}
    images = torch.randn(batch, 3, side, side)
    inputs = [images] + [stacked[k] for k in ("tl_tags", "br_tags", "ct_tags", "box_rois")
                         if k in stacked]
    targets = {k: v for k, v in stacked.items() if k not in ("box_rois",)}
    loss = AELoss()
    rss_built = peak_rss_mib()

    def step():
        net.zero_grad(set_to_none=True)
        loss(net(*inputs), targets)["total"].backward()

    seconds = median_seconds(step, reps)
    return {"seconds": seconds, "rss_built_mib": rss_built, "peak_rss_mib": peak_rss_mib()}


def run_child(task, **kwargs):
    command = [sys.executable, "-m", "bench.bench_network", "--child",
               json.dumps({"task": task, **kwargs})]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark subprocess {task} {kwargs} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# in-process measurements
# --------------------------------------------------------------------------

def parameter_rows():
    rows = []
    for config, categories in (("CenterNet-52", 80), ("CenterNet-52", 6), ("CenterNet-104", 80),
                               ("CenterNet-104", 6), ("CenterNet-tiny", None)):
        overrides = {"db": {"categories": categories, "category_names": None}} if categories else None
        cfg = load_config(config, overrides=overrides, check_data=False)
        with torch.device("meta"):
            count = sum(p.numel() for p in build_network(cfg).parameters())
        rows.append([cfg.network_name, cfg.db.categories, f"{count:,}"])
    return rows


def slow_pool(x, dim, from_end):
    """The obvious loop: each position takes the max of its window."""
    out = torch.empty_like(x)
    n = x.size(dim)
    for i in range(n):
        window = x.narrow(dim, i, n - i) if from_end else x.narrow(dim, 0, i + 1)
        out.select(dim, i).copy_(window.amax(dim))
    return out


def cummax_pool(x, dim, from_end):
    if from_end:
        return torch.flip(torch.cummax(torch.flip(x, [dim]), dim)[0], [dim])
    return torch.cummax(x, dim)[0]


def forward_backward(fn, x):
    def run():
        leaf = x.detach().requires_grad_()
        out = fn(leaf)
        out.backward(torch.ones_like(out))
    return run


def pool_rows(reps, slow_reps):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(POOL_SHAPE, generator=generator)
    copy = median_seconds(lambda: x.clone(), reps)
    rows = []
    for layout, tensor in (("NCHW", x), ("channels_last", x.contiguous(memory_format=torch.channels_last))):
        for pool, (dim, from_end) in POOLS.items():
            ours = median_seconds(forward_backward(pool(), tensor), reps)
            other_method = "whole" if default_method(tensor) == "slices" else "slices"
            other = median_seconds(forward_backward(
                lambda t: directional_max(t, dim, from_end, method=other_method), tensor), reps)
            cummax = median_seconds(forward_backward(lambda t: cummax_pool(t, dim, from_end), tensor), reps)
            slow = median_seconds(forward_backward(lambda t: slow_pool(t, dim, from_end), tensor),
                                  slow_reps, warmup=0)
            rows.append([pool.__name__, layout, f"{ours * 1e3:.1f}", f"{other * 1e3:.1f}",
                         f"{cummax * 1e3:.1f}", f"{slow * 1e3:.0f}", f"{cummax / ours:.1f}x",
                         f"{slow / ours:.1f}x", f"{ours / copy:.1f}"])
    return rows, copy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one or two repetitions per figure")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        task = {"predict": child_predict, "train_step": child_train_step}[spec.pop("task")]
        print(json.dumps(task(**spec)))
        return

    reps = 2 if args.quick else 5
    tiny = load_config("CenterNet-tiny", check_data=False)
    tiny_side = tiny.db.input_size[0]
    tiny_batch = tiny.system.batch_size

    print("parameter counts ...", flush=True)
    params = parameter_rows()

    print("forward latency ...", flush=True)
    latency_rows = []
    for config, side, runs in (("CenterNet-tiny", tiny_side, reps), ("CenterNet-52", 511, max(1, reps // 2))):
        result = run_child("predict", config=config, side=side, reps=runs)
        latency_rows.append([config, f"1 x 3 x {side} x {side}", f"{result['seconds'] * 1e3:.0f}",
                             f"{result['rss_built_mib']:.0f}", f"{result['peak_rss_mib']:.0f}", runs])

    print("tiny training step ...", flush=True)
    step_runs = max(1, reps // 2)
    step = run_child("train_step", config="CenterNet-tiny", side=tiny_side, batch=tiny_batch, reps=step_runs)

    print("corner pooling ...", flush=True)
    pools, copy_seconds = pool_rows(reps, slow_reps=1)

    threads = torch.get_num_threads()
    body = "\n\n".join([
        "### Parameters\n\n" + markdown_table(["network", "categories", "parameters"], params),
        "### Test-mode forward on the CPU (batch 1, `net.predict` under `torch.no_grad`)\n\n"
        f"Median of the runs shown; RSS in MiB of a fresh process ({threads} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}).\n\n"
        + markdown_table(["network", "input", "latency (ms)", "RSS after build", "peak RSS", "runs"],
                         latency_rows),
        "### CenterNet-tiny training step on the CPU\n\n"
        f"Forward + AELoss + backward, batch {tiny_batch} at {tiny_side} x {tiny_side} "
        f"(the config's batch_size and input_size), median of {step_runs}: "
        f"**{step['seconds']:.2f} s**; peak RSS {step['peak_rss_mib']:.0f} MiB.",
        f"### Corner pooling, forward + backward on {tuple(POOL_SHAPE)} float32\n\n"
        f"Ours: the pool modules of models/py_utils/corner_pool.py, which use the "
        f"\"{default_method(torch.empty(0))}\" method on the CPU; the next column times its other "
        f"exact method (the GPU's); cummax: flip + torch.cummax with PyTorch's autograd; loop: "
        f"each position's max over its window (one run). Last column: ours over one "
        f"`x.clone()` of the same tensor ({copy_seconds * 1e3:.1f} ms).\n\n"
        + markdown_table(["pool", "layout", "ours (ms)", "other method (ms)", "cummax (ms)",
                          "loop (ms)", "cummax / ours", "loop / ours", "ours / clone"], pools),
    ])
    cmd = "python -m bench.bench_network" + (" --quick" if args.quick else "")
    print(write_section("network", body, cmd=cmd))


if __name__ == "__main__":
    main()
