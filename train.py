#!/usr/bin/env python
"""Train a CenterNet config (Duan et al., "CenterNet: Keypoint Triplets for
Object Detection", ICCV 2019).

    python train.py CenterNet-52                   # from scratch, or system.pretrain
    python train.py CenterNet-52 --iter 5000       # resume exactly from snapshot 5000
    python train.py CenterNet-tiny --device cpu --workers 2 --max-iter 100
    torchrun --nproc_per_node=4 train.py CenterNet-52 --amp
    python train.py CenterNet-tiny --set system.learning_rate=1e-4 --set db.top_k=300

Everything else is in config/<name>.json. Snapshots (nnet/checkpoints.py) go
to <cache_dir>/nnet/<name>/ every system.snapshot iterations and at the end,
with log.jsonl beside them: one JSON line per iteration (losses, learning
rate, images/s, data wait), validation losses every val_iter (a fixed set:
the first system.val_images images of the val split, 0 = all, un-augmented,
BatchNorm in eval mode), validation AP every val_ap_iter on the first
val_ap_images (test/run.py; the best snapshot kept as <name>_best.pkl), and a
last line when training finishes.

Resuming with --iter N restores weights, optimizer, grad scaler, random
generators and the iteration; the data order follows from the iteration
(sample/dataset.py), so N + M iterations equal N, a resume, and M more. The
lines of log.jsonl after iteration N (written by the run that is being
resumed) are dropped, so the log reads as one run; a fresh start begins a new
log. system.pretrain only applies to a fresh start: a resumed run takes
everything from its snapshot.

Under torchrun, system.batch_size is the global batch, split evenly across
the processes; rank 0 alone logs, shows progress and writes snapshots.

The loop, its periodic work (log, validation, snapshots) and resuming are
nnet/engine.py's; this file parses the arguments and reports. Before the first step the memory a step needs on the
chosen device is estimated (nnet/memory.py) and compared with what the
machine has; a step that cannot fit stops the run there, saying what to
change.

One run at a time per snapshot folder: a second run on the same folder
stops at once, naming the process that holds it (nnet/run_lock.py).

Exit status (exit_codes.py): 0 done; 1 stopped because the loss or the
weights became NaN or infinite, a step ran out of memory, or a snapshot or
the log could not be written (a full disk) (no snapshot written from them;
the last one is intact); 2 unusable config, data, snapshot or arguments, a
step that cannot fit in memory, a snapshot folder that cannot be written or
that another run holds; 130 interrupted (Ctrl-C), saying the last snapshot.
"""

from __future__ import annotations

import argparse
import sys

