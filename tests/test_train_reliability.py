"""train.py when things go wrong around it (issue 26): a second run on the
same snapshot folder, a folder that cannot be written, a disk that fills up
while a snapshot is written, a run killed while writing, Ctrl-C, and a time
budget that ends the run long before its planned steps. Each ends in one
line naming the file or the other process, the exit status of
exit_codes.py, and snapshots that are whole and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from config import load_config
from nnet import engine
from nnet.checkpoints import available_iterations, snapshot_path
from nnet.snapshot import load_snapshot
from tests.conftest import run_train, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def last_line(text: str) -> str:
    """The last line written, after any progress bar's carriage returns."""
    assert "Traceback" not in text
    return text.strip().splitlines()[-1].split("\r")[-1]


def start_training(config):
    """train.py as its own process, as a user starts it; returns once its
    first snapshot (iteration 2) is written."""
    process = subprocess.Popen([sys.executable, "train.py", config, "--device", "cpu",
                                "--workers", "0"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    first = snapshot_path(load_config(config), 2)
    deadline = time.monotonic() + 180
    while not os.path.isfile(first):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"train.py did not write {first}: {process.communicate()[1][-2000:]}")
        time.sleep(0.2)
    return process


def long_config(tmp_path, data_dir):
    return write_config(tmp_path, data_dir, system={"max_iter": 100000, "snapshot": 2,
                                                 "val_iter": 0})


def test_a_second_run_on_the_same_folder_is_refused_naming_the_first(tmp_path, tiny_ks_dir, capsys):
    config = long_config(tmp_path, tiny_ks_dir)
    cfg = load_config(config)
    first = start_training(config)
    try:
        # the second run, with another learning rate, into the same folder
        assert run_train(config, "--set", "system.learning_rate=0.01") == 2
        line = last_line(capsys.readouterr().err)
        assert line.startswith(f"train.py: {cfg.snapshot_dir} is in use by process {first.pid} "
                               f"on this host (since ")
        assert "wait for it to end, or train into another folder (system.cache_dir)" in line
        lines = [json.loads(s) for s in open(os.path.join(cfg.snapshot_dir, "log.jsonl"))]
        assert all(e.get("lr", 0) < 0.01 for e in lines)  # the second run wrote no line
        state = load_snapshot(snapshot_path(cfg, 2))
        assert state["config"]["system"]["learning_rate"] == cfg.system.learning_rate
    finally:
        first.kill()  # SIGKILL: its lock stays behind
        first.communicate()

    # a snapshot write cut short by a SIGKILL leaves its hidden temporary file
    lock = os.path.join(cfg.snapshot_dir, "run.lock")
    assert json.load(open(lock))["pid"] == first.pid
    partial = os.path.join(cfg.snapshot_dir, ".tiny_6.pkl.k1ll3d.tmp")
    with open(partial, "wb") as f:
        f.write(b"PK\x03\x04 half a snapshot")
    resumed = available_iterations(cfg)[-1]
    assert run_train(config, "--iter", "latest", "--max-iter", str(resumed + 1)) == 0
    out = capsys.readouterr().out
    assert f"took over {lock} from process {first.pid}, which is gone" in out
    removed = next(line for line in out.splitlines() if line.startswith("removed "))
    assert "partial file(s) of a run killed while writing them: " in removed
    assert ".tiny_6.pkl.k1ll3d.tmp" in removed
    assert not os.path.exists(partial) and not os.path.exists(lock)


def test_ctrl_c_says_where_training_stopped_and_how_to_resume(tmp_path, tiny_ks_dir):
    config = long_config(tmp_path, tiny_ks_dir)
    cfg = load_config(config)
    process = start_training(config)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    line = last_line(err)
    assert line.startswith("train.py: interrupted at iteration ")
    stopped = int(line.split("interrupted at iteration ")[1].split()[0])
    last = available_iterations(cfg)[-1]
    assert stopped >= last >= 2
    assert (f"of 100000; the last snapshot, iteration {last} ({snapshot_path(cfg, last)}), is "
            f"intact: resume with `python train.py ") in line
    assert line.endswith("--iter latest`")
    assert not os.path.exists(os.path.join(cfg.snapshot_dir, "run.lock"))
    assert [f for f in os.listdir(cfg.snapshot_dir) if f.endswith(".tmp")] == []
    assert run_train(config, "--iter", "latest", "--max-iter", str(last + 1)) == 0


def test_a_cache_dir_that_cannot_be_written_is_refused_before_anything(tmp_path, tiny_ks_dir,
                                                                       read_only_folder, capsys):
    config = write_config(tmp_path, tiny_ks_dir)
    a_file = tmp_path / "a_file"
    a_file.write_text("mine", encoding="utf-8")
    cases = {read_only_folder: ("it is on a read-only file system" if os.geteuid() == 0
                                else "permission denied")
                               + f" (in {read_only_folder}, where it would be made)",
             a_file: f"{a_file} is a file, not a folder"}
    for cache_dir, says in cases.items():
        assert run_train(config, "--set", f"system.cache_dir={cache_dir}") == 2
        captured = capsys.readouterr()
        line = last_line(captured.err)
        assert line.startswith(f"train.py: system.cache_dir {cache_dir}{os.sep}nnet{os.sep}tiny "
                               f"cannot be written: "), line
        assert line.endswith(says), line
        assert "network" not in captured.out  # nothing was built or read
    assert os.listdir(read_only_folder) == [] and a_file.read_text(encoding="utf-8") == "mine"


def test_a_full_disk_while_writing_a_snapshot_names_it_and_the_last_one(tmp_path, tiny_ks_dir,
                                                                        small_disk, monkeypatch,
                                                                        capsys):
    disk = small_disk(32)  # room for one snapshot of this config (23 MB), not two
    if disk is None:
        # no file system of our own to fill: the writer fails as the OS does,
        # after the first snapshot, and torch.save words it as on a full disk
        from nnet import snapshot
        disk, real_write, saves = tmp_path / "disk", snapshot._Sink.write, []

        def write(sink, data):
            if not saves or saves[-1] is not sink:
                saves.append(sink)
            if len(saves) > 1:
                raise OSError(28, "No space left on device")
            return real_write(sink, data)
        monkeypatch.setattr(snapshot._Sink, "write", write)
    config = write_config(tmp_path, tiny_ks_dir, system={"val_iter": 0, "cache_dir": str(disk)})
    cfg = load_config(config)
    assert run_train(config) == 1
    line = last_line(capsys.readouterr().err)
    assert line == (f"train.py: stopped: no space left on the device writing "
                    f"{snapshot_path(cfg, 4)}; the last snapshot, iteration 2 "
                    f"({snapshot_path(cfg, 2)}), is intact: resume with "
                    f"`python train.py {config} --iter latest`")
    assert load_snapshot(snapshot_path(cfg, 2))["iteration"] == 2
    assert sorted(os.listdir(cfg.snapshot_dir)) == ["log.jsonl", "tiny_2.pkl"]


@pytest.mark.filterwarnings("ignore:no detections")  # the snapshot of a few steps finds nothing
def test_a_run_its_budget_cut_short_says_so_and_test_py_repeats_it(tmp_path, tiny_ks_dir, monkeypatch,
                                                                   capsys, entry_point):
    config = write_config(tmp_path, tiny_ks_dir, system={"max_iter": 40, "snapshot": 100,
                                                   "val_iter": 0})
    clock = iter(range(0, 100_000, 40))  # every reading of the clock is 40 s later
    monkeypatch.setattr(engine.time, "perf_counter", lambda: float(next(clock)))
    assert run_train(config, "--time-budget", "1.5") == 0  # 90 s: a few steps of 40
    monkeypatch.undo()
    cfg = load_config(config)
    done = available_iterations(cfg)[-1]
    assert done < 20
    line = last_line(capsys.readouterr().out)
    assert line.startswith(f"warning: the time budget ended training after {done} of 40 planned "
                           f"steps ({done / 40:.0%}) at ")
    assert "train on a quiet machine" in line and "--time-budget of about" in line
    assert "a GPU (--device cuda)" in line

    assert entry_point("test.py", config, "--testiter", "latest", "--device", "cpu") == 0
    out = capsys.readouterr().out
    assert "warning: the time budget ended training after" in out
    metrics = json.load(open(os.path.join(cfg.result_dir, f"val_{done}", "metrics.json")))
    assert metrics["produced_by"]["short_of_plan"].startswith(
        f"the time budget ended training after {done} of 40 planned steps")


def test_a_time_budget_that_is_no_number_is_blamed_on_the_flag(tmp_path, tiny_ks_dir, capsys,
                                                               entry_point):
    config = write_config(tmp_path, tiny_ks_dir)
    for value in ("nan", "inf", "0"):
        assert entry_point("train.py", config, "--device", "cpu", "--time-budget", value) == 2
        err = capsys.readouterr().err
        assert "--time-budget (which replaces system.time_budget, minutes) must be " in err
        assert config not in err


def test_loader_workers_are_capped_at_the_cores_there_are(tmp_path, tiny_ks_dir, capsys):
    config = write_config(tmp_path, tiny_ks_dir, system={"max_iter": 1, "val_iter": 0})
    cores = len(os.sched_getaffinity(0))
    assert run_train(config, "--workers", "100000") == 0  # run_train's own --workers 0 is replaced
    assert (f"--workers 100000: this machine has {cores} CPU cores; using {cores} loader workers"
            in capsys.readouterr().out)


def test_validating_on_the_training_pages_is_warned_about(tmp_path, tiny_ks_dir, capsys):
    config = write_config(tmp_path, tiny_ks_dir, system={"max_iter": 1, "val_iter": 1})
    assert run_train(config, "--set", "system.val_split=train") == 0
    assert ("warning: 6 of the 6 pages of system.val_split 'train' are pages of "
            "system.train_split 'train'" in capsys.readouterr().out)
