"""Where a config's snapshots live and how a trained network is loaded back.

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

from config import command_line_name


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


def find_snapshot(cfg, iteration) -> str:
    """The snapshot file for `iteration` (an int, "best" or "latest").

    A missing snapshot fails listing the iterations that exist, so a typo in
    --testiter or --iter is fixed at once.
    """
    iterations = available_iterations(cfg)
    if iteration == "latest":
        if not iterations:
            raise FileNotFoundError(f"no snapshots of {cfg.name} in {cfg.snapshot_dir}; "
                                    f"train first: python train.py {command_line_name(cfg)}")
        iteration = iterations[-1]
    path = best_snapshot_path(cfg) if iteration == "best" else snapshot_path(cfg, int(iteration))
    if not os.path.isfile(path):
        have = ", ".join(map(str, iterations)) or "none"
        raise FileNotFoundError(f"no snapshot {path}; iterations with a snapshot: {have}")
    return path


def load_trained_network(cfg, iteration, device):
    """Build the config's network, load a snapshot into it, move it to `device`
    (channels_last when system.channels_last), eval mode."""
    import torch
    from models import build_network
    from nnet.snapshot import SnapshotError, load_snapshot

    path = find_snapshot(cfg, iteration)
    state = load_snapshot(path, map_location="cpu")
    if not (isinstance(state, dict) and isinstance(state.get("network"), dict)):
        raise SnapshotError(f"{path} is not a snapshot: a torch file, but without the network "
                            f"weights a snapshot holds (written by train.py)")
    net = build_network(cfg)
    try:
        net.load_state_dict(state["network"])
    except (RuntimeError, KeyError) as e:
        raise RuntimeError(f"{path} does not fit the network of config {cfg.name} "
                           f"(categories {cfg.db.categories}, network {cfg.network_name}): {e}") from None
    net = net.to(device)
    if cfg.system.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net.eval()
