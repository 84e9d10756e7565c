"""What test.py and demo.py share on the command line: the --testiter and
--device arguments, the --suffix config variant and one-line warnings."""

from __future__ import annotations

import argparse
import os
import warnings

import torch

from config import load_config


def iteration_argument(value: str):
    """--testiter: an iteration number, 'best' or 'latest' (nnet.checkpoints.find_snapshot)."""
    if value in ("best", "latest"):
        return value
    try:
        iteration = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an iteration number, 'best' or 'latest', got {value!r}") from None
    if iteration < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {iteration}")
    return iteration


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="config name (config/<name>.json) or path to a .json")
    parser.add_argument("--testiter", type=iteration_argument, required=True,
                        help="snapshot to use: an iteration, 'best' or 'latest'")
    parser.add_argument("--suffix", default=None,
                        help="use config <config>-<suffix> (e.g. multi_scale) with the snapshots of <config>")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=None,
                        help="arithmetic of the network (default: system.precision); "
                             "decoding and NMS stay in fp32")


def choose_device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SystemExit(f"--device: not a device: {name!r} (cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: PyTorch sees no CUDA device here")
    return device


def load_test_config(name: str, suffix: str | None, check_data: bool = True,
                     precision: str | None = None):
    """The config <name>, or <name>-<suffix> under the name of <name> (so the
    snapshots and the result folder are those of <name>); `precision`
    replaces system.precision."""
    overrides = {"system": {"precision": precision}} if precision else None
    if suffix is None:
        return load_config(name, check_data=check_data, overrides=overrides)
    if name.endswith(".json") or os.sep in name:
        base = os.path.splitext(os.path.basename(name))[0]
        variant = os.path.join(os.path.dirname(os.path.abspath(name)), f"{base}-{suffix}.json")
    else:
        base, variant = name, f"{name}-{suffix}"
    return load_config(variant, name=base, check_data=check_data, overrides=overrides)


def resolve_iteration(cfg, iteration):
    """'latest' -> the newest iteration with a snapshot (kept as is when there is none,
    so that loading fails with find_snapshot's message)."""
    from nnet.checkpoints import available_iterations

    if iteration == "latest":
        iterations = available_iterations(cfg)
        if iterations:
            return iterations[-1]
    return iteration


def show_warnings_briefly() -> None:
    """Warnings as one line, 'warning: <message>', not Python's two-line form."""
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