from config import SCHEMA, ConfigError, load_config, parse_assignments
from db import AnnotationError, ImageReadError
from exit_codes import DONE, INTERRUPTED, PROBLEMS, REFUSED
from nnet import distributed, engine
from nnet.device import PRECISION_SETTINGS, choose_device, precision_for
from nnet.engine import Interrupted, NonFiniteWeightsError, TrainingWriteError
from nnet.memory import NotEnoughMemoryError, StepOutOfMemoryError
from nnet.py_factory import NonFiniteLossError
from nnet.snapshot import SnapshotError
from outputs import OutputError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a CenterNet config.")
    parser.add_argument("config", help="config name (config/<name>.json) or path to a .json")
    parser.add_argument("--iter", dest="start_iter", default=None, metavar="N",
                        help="resume from the snapshot of iteration N ('latest': the newest)")
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader worker processes (default: system.workers)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda when available, else cpu")
    parser.add_argument("--precision", choices=PRECISION_SETTINGS, default=None,
                        help="arithmetic of the network: auto (bf16 where the hardware computes "
                             "it natively, else fp32), fp32, bf16 autocast (CPU and CUDA) or fp16 "
                             "autocast with a grad scaler (CUDA only); default system.precision")
    parser.add_argument("--amp", action="store_true",
                        help="the same as --precision fp16")
    parser.add_argument("--max-iter", type=int, default=None, metavar="N",
                        help="train to iteration N instead of system.max_iter")
    parser.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                        help="system.time_budget: stop after the first iteration that ends past "
                             "this many minutes of training (a snapshot is written there; --iter "
                             "resumes it), the learning-rate drops at the same fractions of it")
    parser.add_argument("--no-memory-check", action="store_true",
                        help="start even when the estimate of a step's memory says it will not "
                             "fit (nnet/memory.py)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="change one setting of the config, e.g. --set system.learning_rate=1e-4 "
                             "(repeatable; the value is JSON, or else a string); snapshots keep "
                             "the config as changed")
    args = parser.parse_args(argv)
    if args.start_iter is not None and args.start_iter != "latest":
        if not args.start_iter.isdigit():
            parser.error(f"--iter: an iteration number or 'latest', got {args.start_iter!r}")
        args.start_iter = int(args.start_iter)
    if args.workers is not None and args.workers < 0:
        parser.error("--workers must be >= 0")
    if args.max_iter is not None:
        try:  # the schema's own check, so that the message blames the flag, not the file
            SCHEMA["system"]["max_iter"].check(args.max_iter)
        except ValueError as e:
            parser.error(f"--max-iter (which replaces system.max_iter) {e}")
    if args.amp and args.precision not in (None, "fp16"):
        parser.error(f"--amp means --precision fp16; it contradicts --precision {args.precision}")
    if args.time_budget is not None:
        try:  # the schema's check (nan, inf): the message blames the flag, not the file
            SCHEMA["system"]["time_budget"].check(args.time_budget)
        except ValueError as e:
            parser.error(f"--time-budget (which replaces system.time_budget, minutes) {e}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rank = distributed.rank_from_env()
    try:
        system_overrides = {}
        if args.max_iter is not None:
            system_overrides["max_iter"] = args.max_iter
        if args.time_budget is not None:
            system_overrides["time_budget"] = args.time_budget
        if args.amp or args.precision:
            system_overrides["precision"] = "fp16" if args.amp else args.precision
        overrides = parse_assignments(args.set)
        overrides.setdefault("system", {}).update(system_overrides)
        cfg = load_config(args.config, overrides=overrides)
        world_size = distributed.world_size_from_env()
        if cfg.system.batch_size % world_size:
            raise ConfigError(
                f"{cfg.path}: system.batch_size is {cfg.system.batch_size}, the global batch; "
                f"it must split evenly across the {world_size} processes of torchrun: "
                f"use a multiple of {world_size}")
        device = choose_device(args.device, distributed.local_rank_from_env(),
                               fixed_input_size=True)
        precision = precision_for(cfg, device, "--amp" if args.amp else
                                  args.precision and "--precision")
    except ConfigError as e:
        return _fail(rank, str(e), REFUSED)
    if rank == 0:
        print(precision, flush=True)

    context = distributed.init_from_env(device)
    clean = False
    try:
        engine.train(cfg, context, start_iter=args.start_iter, workers=args.workers,
                     memory_check=not args.no_memory_check)
        clean = True
        return DONE
    except (NonFiniteLossError, NonFiniteWeightsError) as e:
        clean = True  # every rank stops at the same iteration
        hint = getattr(e, "hint", "")
        return _fail(rank, f"stopped: {e}; no snapshot was written from these weights. {hint}",
                     PROBLEMS)
    except (StepOutOfMemoryError, TrainingWriteError) as e:
        return _fail(rank, f"stopped: {e}", PROBLEMS)
    except Interrupted as e:
        return _fail(rank, str(e), INTERRUPTED)
    except KeyboardInterrupt:  # before the engine took over: nothing was written
        return _fail(rank, "interrupted before training began; nothing was written", INTERRUPTED)
    except (ConfigError, AnnotationError, ImageReadError, FileNotFoundError, SnapshotError,
            NotEnoughMemoryError, OutputError) as e:
        clean = True  # every rank reads the same config and data
        return _fail(rank, str(e), REFUSED)
    finally:
        distributed.shutdown(context, clean)


def _fail(rank: int, message: str, code: int) -> int:
    if rank == 0:
        print(f"train.py: {message}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
