"""How idle OpenMP threads wait, and what it does to CPU training speed:
images per second of `train.py` (CenterNet-tiny, its DataLoader workers
included) under each wait setting, alone and beside another job.

    python -m bench.bench_thread_wait [--iters 50] [--precisions fp32 bf16] \\
        [--neighbours none nice torch]

PyTorch's CPU operators run on an OpenMP team (GNU libgomp in the pip
wheels). Between two operators the team's threads either spin for a while
(the runtime's default: GOMP_SPINCOUNT, 300,000 checks) or go to sleep at
once (OMP_WAIT_POLICY=PASSIVE), and every sleep costs a wake-up at the next
operator. A training step runs hundreds of operators, so the setting shows
in images/s. Only the environment can choose it (the runtime reads it once,
at start), so each setting is its own train.py process; the settings
alternate, round after round, so a drift of the machine falls on all of
them. Neighbours: `none` (alone), `nice` (a pure-Python busy loop at nice
19: a low-priority job on one core), `torch` (a 2-thread PyTorch convolution
loop at normal priority: another training job). Each row: the median
images/s of the iterations after --warmup, over all rounds. Writes the
"thread-wait" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile

from bench.report import markdown_table, write_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SETTINGS = {  # label: the environment variables it sets (every other one unset)
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
    "runtime default (unset)": {},
}

NEIGHBOURS = {
    "none": None,
    "nice": ["nice", "-n", "19", sys.executable, "-c", "while True: pass"],
    "torch": [sys.executable, "-c",
              "import torch\n"
              "torch.set_num_threads(2)\n"
              "x = torch.randn(4, 32, 96, 96)\n"
              "conv = torch.nn.Conv2d(32, 32, 3, padding=1)\n"
              "with torch.no_grad():\n"
              "    while True:\n"
              "        torch.relu(conv(x))\n"],
}


@contextlib.contextmanager
def neighbour(name: str):
    """The neighbour process running meanwhile (none for "none")."""
    if NEIGHBOURS[name] is None:
        yield
        return
    process = subprocess.Popen(NEIGHBOURS[name], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=_environment({}))
    try:
        yield
    finally:
        process.kill()
        process.wait()


def _environment(setting: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(setting)
    return env


def images_per_second(setting: dict, precision: str, iters: int, warmup: int,
                      scratch: str) -> list[float]:
    """train.py CenterNet-tiny for `iters` iterations in its own process;
    images/s of each iteration after `warmup`."""
    cache = tempfile.mkdtemp(dir=scratch)
    command = [sys.executable, os.path.join(ROOT, "train.py"), "CenterNet-tiny",
               "--max-iter", str(iters), "--set", f"system.precision={precision}",
               "--set", "system.time_budget=null", "--set", f"system.cache_dir={cache}",
               "--set", "system.val_iter=0", "--set", "system.val_ap_iter=0",
               "--set", f"system.snapshot={iters}"]
    done = subprocess.run(command, cwd=ROOT, env=_environment(setting), capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    with open(os.path.join(cache, "nnet", "CenterNet-tiny", "log.jsonl"), encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    return [line["images_per_s"] for line in lines
            if "images_per_s" in line and line["iteration"] > warmup]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--neighbours", nargs="+", default=["none", "nice", "torch"],
                        choices=sorted(NEIGHBOURS))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.warmup >= args.iters:
        parser.error("--warmup must be below --iters")

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.neighbours:
            for precision in args.precisions:
                rates = {label: [] for label in SETTINGS}
                with neighbour(name):
                    for _ in range(args.rounds):
                        for label, setting in SETTINGS.items():
                            rates[label] += images_per_second(setting, precision, args.iters,
                                                              args.warmup, scratch)
                base = statistics.median(rates["OMP_WAIT_POLICY=PASSIVE"])
                for label in SETTINGS:
                    rate = statistics.median(rates[label])
                    rows.append([name, precision, label, f"{rate:.2f}", f"{rate / base:.2f}x"])
                    print(rows[-1], flush=True)
    body = (f"`train.py CenterNet-tiny` ({args.iters} iterations, its DataLoader workers, "
            f"the batch of the config), median images/s of the iterations after the first "
            f"{args.warmup}, {args.rounds} round(s), the settings alternating; each setting "
            f"is its own process. Neighbour: none (alone), nice (a Python busy loop at nice "
            f"19), torch (a 2-thread PyTorch convolution loop at normal priority).\n\n"
            + markdown_table(["neighbour", "precision", "OpenMP waiting", "images/s",
                              "vs PASSIVE"], rows))
    if not args.no_write:
        write_section("thread-wait", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
