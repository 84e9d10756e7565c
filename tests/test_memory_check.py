"""train.py checks before the first step that a step fits in memory
(nnet/memory.py), and an out-of-memory error in a step stops the run naming
the iteration, the last snapshot intact. The machine's figure is stubbed:
no test runs anything out of memory."""

from __future__ import annotations

import pytest
import torch

from config import load_config
from db import load_db
from nnet import engine, memory
from nnet.checkpoints import available_iterations, snapshot_path
from nnet.py_factory import NetworkFactory
from nnet.snapshot import load_snapshot
from sample.dataset import TrainingExamples
from tests.conftest import run_train
from tests.conftest import write_config as write_shared_config

MiB = 2 ** 20


def write_config(folder, data_dir, **system):
    """The shared tiny config (tests/conftest.py), fp32 (not "auto": the same
    figures and hints on every CPU), no validation."""
    return write_shared_config(folder, data_dir, name="Tiny-Memory",
                               system={"val_iter": 0, "precision": "fp32", **system})


def machine_with(free_bytes):
    return lambda device, **kwargs: (free_bytes, "MemAvailable in /proc/meminfo (stubbed)")


class StepStarted(Exception):
    """Raised in place of the first step: the run got past every check."""


def test_a_step_that_cannot_fit_stops_before_the_first_step(tmp_path, tiny_ks_dir, monkeypatch,
                                                            capsys):
    config = write_config(tmp_path, tiny_ks_dir, batch_size=8)
    cfg = load_config(config)
    factory = NetworkFactory(cfg, torch.device("cpu"))
    estimate = memory.estimate_step(factory, TrainingExamples(load_db(cfg, "train"), cfg), 8)
    # a machine with room for about three and a half images of the eight
    per_image = (estimate.total - estimate.gradients_and_optimizer) / 8
    room = int(estimate.gradients_and_optimizer + 3.5 * per_image)
    monkeypatch.setattr(memory, "available_memory", machine_with(room))

    def first_step(*args, **kwargs):
        raise StepStarted
    monkeypatch.setattr(engine.NetworkFactory, "train_step", first_step)
    assert run_train(config) == 2
    err = capsys.readouterr().err
    assert f"a training step of Tiny-Memory needs about {memory._gib(estimate.total)}" in err
    assert f"but {memory._gib(room)} is available (MemAvailable in /proc/meminfo (stubbed))" in err
    assert "per image x 8 images" in err  # the estimate, part by part
    assert f"lower system.batch_size in {config} (now 8; about 3 fit)" in err
    assert "train on a GPU (--device cuda)" in err and "--precision bf16" in err
    assert available_iterations(cfg) == []

    # the user may know better: the run then gets to its first step
    with pytest.raises(StepStarted):
        run_train(config, "--no-memory-check")


def test_the_scaled_measurement_matches_a_direct_one(tiny_ks_dir):
    """Measured at 127 x 127 and scaled by the heatmap area, the activations
    of a 255 x 255 input agree with measuring at 255 x 255."""
    cfg = load_config("CenterNet-tiny", overrides={
        "system": {"data_dir": tiny_ks_dir, "precision": "fp32"},
        "db": {"input_size": 255, "output_sizes": [[64, 64]], "border": 16}})
    factory = NetworkFactory(cfg, torch.device("cpu"))
    examples = TrainingExamples(load_db(cfg, "train"), cfg)
    before = {k: v.clone() for k, v in factory.network.state_dict().items()}
    scaled = memory.activation_bytes_per_image(factory, examples, measure_input=127)
    direct = memory.activation_bytes_per_image(factory, examples, measure_input=255)
    assert direct > 0 and abs(scaled - direct) / direct < 0.15
    # measuring leaves the network as it was (BatchNorm statistics included)
    for key, value in factory.network.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_out_of_memory_in_a_step_names_the_iteration_and_keeps_the_last_snapshot(
        tmp_path, tiny_ks_dir, monkeypatch, capsys):
    config = write_config(tmp_path, tiny_ks_dir, max_iter=6)
    cfg = load_config(config)
    real_step = engine.NetworkFactory.train_step

    def third_step_runs_out(factory, batch):
        if factory.iteration == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(factory, batch)
    monkeypatch.setattr(engine.NetworkFactory, "train_step", third_step_runs_out)
    assert run_train(config) == 1
    err = capsys.readouterr().err
    assert "out of memory on cpu in iteration 3 (2 images per process" in err
    assert "CUDA out of memory. Tried to allocate 2.00 GiB" in err
    assert "lower system.batch_size" in err and snapshot_path(cfg, 2) in err
    assert available_iterations(cfg) == [2]
    assert load_snapshot(snapshot_path(cfg, 2))["iteration"] == 2


def test_what_the_machine_has_is_read_from_meminfo_and_the_cgroup(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemAvailable:    8388608 kB\n", encoding="ascii")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("max\n", encoding="ascii")
    cpu = torch.device("cpu")
    assert memory.available_memory(cpu, str(meminfo), str(cgroup)) == (
        8 * 2 ** 30, f"MemAvailable in {meminfo}")
    # a container limited to 4 GiB, 3 GiB used of which 1 GiB is reclaimable page cache
    (cgroup / "memory.max").write_text(f"{4 * 2 ** 30}\n", encoding="ascii")
    (cgroup / "memory.current").write_text(f"{3 * 2 ** 30}\n", encoding="ascii")
    (cgroup / "memory.stat").write_text(f"anon 1\ninactive_file {2 ** 30}\n", encoding="ascii")
    free, source = memory.available_memory(cpu, str(meminfo), str(cgroup))
    assert free == 2 * 2 ** 30 and "cgroup" in source
    assert memory.available_memory(cpu, str(tmp_path / "none"), str(tmp_path / "none")) is None
