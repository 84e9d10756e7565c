"""bench/bench_gpu.py before any GPU time is spent on it: its training batch
has the targets the config's heads expect (the sampler's keypoint_targets:
one corner channel for CenterNet-tiny's class-agnostic corners, one per
category otherwise), and its section of BENCHMARKS.md is written from the
figures a run collects. The whole script's CPU mode (`--device cpu --quick`,
15-25 s on two cores, too long for the suite) is run by hand before a GPU run."""

from __future__ import annotations

import argparse
import math

import pytest
import torch

from bench.bench_gpu import report_body, training_batch
from config import load_config
from models.py_utils.kp import LOSS_TERMS
from nnet.py_factory import NetworkFactory


@pytest.mark.parametrize("class_agnostic", [True, False])
def test_the_training_batch_fits_the_configs_heads(class_agnostic):
    cfg = load_config("CenterNet-tiny", check_data=False, overrides={
        "system": {"precision": "fp32", "batch_size": 2},
        "db": {"input_size": 63, "output_sizes": [[16, 16]], "border": 16, "max_tag_len": 32,
               "class_agnostic_corners": class_agnostic,
               "classes_from": "boxes" if class_agnostic else "centers"}})
    batch = training_batch(cfg, 2, boxes_per_image=10)
    corner_channels = 1 if class_agnostic else cfg.db.categories
    assert batch["tl_heatmap"].shape == (2, corner_channels, 16, 16)
    centre_channels = 1 if class_agnostic else cfg.db.categories  # boxes named by the classifier
    assert batch["ct_heatmap"].shape == (2, centre_channels, 16, 16)
    assert batch["tag_mask"].sum().item() == 20
    # the loss checks every target against the head's output by name
    losses = NetworkFactory(cfg, torch.device("cpu")).train_step(batch)
    assert all(math.isfinite(losses[name]) for name in LOSS_TERMS)
    assert losses["focal"] > 0


def test_the_gpu_section_is_written_from_the_figures():
    figures = {
        "card": "NVIDIA H100", "auto": {"precision": "bf16", "reason": "auto: the GPU computes"},
        "refused": {},
        "inference": {"fp32": {"ms_per_image": 100.0, "network_ms_per_image": 80.0},
                      "bf16": {"ms_per_image": 50.0, "network_ms_per_image": 30.0}},
        "training": {"fp32": {"step_ms": 400.0, "peak_gib": 20.0},
                     "bf16": {"step_ms": 200.0, "peak_gib": None}},
        "test_batch_images": {1: {"ms_per_image": 50.0}, 8: {"ms_per_image": 25.0}},
        "tiny": {"train_minutes": 5.0, "iterations": 9000, "batch_size": 4, "precision": "bf16",
                 "workers": 8, "AP": 0.25, "AP50": 0.4}}
    args = argparse.Namespace(steps=10, warmup=3, config="CenterNet-52", batch=8)
    body = report_body(figures, args)
    assert "`auto` picks **bf16** here (auto: the GPU computes): 2.00x the speed of fp32" in body
    assert "| bf16 | 50.0 | 30.0 | 2.00x |" in body
    assert "| fp32 | 400 | 20.00 | 1.00x |" in body and "| bf16 | 200 | n/a | 2.00x |" in body
    assert "| 8 | 25.0 | 2.00x |" in body
    assert "9000 iterations of batch 4" in body and "validation AP 0.250, AP50 0.400" in body
