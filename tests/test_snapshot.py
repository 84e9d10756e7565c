"""Snapshot files (nnet/snapshot.py): round trips, GPU snapshots on a CPU,
atomic writes that survive a crash mid-save, refusal of pickles that are not
plain data, and loading pretrained weights into a network of another
category count; finding a config's snapshots and loading one into its
network (nnet/checkpoints.py), every problem a SnapshotError."""

import io
import os
import warnings
import zipfile

import numpy as np
import pytest
import torch

from config import load_config
from models import build_network
from nnet.snapshot import SnapshotError, load_network_weights, load_snapshot, save_snapshot


def example_state():
    return {
        "network": {"conv.weight": torch.randn(4, 3, 3, 3), "bn.num_batches_tracked": torch.tensor(7)},
        "iteration": 1200,
        "learning_rate": 2.5e-4,
        "config": {"name": "CenterNet-tiny", "scales": [0.5, 1.0], "pretrain": None},
        "metrics": {},
        "history": [1, 2.5, "three", None, (4, 5)],
    }


def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b and type(a) is type(b)


def test_round_trip(tmp_path):
    path = tmp_path / "nested" / "folder" / "CenterNet-tiny_1200.pkl"
    state = example_state()
    save_snapshot(path, state)
    assert_same(load_snapshot(path), state)
    assert os.listdir(path.parent) == [path.name]


