"""What test.py and demo.py share on the command line: the --testiter,
--device, --precision and --set arguments (the device and precision
themselves are chosen by nnet/device.py), the --suffix config variant, the
result folder's name for --set, and one-line warnings."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import warnings

from config import load_config, parse_assignments
from nnet.device import PRECISION_SETTINGS


def iteration_argument(value: str):
    """--testiter: an iteration number, 'best' or 'latest' (resolved by
    nnet.checkpoints.find_snapshot)."""
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


def add_network_arguments(parser: argparse.ArgumentParser, testiter_required: bool = True) -> None:
    parser.add_argument("config", help="config name (config/<name>.json) or path to a .json")
    parser.add_argument("--testiter", type=iteration_argument, required=testiter_required,
                        help="snapshot to use: an iteration, 'best' or 'latest'")
    parser.add_argument("--suffix", default=None,
                        help="use config <config>-<suffix> (e.g. multi_scale) with the snapshots of <config>")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--precision", choices=PRECISION_SETTINGS, default=None,
                        help="arithmetic of the network (default: system.precision): auto "
                             "(bf16 where the hardware computes it natively, else fp32), fp32, "
                             "bf16, or fp16 (CUDA only); decoding and NMS stay in fp32")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="change one setting of the config, e.g. --set db.top_k=700 "
                             "(repeatable; the value is JSON, or else a string)")


def load_test_config(name: str, suffix: str | None, check_data: bool = True,
                     precision: str | None = None, assignments=()):
    """The config <name>, or <name>-<suffix> under the name of <name> (so the
    snapshots and the result folder are those of <name>); `precision`
    replaces system.precision; `assignments` are --set's "section.key=value"."""
    overrides = parse_assignments(assignments)
    if precision:
        overrides.setdefault("system", {})["precision"] = precision
    overrides = overrides or None
    if suffix is None:
        return load_config(name, check_data=check_data, overrides=overrides)
    if name.endswith(".json") or os.sep in name:
        base = os.path.splitext(os.path.basename(name))[0]
        variant = os.path.join(os.path.dirname(os.path.abspath(name)), f"{base}-{suffix}.json")
    else:
        base, variant = name, f"{name}-{suffix}"
    return load_config(variant, name=base, check_data=check_data, overrides=overrides)


def settings_suffix(assignments) -> str:
    """The part of a result folder's name that says which --set made it:
    "" without any, "-db.top_k=700,db.test_flip=false" with some (characters
    that some file systems refuse become "_"), "-set_<hash>" when that would
    be longer than 80 characters. metrics.json lists them in full."""
    if not assignments:
        return ""
    text = ",".join(assignments)
    cleaned = re.sub(r'[\\/:*?"<>|\s]+', "_", text)
    if len(cleaned) > 80:
        cleaned = "set_" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
    return "-" + cleaned


def show_warnings_briefly() -> None:
    """Warnings as one line, 'warning: <message>', not Python's two-line form."""
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
