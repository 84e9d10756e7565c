"""Tests of training (train.py, nnet/py_factory.py, nnet/distributed.py) through
train.py's own entry point on a tiny config: 63 px inputs (16 px heatmaps),
batch 2, a handful of iterations on the small synthetic pages of the
`tiny_ks_dir` fixture (drawn rectangles where a test needs its own data).

- resuming is exact: 4 iterations == 2, a resume, 2 more, bit for bit (CPU);
- a crash while a snapshot is written leaves the previous one loadable;
- a NaN loss stops the run naming the iteration and the term, no snapshot
  of the broken weights, the last one still loads;
- too many objects on a page fails at load time, before any step;
- torchrun with 2 gloo processes ends with the same weights on both ranks;
  a global batch that does not split across the processes is refused;
- learning-rate schedule, bf16 on the CPU, pretrained weights, validation AP.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import train
from config import load_config
from nnet import engine
from nnet.checkpoints import available_iterations, best_snapshot_path, snapshot_path
from nnet.py_factory import NetworkFactory
from nnet.snapshot import load_snapshot, save_snapshot
from tests.conftest import draw_split, run_train, training_config, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def pages(tiny_ks_dir):
    """The session's small synthetic 口算 set (tests/conftest.py)."""
    return tiny_ks_dir


