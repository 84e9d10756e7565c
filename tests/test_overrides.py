"""`--set section.key=value` on train.py, test.py and demo.py: checked by the
config schema (a misspelt key names the closest one), the value read as JSON
or else as a string, and recorded where the result lies: the snapshot's
config, metrics.json and the name of test.py's result folder."""

import json
import os
import runpy

import pytest

import demo
from config import PROJECT_ROOT, ConfigError, load_config, parse_assignments
from nnet.checkpoints import snapshot_path
from nnet.snapshot import load_snapshot
from tests.conftest import PAGES, run_train, write_config


def test_values_are_json_or_else_strings():
    overrides = parse_assignments(["db.top_k=700", "system.learning_rate=1e-4",
                                   "db.nms_algorithm=nms", "db.test_scales=[0.5, 1]",
                                   "system.pretrain=null", "db.test_flip=false"])
    assert overrides == {"db": {"top_k": 700, "nms_algorithm": "nms", "test_scales": [0.5, 1],
                                "test_flip": False},
                         "system": {"learning_rate": 1e-4, "pretrain": None}}
    cfg = load_config("CenterNet-tiny", overrides=overrides, check_data=False)
    assert cfg.db.top_k == 700 and cfg.db.test_flip is False
    assert cfg.overrides == {"db.top_k": 700, "db.nms_algorithm": "nms", "db.test_scales": [0.5, 1],
                             "db.test_flip": False, "system.learning_rate": 1e-4,
                             "system.pretrain": None}


def test_every_mistake_is_named_at_once():
    with pytest.raises(ConfigError) as error:
        parse_assignments(["db.tpo_k=5", "db.learning_rate=1", "top_k=5", "model.x=1",
                           "db.top_k=many", "db.chunk_sizes=[1]"])
    message = str(error.value)
    assert message.startswith("6 problems in --set")
    for expected in ("--set db.tpo_k: unknown key; did you mean 'top_k'?",
                     "--set db.learning_rate: belongs in the system section",
                     "--set top_k=5: write section.key=value, e.g. db.top_k=5",
                     "--set model: unknown section",
                     "--set db.top_k=many: must be an integer, got 'many'",
                     "--set db.chunk_sizes: not used in this project"):
        assert expected in message, expected


def test_train_py_keeps_the_changed_settings_in_its_snapshots(tmp_path, tiny_ks_dir, capsys):
    config = write_config(tmp_path, tiny_ks_dir, system={"max_iter": 1, "val_iter": 0})
    assert run_train(config, "--set", "system.learning_rate=0.0003",
                     "--set", "db.top_k=7") == 0
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert "over the config file: system.learning_rate=0.0003, db.top_k=7" in said
    cfg = load_config(config)
    saved = load_snapshot(snapshot_path(cfg, 1))["config"]
    assert saved["system"]["learning_rate"] == 0.0003 and saved["db"]["top_k"] == 7
    assert cfg.system.learning_rate != 0.0003  # the file itself is unchanged


def test_train_py_refuses_a_misspelt_key_naming_the_closest(tmp_path, tiny_ks_dir, capsys):
    config = write_config(tmp_path, tiny_ks_dir)
    assert run_train(config, "--set", "system.learnig_rate=0.1") == 2
    assert "did you mean 'learning_rate'?" in capsys.readouterr().err
    assert not os.path.isdir(os.path.join(str(tmp_path), "cache"))


def _test_py(*args):
    """test.py's main, run in this process (the name `test` is the test/ package)."""
    script = runpy.run_path(os.path.join(PROJECT_ROOT, "test.py"), run_name="test_py")
    return script["main"](list(args))


def test_test_py_names_its_result_folder_and_metrics_after_the_settings(snapshot_config, capsys):
    cfg = snapshot_config
    assert _test_py(cfg.path, "--testiter", "7", "--device", "cpu",
                    "--set", "db.top_k=5", "--set", "db.test_flip=false") == 0
    out = capsys.readouterr().out
    out_dir = os.path.join(cfg.result_dir, "val_7-db.top_k=5,db.test_flip=false")
    with open(os.path.join(out_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    assert metrics["overrides"] == {"db.top_k": 5, "db.test_flip": False}
    # the pictures of item 2 come through test.py too
    assert "confusion matrix" in out and "missed" in out
    assert metrics["confusion_matrix"]["predicted"][-1] == "missed"
    assert os.path.isfile(os.path.join(out_dir, "confusion_matrix.png"))
    # without --set: the plain folder, nothing recorded as changed
    assert _test_py(cfg.path, "--testiter", "7", "--device", "cpu", "--max-images", "1") == 0
    with open(os.path.join(cfg.result_dir, "val_7", "metrics.json"), encoding="utf-8") as f:
        assert json.load(f)["overrides"] == {}


def test_test_py_refuses_a_wrong_value_naming_the_key(snapshot_config, capsys):
    assert _test_py(snapshot_config.path, "--testiter", "7", "--device", "cpu",
                    "--set", "db.top_k=-3") == 2
    assert "--set db.top_k=-3: must be >= 1" in capsys.readouterr().err


def test_demo_py_runs_with_the_changed_settings(snapshot_config, pages_dir, tmp_path):
    out = tmp_path / "demo"
    assert demo.main([snapshot_config.path, "--testiter", "7", "--images", pages_dir,
                      "--out", str(out), "--device", "cpu", "--set", "db.max_per_image=1"]) == 0
    for i in range(len(PAGES)):
        with open(out / f"页_{i}.json", encoding="utf-8") as f:
            assert len(json.load(f)["detections"]) <= 1
    assert demo.main([snapshot_config.path, "--testiter", "7", "--images", pages_dir,
                      "--out", str(out), "--set", "db.max_per_imag=1"]) == 2
