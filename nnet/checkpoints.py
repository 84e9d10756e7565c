"""Finding and reading a config's snapshots: the one place that does.

    snapshot = find_snapshot(cfg, "latest")          # or an iteration, or "best"
    snapshot.path, snapshot.iteration                # "latest" resolved here, and only here
    state = read_snapshot(snapshot.path)             # a checked snapshot dict
    net = load_trained_network(cfg, snapshot, device)

Every problem is a `SnapshotError` (nnet/snapshot.py) naming the file and
what to do: no such snapshot (with the iterations that have one), a file
that is not a snapshot or is truncated or damaged, a snapshot of another
network or category count. Callers catch that error and nothing broader.

Snapshots are `<cache_dir>/nnet/<config name>/<config name>_<iteration>.pkl`
(the original CenterNet's naming) plus `<config name>_best.pkl`, the snapshot
with the best validation AP when training evaluates AP. Each file is a dict
written by `nnet.snapshot.save_snapshot`:

    network    state_dict of the bare network (never DDP-wrapped)
    optimizer  optimizer state_dict          scaler   grad-scaler state or None
    iteration  int                           rng      random-generator states
    config     cfg.to_dict() at save time    metrics  optional dict
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from config import command_line_name

from .snapshot import SnapshotError, load_network_weights, load_snapshot


class SnapshotFile(NamedTuple):
    """A snapshot found on disk."""

    path: str
    iteration: int | str  # an iteration number, or "best"


def snapshot_path(cfg, iteration: int) -> str:
    return os.path.join(cfg.snapshot_dir, f"{cfg.name}_{iteration}.pkl")


def best_snapshot_path(cfg) -> str:
    return os.path.join(cfg.snapshot_dir, f"{cfg.name}_best.pkl")


def available_iterations(cfg) -> list[int]:
    """Iterations that have a snapshot, ascending."""
    if not os.path.isdir(cfg.snapshot_dir):
        return []
    pattern = re.compile(re.escape(cfg.name) + r"_(\d+)\.pkl$")
    found = (pattern.match(f) for f in os.listdir(cfg.snapshot_dir))
    return sorted(int(m.group(1)) for m in found if m)


def find_snapshot(cfg, iteration) -> SnapshotFile:
    """The snapshot for `iteration`: an int, "best", or "latest" (the newest
    iteration with a snapshot).

    A missing snapshot is a SnapshotError listing the iterations that exist,
    so a typo in --testiter or --iter is fixed at once.
    """
    iterations = available_iterations(cfg)
    if iteration == "latest":
        if not iterations:
            raise SnapshotError(f"no snapshots of {cfg.name} in {cfg.snapshot_dir}; "
                                f"train first: python train.py {command_line_name(cfg)}")
        iteration = iterations[-1]
    if iteration != "best":
        iteration = int(iteration)
    path = best_snapshot_path(cfg) if iteration == "best" else snapshot_path(cfg, iteration)
    if not os.path.isfile(path):
        have = ", ".join(map(str, iterations)) or "none"
        todo = "" if iterations else f"; train first: python train.py {command_line_name(cfg)}"
        raise SnapshotError(f"no snapshot {path}; iterations with a snapshot: {have}{todo}")
    return SnapshotFile(path, iteration)


def read_snapshot(path: str) -> dict:
    """The dict a snapshot file holds (on the CPU), checked to hold network weights."""
    state = load_snapshot(path, map_location="cpu")
    if not (isinstance(state, dict) and isinstance(state.get("network"), dict)):
        raise SnapshotError(f"{path} is not a snapshot: a torch file, but without the network "
                            f"weights a snapshot holds (written by train.py); use another "
                            f"snapshot, or train again")
    return state


def load_weights(net, state: dict, cfg, path: str) -> None:
    """Load a snapshot's network weights into `net`, the network of `cfg`;
    every name and shape must match (SnapshotError saying why not)."""
    described = (f"the network of config {cfg.name} (categories {cfg.db.categories}, "
                 f"network {cfg.network_name})")
    saved = (state.get("config") or {}).get("db", {}).get("categories")
    hint = ("; use a snapshot of this config, or the config the snapshot was trained with "
            "(its settings are in the snapshot's 'config' entry)")
    if saved is not None and saved != cfg.db.categories:
        hint = (f"; the snapshot was trained with {saved} categories: test it with a config "
                f"of {saved} categories, or train this one")
    try:
        load_network_weights(net, state["network"], strict=True, name=path, described=described)
    except SnapshotError as e:
        raise SnapshotError(f"{e}{hint}") from None


def load_trained_network(cfg, snapshot, device):
    """Build the config's network, load a snapshot into it (a SnapshotFile, or
    what find_snapshot takes: an iteration, "best" or "latest"), move it to
    `device` (channels_last when system.channels_last), eval mode."""
    import torch

    from models import build_network

    if not isinstance(snapshot, SnapshotFile):
        snapshot = find_snapshot(cfg, snapshot)
    state = read_snapshot(snapshot.path)
    net = build_network(cfg)
    load_weights(net, state, cfg, snapshot.path)
    net = net.to(device)
    if cfg.system.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net.eval()