def read_log(cfg):
    with open(os.path.join(cfg.snapshot_dir, "log.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def assert_same_state(a, b):
    assert a["iteration"] == b["iteration"]
    assert a["network"].keys() == b["network"].keys()
    for key in a["network"]:
        assert torch.equal(a["network"][key], b["network"][key]), key
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    state_a, state_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert state_a.keys() == state_b.keys()
    for index in state_a:
        for key in state_a[index]:
            assert torch.equal(state_a[index][key], state_b[index][key]), (index, key)


# ----------------------------------------------------------------------

def test_resume_is_exact(tmp_path, pages):
    whole = write_config(tmp_path / "whole", pages)
    split = write_config(tmp_path / "split", pages)
    assert run_train(whole) == 0
    assert run_train(split, "--max-iter", "2") == 0
    assert run_train(split, "--iter", "2") == 0

    cfg_whole, cfg_split = load_config(whole), load_config(split)
    assert available_iterations(cfg_whole) == [2, 4] == available_iterations(cfg_split)
    uninterrupted = load_snapshot(snapshot_path(cfg_whole, 4))
    resumed = load_snapshot(snapshot_path(cfg_split, 4))
    assert_same_state(uninterrupted, resumed)
    assert uninterrupted["config"] == cfg_whole.to_dict()
    assert set(uninterrupted) >= {"network", "optimizer", "scaler", "iteration", "rng", "config",
                                  "metrics"}

    log = read_log(cfg_whole)
    steps = [e for e in log if "total" in e]
    assert [e["iteration"] for e in steps] == [1, 2, 3, 4]
    # warm-up over 3 iterations, then divided by decay_rate after stepsize 3
    base = cfg_whole.system.learning_rate
    np.testing.assert_allclose([e["lr"] for e in steps], [base / 3, base * 2 / 3, base, base / 10])
    assert "val_total" in steps[1] and "val_total" in steps[3] and "val_total" not in steps[0]

    # resuming a run that already went further: its later lines are dropped
    shutil.copy(snapshot_path(cfg_whole, 4), tmp_path / "first_4.pkl")
    assert run_train(whole, "--iter", "2") == 0
    again = read_log(cfg_whole)
    assert [e["iteration"] for e in again if "total" in e] == [1, 2, 3, 4]
    for before, after in zip(steps, (e for e in again if "total" in e)):
        for key in ("total", "focal", "pull", "push", "regr", "lr", "val_total"):
            assert before.get(key) == after.get(key), (before["iteration"], key)
    assert_same_state(load_snapshot(tmp_path / "first_4.pkl"), load_snapshot(snapshot_path(cfg_whole, 4)))


def test_time_budget_stops_with_a_snapshot_that_resumes(tmp_path, pages, monkeypatch):
    config = write_config(tmp_path, pages, system={"max_iter": 6, "snapshot": 100, "val_iter": 0})
    clock = iter(range(0, 100_000, 40))  # every reading of the clock is 40 s later
    monkeypatch.setattr(engine.time, "perf_counter", lambda: float(next(clock)))
    assert run_train(config, "--time-budget", "1.5") == 0  # 90 s: a few readings
    monkeypatch.undo()
    cfg = load_config(config)
    stopped = available_iterations(cfg)
    assert len(stopped) == 1 and 1 <= stopped[0] < 6  # a snapshot where it stopped
    assert run_train(config, "--iter", "latest") == 0
    assert available_iterations(cfg) == stopped + [6]


def test_time_budget_moves_the_learning_rate_drops_to_the_same_fraction(tmp_path, pages,
                                                                        monkeypatch):
    # max_iter 100, a drop every 50: a budget of 2 min at 40 s per clock
    # reading ends after a handful of steps, the drop comes half way through
    config = write_config(tmp_path, pages, system={"max_iter": 100, "stepsize": 50,
                                                   "warmup_iter": 0, "snapshot": 1000,
                                                   "val_iter": 0, "learning_rate": 0.001,
                                                   "decay_rate": 10})
    clock = iter(range(0, 100_000, 20))
    monkeypatch.setattr(engine.time, "perf_counter", lambda: float(next(clock)))
    assert run_train(config, "--time-budget", "2") == 0
    monkeypatch.undo()
    cfg = load_config(config)
    with open(os.path.join(cfg.snapshot_dir, "log.jsonl"), encoding="utf-8") as f:
        rates = [entry["lr"] for entry in map(json.loads, f) if "lr" in entry]
    assert 2 <= len(rates) < 100
    assert rates[0] == pytest.approx(0.001) and rates[-1] == pytest.approx(0.0001)
    assert rates == sorted(rates, reverse=True)


def test_the_schedule_takes_the_further_of_iterations_and_budget():
    from nnet.py_factory import NetworkFactory
    cfg = load_config("CenterNet-tiny", check_data=False, overrides={"system": {
        "max_iter": 100, "stepsize": 40, "warmup_iter": 0, "learning_rate": 0.01,
        "decay_rate": 10, "time_budget": 5}})
    factory = NetworkFactory(cfg, torch.device("cpu"))
    assert factory.learning_rate(10) == pytest.approx(0.01)
    assert factory.learning_rate(45) == pytest.approx(0.001)     # by iterations
    factory.budget_used = 0.85                                    # by time: 85 of 100
    assert factory.learning_rate(10) == pytest.approx(0.0001)


def test_crash_while_saving_keeps_previous_snapshot(tmp_path, pages, monkeypatch, capsys):
    config = write_config(tmp_path, pages, system={"val_iter": 0})
    cfg = load_config(config)
    real_save = torch.save
    calls = []

    def dies_half_way(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) < 2:
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[:len(buffer.getvalue()) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dies_half_way)
    assert run_train(config) == 1
    monkeypatch.undo()
    assert (f"stopped: no space left on the device writing {snapshot_path(cfg, 4)}; the last "
            f"snapshot, iteration 2 ({snapshot_path(cfg, 2)}), is intact" in capsys.readouterr().err)
    assert len(calls) == 2
    assert available_iterations(cfg) == [2]
    state = load_snapshot(snapshot_path(cfg, 2))
    assert state["iteration"] == 2
    assert [f for f in os.listdir(cfg.snapshot_dir) if f.endswith(".tmp")] == []
    # and training resumes from it
    assert run_train(config, "--iter", "latest") == 0
    assert available_iterations(cfg) == [2, 4]


def test_nan_loss_stops_and_keeps_last_snapshot(tmp_path, pages, monkeypatch, capsys):
    config = write_config(tmp_path, pages, system={"val_iter": 0, "max_iter": 6})
    cfg = load_config(config)
    real_forward = engine.NetworkFactory.train_step
    steps = []

    def loss_turns_nan(factory, batch):
        steps.append(1)
        if len(steps) == 3:
            real_loss = factory.loss.forward

            def nan_focal(outs, targets):
                losses = real_loss(outs, targets)
                focal = losses["focal"] * float("nan")
                return {**losses, "total": losses["total"] + focal, "focal": focal}
            factory.loss.forward = nan_focal
        return real_forward(factory, batch)

    monkeypatch.setattr(engine.NetworkFactory, "train_step", loss_turns_nan)
    assert run_train(config) == 1
    message = capsys.readouterr().err
    assert "iteration 3" in message and "focal" in message and "non-finite" in message
    assert snapshot_path(cfg, 2) in message
    assert available_iterations(cfg) == [2]
    assert load_snapshot(snapshot_path(cfg, 2))["iteration"] == 2
    assert [e["iteration"] for e in read_log(cfg)] == [1, 2]


def test_weights_gone_nan_are_not_saved(tmp_path, pages, monkeypatch, capsys):
    config = write_config(tmp_path, pages, system={"val_iter": 0})
    cfg = load_config(config)
    real_step = engine.NetworkFactory.train_step

    def poison_last_step(factory, batch):
        # after the last step no loss sees the weights: the snapshot check must
        losses = real_step(factory, batch)
        if factory.iteration == 4:
            with torch.no_grad():
                next(factory.network.parameters()).fill_(float("inf"))
        return losses

    monkeypatch.setattr(engine.NetworkFactory, "train_step", poison_last_step)
    assert run_train(config) == 1
    message = capsys.readouterr().err
    assert "weights became non-finite by iteration 4" in message
    assert snapshot_path(cfg, 2) in message
    assert available_iterations(cfg) == [2]


def test_too_many_objects_fail_before_training(tmp_path, monkeypatch, capsys):
    data = tmp_path / "dense"
    data.mkdir()
    draw_split(str(data), "train", 3, objects=4)
    draw_split(str(data), "val", 1, objects=2)
    with open(data / "ks_train.txt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    lines[1] += " 1,1,5,5,0 10,10,15,15,1 20,20,25,25,2"  # 7 objects on train_1.png
    with open(data / "ks_train.txt", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    config = write_config(tmp_path, str(data), db={"max_tag_len": 5})

    def no_network(*args, **kwargs):
        raise AssertionError("the network was built before the data was checked")
    monkeypatch.setattr(engine, "NetworkFactory", no_network)
    assert run_train(config) == 2
    message = capsys.readouterr().err
    assert "db.max_tag_len" in message and "7 objects" in message
    assert "train_1.png" in message and "ks_train.txt:2" in message
    assert not os.path.exists(load_config(config).snapshot_dir)


def torchrun(config, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               os.path.join(ROOT, "train.py"), config, "--device", "cpu", "--workers", "0", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_two_processes_end_with_the_same_weights(tmp_path, pages):
    config = write_config(tmp_path, pages, system={"max_iter": 3, "val_iter": 3})
    done = torchrun(config)
    assert done.returncode == 0, done.stderr[-3000:]
    cfg = load_config(config)
    log = read_log(cfg)
    assert [e["iteration"] for e in log if "total" in e] == [1, 2, 3]  # rank 0 alone logs
    finished = log[-1]
    assert finished["event"] == "finished"
    digests = finished["parameter_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert "val_total" in log[2]
    state = load_snapshot(snapshot_path(cfg, 3))
    net = engine.NetworkFactory(cfg, torch.device("cpu")).network
    net.load_state_dict(state["network"])
    from nnet.distributed import parameter_digest
    assert parameter_digest(net) == digests[0]


def test_batch_that_does_not_split_across_processes(tmp_path, pages):
    config = write_config(tmp_path, pages, system={"batch_size": 3})
    done = torchrun(config)
    assert done.returncode != 0
    assert "batch_size is 3" in done.stderr and "2 processes" in done.stderr
    # a message, not a traceback through train.py (torchrun adds its own report)
    assert f'File "{os.path.join(ROOT, "train.py")}"' not in done.stderr


# ----------------------------------------------------------------------
# the factory
# ----------------------------------------------------------------------

def test_learning_rate_schedule(pages):
    factory = NetworkFactory(training_config(pages), torch.device("cpu"))
    rates = [factory.learning_rate(done) for done in (0, 1, 3, 4, 9, 10, 19, 20)]
    np.testing.assert_allclose(rates, [0.00025, 0.0005, 0.001, 0.001, 0.001, 0.0001, 0.0001,
                                       0.00001])


def one_batch(cfg):
    from db import load_db
    from sample.dataset import TrainingExamples, training_loader
    return next(iter(training_loader(TrainingExamples(load_db(cfg, "train"), cfg), 1, 1)))


def test_bf16_step_on_cpu_and_fp16_needs_cuda(pages):
    cfg = training_config(pages, precision="bf16")
    factory = NetworkFactory(cfg, torch.device("cpu"))
    before = next(factory.network.parameters()).detach().clone()
    losses = factory.train_step(one_batch(cfg))
    assert all(np.isfinite(losses[k]) for k in ("total", "focal", "pull", "push", "regr"))
    assert not torch.equal(before, next(factory.network.parameters()))
    with pytest.raises(ValueError, match="fp16"):
        NetworkFactory(cfg, torch.device("cpu"), precision="fp16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_amp_training_on_cuda(tmp_path, pages):
    config = write_config(tmp_path, pages, system={"max_iter": 2})
    assert train.main([config, "--device", "cuda", "--workers", "0", "--amp"]) == 0
    state = load_snapshot(snapshot_path(load_config(config), 2))
    assert state["scaler"] is not None and state["iteration"] == 2


def test_pretrained_weights_of_another_category_count(tmp_path, pages):
    six = NetworkFactory(training_config(pages, seed=1), torch.device("cpu"))
    save_snapshot(tmp_path / "six.pkl", six.state_dict())
    three = load_config("CenterNet-tiny", overrides={
        "system": {"data_dir": pages, "pretrain": str(tmp_path / "six.pkl")},
        "db": {"categories": 3, "category_names": ["a", "b", "c"]}})
    factory = NetworkFactory(three, torch.device("cpu"))
    skipped = factory.load_pretrained(three.system.pretrain)
    # only the layers as wide as the category count keep their initial values
    # (CenterNet-tiny names boxes with its box classifier; the centre heatmap
    # of the paper's configs has a channel per category)
    assert skipped and all("heats" in key or "box_classifier.logits" in key for key in skipped)
    loaded = factory.network.state_dict()
    source = six.network.state_dict()
    for key in loaded:
        if key not in skipped:
            assert torch.equal(loaded[key], source[key]), key
    assert loaded["box_classifier.logits.weight"].shape[0] == 3


@pytest.mark.filterwarnings("ignore:no detections")  # an untrained network finds nothing
def test_validation_ap_keeps_the_best_snapshot(tmp_path, pages):
    config = write_config(tmp_path, pages, system={"max_iter": 2, "val_iter": 0,
                                                   "val_ap_iter": 1, "val_ap_images": 2})
    assert run_train(config) == 0
    cfg = load_config(config)
    steps = [e for e in read_log(cfg) if "total" in e]
    assert all("val_AP" in e and "val_AP50" in e for e in steps)
    best = load_snapshot(best_snapshot_path(cfg))
    aps = [e["val_AP"] for e in steps]
    assert best["metrics"]["iteration"] == 1 + int(np.argmax(aps))
    assert best["metrics"]["val_AP"] == max(aps)


def test_a_box_classifier_reading_a_finer_picture_trains_and_tests(tmp_path, pages, entry_point):
    """db.box_scale 2: the sampler hands the box classifier the crop at twice
    the input's size, training steps with it, and test.py (db.test_box_scale 2)
    names the boxes from the page at twice the chosen scale."""
    config = write_config(tmp_path, pages, db={"box_scale": 2.0, "test_box_scale": 2.0})
    assert run_train(config) == 0
    cfg = load_config(config)
    assert available_iterations(cfg)[-1] == cfg.system.max_iter
    losses = [e["class"] for e in read_log(cfg) if "class" in e]
    assert losses and all(np.isfinite(losses)) and losses[0] > 0   # the classifier trained
    assert entry_point("test.py", config, "--testiter", "latest", "--split", "val",
                       "--device", "cpu") == 0
