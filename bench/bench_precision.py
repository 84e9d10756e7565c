"""fp32 against bf16 (autocast) and channels_last on the CPU, and what
precision "auto" picks on this machine with its speed against fp32:
CenterNet-52's test forward of an image and its flip at 511, a CenterNet-52
training step of batch 2 at 511, and the same two for the small config at its
input size.

    python -m bench.bench_precision                             # all rows
    python -m bench.bench_precision --repeat 1                  # one timed run per cell
    python -m bench.bench_precision --networks CenterNet-tiny   # the small config's rows only

Each row is timed in this process, one after the other, so the ratios compare
runs on the same machine minutes apart. The CPU's instruction set decides
whether bf16 pays (AVX-512 BF16 / AMX do; AVX2 alone emulates bf16 and is far
slower), and "auto" (nnet/device.py, the default of every config) follows
it: the section names the CPU flags that matter, auto's choice and why, and
auto's speed-up over fp32 in the configs' own memory layout. Each kind of CPU
keeps its own section (`precision-cpu-native-bf16`, `precision-cpu-emulated-bf16`),
so BENCHMARKS.md holds one per machine measured.
"""

from __future__ import annotations

import argparse

import torch

from bench.bench_gpu import training_batch
from bench.report import markdown_table, write_section
from bench.timing import median_seconds
from config import load_config
from nnet.device import autocast, choose_precision

CPU = torch.device("cpu")


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    wanted = [f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma")]
    return " ".join(sorted(set(wanted))) or "none of avx2/avx512/amx"


def forward(config, precision, channels_last, repeat, warmup):
    from models import build_network

    cfg = load_config(config, check_data=False)
    net = build_network(cfg).eval()
    side = cfg.db.input_size[0]
    images = torch.randn(2, 3, side, side)  # an image and its flip
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    def run():
        with torch.inference_mode(), autocast(precision, CPU):
            net.predict(images)

    return median_seconds(run, repeat, warmup)


def training_step(config, precision, channels_last, batch, repeat, warmup):
    from nnet.py_factory import NetworkFactory

    cfg = load_config(config, check_data=False,
                      overrides={"system": {"precision": precision, "channels_last": channels_last,
                                            "batch_size": batch}})
    factory = NetworkFactory(cfg, CPU)
    data = training_batch(cfg, batch)
    return median_seconds(lambda: factory.train_step(data), repeat, warmup)


def layout(channels_last: bool) -> str:
    return "channels_last" if channels_last else "NCHW"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs before the timed ones (0 on slow machines: "
                             "the first run then includes oneDNN's set-up)")
    parser.add_argument("--small", default="CenterNet-tiny")
    parser.add_argument("--networks", nargs="+", default=None, metavar="CONFIG",
                        help="only the rows of these configs (default: CenterNet-52 and --small)")
    args = parser.parse_args(argv)
    networks = args.networks or ["CenterNet-52", args.small]

    auto = choose_precision("auto", CPU)
    print(auto, flush=True)
    # the configs' own layout (system.channels_last), where auto runs
    shipped_layout = {name: load_config(name, check_data=False).system.channels_last
                      for name in networks}
    variants = [("fp32", False), ("fp32", True), ("bf16", True)]
    for name in networks:
        if (auto.name, shipped_layout[name]) not in variants:
            variants.append((auto.name, shipped_layout[name]))

    rows = []
    for config in networks:
        cfg = load_config(config, check_data=False)
        side, batch = cfg.db.input_size[0], cfg.system.batch_size
        if config == "CenterNet-52":
            batch = 2  # a step of its batch of 48 takes too long on a CPU
        for what, fn in [
                (f"test forward, image + flip at {side}",
                 lambda p, cl: forward(config, p, cl, args.repeat, args.warmup)),
                (f"training step, batch {batch} at {side}",
                 lambda p, cl: training_step(config, p, cl, batch, args.repeat, args.warmup))]:
            seconds = {}
            for precision, channels_last in variants:
                seconds[(precision, channels_last)] = fn(precision, channels_last)
                print(config, what, precision, layout(channels_last),
                      f"{seconds[(precision, channels_last)]:.2f} s", flush=True)
            own = shipped_layout[config]
            auto_ratio = seconds[("fp32", own)] / seconds[(auto.name, own)]
            rows.append([config, what] + [f"{seconds[v]:.2f}" for v in variants]
                        + [f"{seconds[('fp32', False)] / seconds[('bf16', True)]:.2f}x",
                           f"{auto.name} {layout(own)}: {auto_ratio:.2f}x"])
    body = (f"CPU flags that matter: {cpu_flags()}. **`auto` picks {auto.name} on this "
            f"machine** ({auto.reason}); the last column is its speed-up over fp32 in the "
            f"config's own layout. Median of {args.repeat} timed run(s) after {args.warmup} "
            f"warm-up run(s), random inputs.\n\n"
            + markdown_table(["network", "what"]
                             + [f"{p} {layout(cl)} (s)" for p, cl in variants]
                             + ["bf16 channels_last speed-up over fp32 NCHW",
                                "auto speed-up over fp32"], rows))
    kind = "native-bf16" if auto.name == "bf16" else "emulated-bf16"
    write_section(f"precision-cpu-{kind}", body)
    print(body)


if __name__ == "__main__":
    main()
