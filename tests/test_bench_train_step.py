"""bench/bench_train_step.py's settings: a --compare entry may change the
config, the network file's sizes and the optimizer, and each setting builds
the network and the optimizer it names while the network file keeps its own
sizes for everything else."""

from __future__ import annotations

import importlib

import pytest

from bench.bench_train_step import factory_for, parse_setting
from config import load_config


def test_a_setting_reads_config_sizes_and_optimizer():
    label, overrides = parse_setting(
        "before=system.channels_last=false;sizes.head_dim=32;optimizer.fused=false")
    assert label == "before"
    assert overrides["system"] == {"channels_last": False}
    assert overrides["sizes"] == {"head_dim": 32}
    assert overrides["optimizer"] == {"fused": False}
    with pytest.raises(SystemExit, match="unknown section 'model'"):
        parse_setting("x=model.head_dim=32")


def test_a_setting_builds_its_own_network_and_optimizer():
    cfg = load_config("CenterNet-tiny", check_data=False, overrides={"system": {"precision": "fp32"}})
    sizes = importlib.import_module("models.CenterNet-tiny").SIZES
    kept = dict(sizes)
    wide = factory_for(cfg, {"sizes": {"head_dim": 24}, "optimizer": {"fused": False}})
    assert wide.network.tl_heats[0][0].conv.out_channels == 24
    assert wide.optimizer.defaults["fused"] is False
    assert sizes == kept  # only that setting's network was built with the change
    now = factory_for(cfg, {})
    assert now.network.tl_heats[0][0].conv.out_channels == kept["head_dim"]
    assert now.optimizer.defaults["fused"] is True
    assert now.num_parameters < wide.num_parameters
    with pytest.raises(SystemExit, match="sizes.width"):
        factory_for(cfg, {"sizes": {"width": 3}})
