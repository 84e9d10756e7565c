"""Messages that point the right way, and one exit-code table for every
command (exit_codes.py): a corrupt snapshot is called one, a bad --max-iter
is blamed on the command line, a missing snapshot is exit status 2 from
train.py, test.py and demo.py alike, and hints quote config paths."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from config import load_config
from nnet.checkpoints import snapshot_path
from tests.conftest import write_config as write_shared_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_config(path, data_dir):
    """The shared tiny config (tests/conftest.py) at `path`, 2 iterations, its files beside it."""
    name = os.path.splitext(os.path.basename(str(path)))[0]
    return write_shared_config(os.path.dirname(str(path)), data_dir, name=name,
                               system={"max_iter": 2, "val_iter": 0})


@pytest.fixture
def config(tmp_path, tiny_ks_dir):
    return write_config(tmp_path / "Small.json", tiny_ks_dir)


def demo_arguments(tiny_ks_dir, tmp_path):
    return ["--images", os.path.join(tiny_ks_dir, "ks_val.txt"), "--out", tmp_path / "demo"]


def test_a_corrupt_snapshot_is_called_one(config, tmp_path, tiny_ks_dir, entry_point, capsys):
    cfg = load_config(config)
    os.makedirs(cfg.snapshot_dir)
    with open(snapshot_path(cfg, 3), "wb") as f:
        f.write(os.urandom(4096))
    runs = {"train.py": ["--iter", "3"], "test.py": ["--testiter", "3"],
            "demo.py": ["--testiter", "3", *demo_arguments(tiny_ks_dir, tmp_path)]}
    for script, arguments in runs.items():
        assert entry_point(script, config, "--device", "cpu", *arguments) == 2, script
        err = capsys.readouterr().err
        assert f"cannot load snapshot {snapshot_path(cfg, 3)}: not a snapshot, or a corrupt one" in err
        assert "plain containers" not in err, script


def test_a_missing_snapshot_is_exit_status_2_everywhere(config, tmp_path, tiny_ks_dir,
                                                        entry_point, capsys):
    runs = {"train.py": ["--iter", "5"], "test.py": ["--testiter", "5"],
            "demo.py": ["--testiter", "5", *demo_arguments(tiny_ks_dir, tmp_path)]}
    for script, arguments in runs.items():
        assert entry_point(script, config, "--device", "cpu", *arguments) == 2, script
        assert "iterations with a snapshot: none" in capsys.readouterr().err, script


def test_max_iter_from_the_command_line_is_blamed_on_the_command_line(config, entry_point,
                                                                      capsys):
    assert entry_point("train.py", config, "--max-iter", "0", "--device", "cpu") == 2
    err = capsys.readouterr().err
    assert "--max-iter (which replaces system.max_iter) must be >= 1, got 0" in err
    assert config not in err


def test_hints_quote_a_config_path_with_spaces(tmp_path, tiny_ks_dir, entry_point, capsys,
                                               monkeypatch):
    path = write_config(tmp_path / "my cfg 配置.json", tiny_ks_dir)
    for cwd, named in ((ROOT, path), (str(tmp_path), "my cfg 配置.json")):
        monkeypatch.chdir(cwd)
        assert entry_point("test.py", path, "--testiter", "latest", "--device", "cpu") == 2
        err = capsys.readouterr().err
        hint = err[err.index("train first: ") + len("train first: "):].strip()
        assert shlex.split(hint) == ["python", "train.py", named]


def test_unusable_arguments_are_exit_status_2(config, tmp_path, entry_point, capsys):
    assert entry_point("test.py", config, "--testiter", "1", "--device", "tpu:9") == 2
    assert "--device: not a device" in capsys.readouterr().err

    def check(*args):
        return subprocess.run([sys.executable, "-m", "db.ks", *map(str, args)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert check(tmp_path / "missing.txt").returncode == 2
    assert check(tmp_path / "missing.txt", "--config", "No-Such-Config").returncode == 2
    (tmp_path / "ks_x.txt").write_text("gone.png\n", encoding="utf-8")
    assert check(tmp_path / "ks_x.txt").returncode == 1  # checked, and errors found
