"""Where a training step of a config goes: data, forward per block, loss,
backward per block, optimizer; and images per second of whole steps for
several settings of the same network, side by side in one process.

    python -m bench.bench_train_step --config CenterNet-tiny --steps 20 \\
        --compare "paper pools=db.pool_window=null" "bounded pools=db.pool_window=[6,20]"

The profile times the blocks of one network (`kp`): the stem (`pre`), the
hourglass (`kps`), the convolution after it (`cnvs`), the three pooling
modules and the heads, each forward (from a forward pre-hook to its hook) and
backward (from a backward pre-hook to its hook), on real batches of the
sampler (its time is the "data" row: building one batch in this process).
Each --compare entry is `label=section.key=value[;section.key=value...]`,
a section being a config section (system, db), `sizes` (the network file's
SIZES, e.g. sizes.head_dim=32) or `optimizer` (optimizer.fused=false: Adam's
per-parameter loop as before it was fused); its images/s come from the median of --steps whole training steps
(NetworkFactory.train_step: forward, loss, backward, optimizer), every
setting measured in the same process, alternating, so machine noise falls
on all of them. Writes the section `train_step-<config>` of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import statistics
import time
from collections import defaultdict

import numpy as np
import torch

from bench.report import markdown_table, write_section
from config import load_config
from db import load_db
from models.py_utils import kp
from nnet.py_factory import NetworkFactory, build_optimizer
from sample.dataset import TrainingExamples

BLOCKS = ("pre", "kps", "cnvs", "tl_cnvs", "br_cnvs", "ct_cnvs")
HEADS = ("tl_heats", "br_heats", "ct_heats", "tl_tags", "br_tags", "tl_regrs", "br_regrs",
         "ct_regrs", "ct_sizes", "box_classifier")


def parse_setting(text: str):
    """'label=section.key=value;section.key=value' -> (label, overrides dict)."""
    label, _, assignments = text.partition("=")
    overrides = {"system": {}, "db": {}, "sizes": {}, "optimizer": {}}
    for assignment in filter(None, assignments.split(";")):
        key, _, value = assignment.partition("=")
        section, _, name = key.partition(".")
        if section not in overrides:
            raise SystemExit(f"--compare {text!r}: unknown section {section!r} "
                             f"(one of {', '.join(overrides)})")
        try:
            overrides[section][name] = json.loads(value)
        except json.JSONDecodeError:
            overrides[section][name] = value
    return label, overrides


def batches(cfg, count: int):
    """`count` training batches of the sampler (iterations 1..count) and the
    seconds it took to build each."""
    dataset = TrainingExamples(load_db(cfg, cfg.system.train_split), cfg)
    built, seconds = [], []
    for iteration in range(1, count + 1):
        start = time.perf_counter()
        examples = [dataset[(iteration, slot)] for slot in range(cfg.system.batch_size)]
        batch = {k: torch.from_numpy(np.stack([e[k] for e in examples])) for k in examples[0]}
        seconds.append(time.perf_counter() - start)
        built.append(batch)
    return built, seconds


class BlockTimer:
    """Forward and backward seconds of the named child modules of a network."""

    def __init__(self, network):
        self.forward = defaultdict(float)
        self.backward = defaultdict(float)
        self.started = {}
        for name in BLOCKS + HEADS:
            modules = getattr(network, name, None)
            if modules is None:
                continue
            group = "heads" if name in HEADS else name
            # a ModuleList is never called itself: time the modules it holds
            for module in (modules if isinstance(modules, torch.nn.ModuleList) else [modules]):
                module.register_forward_pre_hook(self._start(("f", group, id(module))))
                module.register_forward_hook(self._stop(("f", group, id(module)), self.forward))
                if name != "pre":  # the stem's input needs no gradient: no backward hooks
                    module.register_full_backward_pre_hook(self._start(("b", group, id(module))))
                    module.register_full_backward_hook(
                        self._stop(("b", group, id(module)), self.backward))

    def _start(self, key):
        def hook(*_):
            self.started[key] = time.perf_counter()
        return hook

    def _stop(self, key, table):
        def hook(*_):
            table[key[1]] += time.perf_counter() - self.started.pop(key)
        return hook


def profile(cfg, steps: int) -> tuple[list, float]:
    """Rows (stage, ms per step, share) of `steps` steps after one warm-up."""
    factory = NetworkFactory(cfg, torch.device("cpu"))
    built, data_seconds = batches(cfg, steps + 1)
    timer = BlockTimer(factory.network)
    totals = defaultdict(float)
    for i, batch in enumerate(built):
        inputs, targets = factory._to_device(batch)
        if i == 1:  # the first step warms up allocators and oneDNN
            timer.forward.clear()
            timer.backward.clear()
            totals.clear()
        factory.network.train()
        start = time.perf_counter()
        with factory._autocast():
            outs = factory.network(*inputs)
        forward = time.perf_counter()
        losses = factory.loss(outs, targets)
        loss = time.perf_counter()
        factory.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        backward = time.perf_counter()
        factory.optimizer.step()
        done = time.perf_counter()
        totals["forward"] += forward - start
        totals["loss"] += loss - forward
        totals["backward"] += backward - loss
        totals["optimizer"] += done - backward
    data = statistics.mean(data_seconds[1:])
    step = sum(totals.values()) / steps + data
    rows = [["data (one batch, in the training process)", data]]
    for stage in ("forward", "loss", "backward", "optimizer"):
        rows.append([stage, totals[stage] / steps])
        table = timer.forward if stage == "forward" else timer.backward if stage == "backward" else {}
        for block, seconds in table.items():
            rows.append([f"  {stage} {block}", seconds / steps])
    return [[name, f"{1000 * s:.0f}", f"{100 * s / step:.0f} %"] for name, s in rows], step


@contextlib.contextmanager
def network_sizes(cfg, sizes: dict):
    """The network file of `cfg` builds with `sizes` over its SIZES meanwhile."""
    module = importlib.import_module(f"models.{cfg.network_name}")
    unknown = set(sizes) - set(module.SIZES) - set(inspect.signature(kp).parameters)
    if unknown:
        raise SystemExit(f"sizes.{sorted(unknown)[0]}: not a size of models/{cfg.network_name}.py")
    saved = dict(module.SIZES)
    module.SIZES.update(sizes)
    try:
        yield
    finally:
        module.SIZES.clear()
        module.SIZES.update(saved)


def factory_for(cfg, overrides: dict) -> NetworkFactory:
    with network_sizes(cfg, overrides.get("sizes", {})):
        factory = NetworkFactory(cfg, torch.device("cpu"))
    if "fused" in overrides.get("optimizer", {}):
        parameters = factory.optimizer.param_groups[0]["params"]  # those the factory trains
        factory.optimizer = build_optimizer(cfg, parameters, fused=overrides["optimizer"]["fused"])
    return factory


def images_per_second(settings, base: str, steps: int) -> list[list]:
    """Median step of each setting, measured alternately; rows for the table."""
    factories, loaded = [], []
    for label, overrides in settings:
        config_overrides = {k: overrides[k] for k in ("system", "db")}
        cfg = load_config(base, overrides=config_overrides)
        factory = factory_for(cfg, overrides)
        factories.append((label, cfg, factory, factory.num_parameters))
        loaded.append(batches(cfg, steps + 1)[0])
    seconds = defaultdict(list)
    for i in range(steps + 1):
        for (label, cfg, factory, _), built in zip(factories, loaded):
            start = time.perf_counter()
            factory.train_step(built[i])
            if i:  # the first step of each warms up
                seconds[label].append(time.perf_counter() - start)
    base_rate = None
    rows = []
    for label, cfg, _, parameters in factories:
        median = statistics.median(seconds[label])
        rate = cfg.system.batch_size / median
        base_rate = base_rate or rate
        rows.append([label, f"{parameters:,}", f"{1000 * median:.0f}", f"{rate:.2f}",
                     f"{rate / base_rate:.2f}x"])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="CenterNet-tiny")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--compare", nargs="*", default=[],
                        help="label=section.key=value;... settings timed side by side")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default=None,
                        help="of the profile (default: the config's system.precision)")
    parser.add_argument("--no-write", action="store_true",
                        help="print the figures, leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    overrides = {"system": {"precision": args.precision}} if args.precision else None
    cfg = load_config(args.config, overrides=overrides)
    rows, step = profile(cfg, args.steps)
    for row in rows:
        print(row, flush=True)
    command = (f"python -m bench.bench_train_step --config {args.config} --steps {args.steps}"
               + (f" --precision {args.precision}" if args.precision else "")
               + (" --compare " + " ".join(f'"{c}"' for c in args.compare) if args.compare else ""))
    body = (f"Profile of {args.config} (batch {cfg.system.batch_size} at {cfg.db.input_size}, "
            f"precision {cfg.system.precision}), mean of {args.steps} steps after one warm-up: "
            f"{1000 * step:.0f} ms a step with its data. Per block: forward from a module's "
            f"forward pre-hook to its hook, backward from its backward pre-hook to its hook "
            f"(work between blocks is in the stage's total, not in a block; the stem's "
            f"backward is not timed apart: its input needs no gradient).\n\n"
            + markdown_table(["stage", "ms per step", "share"], rows))
    if args.compare:
        settings = [parse_setting(c) for c in args.compare]
        compared = images_per_second(settings, args.config, args.steps)
        for row in compared:
            print(row, flush=True)
        body += ("\n\nWhole training steps (forward, loss, backward, optimizer; the batch "
                 f"prepared beforehand), median of {args.steps} after one warm-up, the settings "
                 "alternating in one process:\n\n"
                 + markdown_table(["setting", "parameters", "ms per step", "images/s",
                                   "vs first"], compared))
    if not args.no_write:
        write_section(f"train_step-{os.path.splitext(os.path.basename(args.config))[0]}", body,
                      cmd=command)


if __name__ == "__main__":
    main()