def relocate_storages(path, device):
    """Rewrite a torch.save zip so its tensors claim to live on `device`, as a
    snapshot saved on a GPU does (a CPU-only machine cannot make one)."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    name = device.encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for info, data in entries:
            if info.filename.endswith("data.pkl"):
                # the storages' location, a BINUNICODE string: 'cpu' -> device
                cpu = b"X" + (3).to_bytes(4, "little") + b"cpu"
                assert cpu in data
                data = data.replace(cpu, b"X" + len(name).to_bytes(4, "little") + name)
            archive.writestr(info, data)
    path.write_bytes(buffer.getvalue())


def test_gpu_snapshot_loads_on_cpu(tmp_path):
    path = tmp_path / "gpu.pkl"
    state = example_state()
    if torch.cuda.is_available():
        state["network"] = {k: v.cuda() for k, v in state["network"].items()}
        save_snapshot(path, state)
    else:
        save_snapshot(path, state)
        relocate_storages(path, "cuda:0")
    loaded = load_snapshot(path, map_location="cpu")
    assert all(t.device.type == "cpu" for t in loaded["network"].values())
    assert torch.equal(loaded["network"]["conv.weight"], state["network"]["conv.weight"].cpu())


def test_crash_during_save_keeps_the_previous_snapshot(tmp_path, monkeypatch):
    path = tmp_path / "CenterNet-tiny_100.pkl"
    save_snapshot(path, {"iteration": 100, "weights": torch.arange(5)})
    real_save = torch.save

    def save_then_crash(obj, f, *args, **kwargs):
        scratch = io.BytesIO()
        real_save(obj, scratch, *args, **kwargs)
        f.write(scratch.getvalue()[:200])  # part of the file, then the "crash"
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_then_crash)
    with pytest.raises(OSError, match="No space left"):
        save_snapshot(path, {"iteration": 200, "weights": torch.arange(1000)})
    monkeypatch.undo()

    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind
    state = load_snapshot(path)
    assert state["iteration"] == 100 and torch.equal(state["weights"], torch.arange(5))


class NotPlainData:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_load_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pkl"
    torch.save({"network": {}, "payload": NotPlainData()}, path)
    with pytest.raises(SnapshotError, match="evil.pkl"):
        load_snapshot(path)


def test_missing_and_corrupt_files_name_the_path(tmp_path):
    with pytest.raises(SnapshotError, match="missing.pkl"):
        load_snapshot(tmp_path / "missing.pkl")
    truncated = tmp_path / "truncated.pkl"
    save_snapshot(truncated, example_state())
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(SnapshotError, match="truncated.pkl"):
        load_snapshot(truncated)
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a snapshot at all")
    with pytest.raises(SnapshotError, match="garbage.pkl"):
        load_snapshot(garbage)


def test_any_bytes_that_are_no_snapshot_are_called_corrupt(tmp_path):
    # torch.load unpickles foreign bytes and fails in many ways (KeyError,
    # IndexError, a bad zip's OSError, a protocol warning): one in about 14
    # random files used to get another message than "corrupt"
    rng = np.random.default_rng(0)
    whole = tmp_path / "whole.pkl"
    save_snapshot(whole, example_state())
    good = whole.read_bytes()
    legacy = io.BytesIO()
    torch.save({"a": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    starts = {"random": b"", "zip-like": b"PK\x03\x04", "legacy-like": legacy.getvalue()[:15]}
    path = tmp_path / "bad.pkl"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind, start in starts.items():
            for _ in range(100):
                path.write_bytes(start + rng.bytes(4096))
                with pytest.raises(SnapshotError, match="not a snapshot, or a corrupt one") as e:
                    load_snapshot(path)
                assert "bad.pkl" in str(e.value), kind
        damaged = good[:200] + rng.bytes(300) + good[500:]
        path.write_bytes(damaged)
        with pytest.raises(SnapshotError, match="not a snapshot, or a corrupt one"):
            load_snapshot(path)


def test_the_legacy_torch_save_format_loads(tmp_path):
    path = tmp_path / "legacy.pkl"
    state = example_state()
    torch.save(state, path, _use_new_zipfile_serialization=False)
    assert_same(load_snapshot(path), state)


def tiny_network(categories):
    overrides = {"db": {"categories": categories, "category_names": None,
                        "class_agnostic_corners": False, "classes_from": "centers"}}
    return build_network(load_config("CenterNet-tiny", overrides=overrides, check_data=False))


def test_pretrained_weights_from_another_category_count(tmp_path):
    torch.manual_seed(0)
    source = tiny_network(80)
    torch.manual_seed(1)
    target = tiny_network(6)
    initial = {k: v.clone() for k, v in target.state_dict().items()}

    path = tmp_path / "mscoco.pkl"
    # saved the way the original CenterNet saved: through a wrapper, "module." keys
    save_snapshot(path, {"network": {"module." + k: v for k, v in source.state_dict().items()}})
    skipped = load_network_weights(target, str(path), strict=False)

    heat_keys = {f"{h}.0.1.{p}" for h in ("tl_heats", "br_heats", "ct_heats") for p in ("weight", "bias")}
    assert set(skipped) == heat_keys
    loaded, own = source.state_dict(), target.state_dict()
    for key, value in own.items():
        if key in heat_keys:
            assert torch.equal(value, initial[key])  # keeps its initialisation
        else:
            assert torch.equal(value, loaded[key]), key


def test_strict_loading_names_the_mismatch():
    target = tiny_network(6)
    with pytest.raises(SnapshotError, match="ct_heats"):
        load_network_weights(target, tiny_network(80).state_dict(), strict=True)
    assert load_network_weights(target, tiny_network(6).state_dict(), strict=True) == []


def tiny_config(tmp_path, categories=6):
    overrides = {"system": {"cache_dir": str(tmp_path / "cache")},
                 "db": {"categories": categories, "category_names": None}}
    return load_config("CenterNet-tiny", overrides=overrides, check_data=False)


def save_tiny_snapshot(cfg, iteration, network_cfg=None):
    from nnet.checkpoints import snapshot_path

    net = build_network(network_cfg or cfg)
    save_snapshot(snapshot_path(cfg, iteration), {
        "network": net.state_dict(), "iteration": iteration,
        "config": (network_cfg or cfg).to_dict(), "metrics": {}})
    return snapshot_path(cfg, iteration)


def test_find_snapshot_resolves_latest_and_names_the_iterations_that_exist(tmp_path):
    from nnet.checkpoints import SnapshotFile, find_snapshot

    cfg = tiny_config(tmp_path)
    with pytest.raises(SnapshotError, match="train first: python train.py CenterNet-tiny"):
        find_snapshot(cfg, "latest")
    for iteration in (2, 10, 4):
        save_tiny_snapshot(cfg, iteration)
    newest = os.path.join(cfg.snapshot_dir, "CenterNet-tiny_10.pkl")
    assert find_snapshot(cfg, "latest") == SnapshotFile(newest, 10)
    assert find_snapshot(cfg, "4").iteration == 4
    with pytest.raises(SnapshotError, match="iterations with a snapshot: 2, 4, 10$"):
        find_snapshot(cfg, 3)
    with pytest.raises(SnapshotError, match="CenterNet-tiny_best.pkl"):
        find_snapshot(cfg, "best")


def test_every_unusable_snapshot_is_a_snapshot_error_naming_the_file(tmp_path):
    from nnet.checkpoints import load_trained_network

    cfg = tiny_config(tmp_path)
    path = save_tiny_snapshot(cfg, 1, network_cfg=tiny_config(tmp_path, categories=80))
    with pytest.raises(SnapshotError, match="trained with 80 categories") as caught:
        load_trained_network(cfg, 1, "cpu")
    assert path in str(caught.value) and "categories 6" in str(caught.value)

    with open(path, "r+b") as f:  # truncated
        f.truncate(300)
    with pytest.raises(SnapshotError, match="truncated"):
        load_trained_network(cfg, 1, "cpu")

    torch.save({"weights": torch.zeros(2)}, path)  # a torch file, not a snapshot
    with pytest.raises(SnapshotError, match="is not a snapshot"):
        load_trained_network(cfg, "latest", "cpu")

    good = save_tiny_snapshot(cfg, 2)
    net = load_trained_network(cfg, "latest", "cpu")
    assert not net.training
    saved = load_snapshot(good)["network"]
    assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items())
