"""fp32 against bf16 (autocast) and channels_last on the CPU: CenterNet-52's
test forward of an image and its flip at 511, a CenterNet-52 training step of
batch 2 at 511, and the same two for the small config at its input size.

    python bench/bench_precision.py                 # all rows
    python bench/bench_precision.py --repeat 1      # one timed run per row

Each row is timed in this process, one after the other, so the ratios compare
runs on the same machine minutes apart; the CPU's instruction set decides
whether bf16 pays (AVX-512 BF16 / AMX do; AVX2 alone emulates bf16 and is far
slower), so the section names the CPU flags that matter.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from bench.bench_gpu import fake_batch  # noqa: E402
from bench.report import markdown_table, write_section  # noqa: E402
from config import load_config  # noqa: E402


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    wanted = [f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma")]
    return " ".join(sorted(set(wanted))) or "none of avx2/avx512/amx"


WARMUP = 1


def median_seconds(fn, repeat):
    for _ in range(WARMUP):  # oneDNN picks its kernels on the first call
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward(config, precision, channels_last, repeat):
    from models import build_network

    cfg = load_config(config, check_data=False)
    net = build_network(cfg).eval()
    side = cfg.db.input_size[0]
    images = torch.randn(2, 3, side, side)  # an image and its flip
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    def run():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                    enabled=precision == "bf16"):
            net.predict(images)

    return median_seconds(run, repeat)


def training_step(config, precision, channels_last, batch, repeat):
    from nnet.py_factory import NetworkFactory

    cfg = load_config(config, check_data=False,
                      overrides={"system": {"precision": precision, "channels_last": channels_last,
                                            "batch_size": batch}})
    factory = NetworkFactory(cfg, torch.device("cpu"))
    data = fake_batch(cfg, batch, "cpu")
    return median_seconds(lambda: factory.train_step(data), repeat)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs before the timed ones (0 on slow machines: "
                             "the first run then includes oneDNN's set-up)")
    parser.add_argument("--small", default="CenterNet-tiny")
    args = parser.parse_args(argv)
    global WARMUP
    WARMUP = args.warmup
    small = load_config(args.small, check_data=False)
    variants = [("fp32", False), ("fp32", True), ("bf16", True)]
    rows = []
    for name, what, config, fn in [
            ("CenterNet-52", "test forward, image + flip at 511", "CenterNet-52",
             lambda p, cl: forward("CenterNet-52", p, cl, args.repeat)),
            ("CenterNet-52", "training step, batch 2 at 511", "CenterNet-52",
             lambda p, cl: training_step("CenterNet-52", p, cl, 2, args.repeat)),
            (args.small, f"test forward, image + flip at {small.db.input_size[0]}", args.small,
             lambda p, cl: forward(args.small, p, cl, args.repeat)),
            (args.small, f"training step, batch {small.system.batch_size} at "
                         f"{small.db.input_size[0]}", args.small,
             lambda p, cl: training_step(args.small, p, cl, small.system.batch_size, args.repeat))]:
        seconds = {}
        for precision, channels_last in variants:
            seconds[(precision, channels_last)] = fn(precision, channels_last)
            print(name, what, precision, "channels_last" if channels_last else "NCHW",
                  f"{seconds[(precision, channels_last)]:.2f} s", flush=True)
        base = seconds[("fp32", False)]
        rows.append([name, what] + [f"{seconds[v]:.2f}" for v in variants]
                    + [f"{base / seconds[('bf16', True)]:.2f}x"])
    body = (f"CPU flags that matter: {cpu_flags()}. Median of {args.repeat} timed run(s) after "
            f"{args.warmup} warm-up run(s), random inputs.\n\n"
            + markdown_table(["network", "what", "fp32 NCHW (s)", "fp32 channels_last (s)",
                              "bf16 channels_last (s)", "bf16 speed-up over fp32 NCHW"], rows))
    write_section("precision-cpu", body)
    print(body)


if __name__ == "__main__":
    main()
