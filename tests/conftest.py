"""Shared pytest fixtures.

`tiny_ks_dir`: a small synthetic 口算 set (db/synth.py) in the ks format
(docs/ks-format.md), generated once per test session.
"""

import pytest

from db.synth import generate

TINY_KS_COUNTS = {"train": 6, "val": 3, "test": 3}


@pytest.fixture(scope="session")
def tiny_ks_dir(tmp_path_factory) -> str:
    """Folder (a str) holding ks_train.txt (6 pages), ks_val.txt and ks_test.txt (3 pages each).

    Small pages (256-400 px wide, 8-30 problems), seed 0, images under images/<split>/
    with Chinese file names. Shared by the whole session: do not modify it.
    """
    out_dir = tmp_path_factory.mktemp("tiny_ks")
    generate(out_dir, TINY_KS_COUNTS, seed=0, workers=1, small=True, log=lambda message: None)
    return str(out_dir)


@pytest.fixture(scope="session")
def tiny_snapshot(tmp_path_factory):
    """Write configs that share one random-weight snapshot (iteration 1) of
    CenterNet-tiny: `tiny_snapshot(folder, data_dir, **db)` writes
    `<folder>/Tiny-Snapshot.json` (its results under <folder>/results) and
    returns its path. Snapshots belong to a config's name and cache_dir, so
    every config written here finds the same one."""
    import json
    import os

    import torch

    from config import load_config
    from models import build_network
    from nnet.checkpoints import snapshot_path
    from nnet.snapshot import save_snapshot

    cache_dir = str(tmp_path_factory.mktemp("tiny_snapshot_cache"))

    def write(folder, data_dir, **db):
        os.makedirs(str(folder), exist_ok=True)
        path = os.path.join(str(folder), "Tiny-Snapshot.json")
        settings = {"base": "CenterNet-tiny",
                    "system": {"data_dir": str(data_dir), "cache_dir": cache_dir,
                               "result_dir": os.path.join(str(folder), "results")},
                    "db": {"top_k": 20, "num_dets": 100, **db}}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(settings, f)
        return path

    cfg = load_config(write(tmp_path_factory.mktemp("tiny_snapshot_config"), cache_dir),
                      check_data=False)
    torch.manual_seed(0)
    net = build_network(cfg)
    save_snapshot(snapshot_path(cfg, 1), {
        "network": net.state_dict(), "optimizer": {}, "scaler": None, "iteration": 1,
        "rng": {}, "config": cfg.to_dict(), "metrics": {}})
    return write


@pytest.fixture
def entry_point():
    """Run train.py, test.py or demo.py in this process, as its command line
    would: `entry_point("test.py", *args)` -> the exit status (argparse's
    SystemExit included). test.py is loaded from its path: `import test`
    finds the test/ package."""
    import importlib.util
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(script, *args):
        name = "entry_" + os.path.splitext(script)[0]
        spec = importlib.util.spec_from_file_location(name, os.path.join(root, script))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        try:
            return module.main([str(a) for a in args])
        except SystemExit as e:
            return e.code
    return run
