"""ONNX export (export.py, nnet/onnx_model.py) and demo.py --onnx: the
exported pools equal corner pooling exactly; the exported model's maps equal
PyTorch's within 1e-4 on pages of other sizes than the one it was traced on,
output by output, named as `net.predict` names them; demo.py gives the same
detections from the ONNX model as from the snapshot."""

import importlib.util
import json
import os

import numpy as np
import pytest
import torch

import demo
import export
from db import read_image
from models.py_utils.corner_pool import directional_max
from nnet.checkpoints import load_trained_network
from nnet.onnx_model import MAX_POOLED_CELLS, OPSET, ExportPool
from test.kp_detection import prepare_image
from tests.conftest import PAGES

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))

# PyTorch and onnxruntime run the same float32 convolutions in other orders
MAX_DIFFERENCE = 1e-4


def slow_pool(x, dim, from_end, window=None):
    """The obvious loop: each cell the max over the next (from_end) or the
    previous `window` cells and itself, to the border without a window."""
    n = x.size(dim)
    reach = n if window is None else window
    out = torch.empty_like(x)
    for i in range(n):
        low, high = (i, min(n, i + reach + 1)) if from_end else (max(0, i - reach), i + 1)
        out.select(dim, i).copy_(x.narrow(dim, low, high - low).amax(dim))
    return out


@pytest.mark.parametrize("window", [None, 0, 1, 3, 40])
def test_export_pools_equal_corner_pooling_exactly(window):
    generator = torch.Generator().manual_seed(0)
    for shape in [(2, 3, 1, 1), (1, 2, 7, 33), (1, 4, 40, 9)]:
        x = torch.randint(0, 5, shape, generator=generator).float()  # ties on purpose
        for dim in (2, 3):
            for from_end in (True, False):
                got = ExportPool(dim, from_end, window)(x)
                assert torch.equal(got, slow_pool(x, dim, from_end, window))
                if window is None:  # the network's own pooling
                    assert torch.equal(got, directional_max(x, dim, from_end))
    long = torch.randn(1, 1, 3, MAX_POOLED_CELLS, generator=generator)
    assert torch.equal(ExportPool(3, True)(long), directional_max(long, 3, True))


@pytest.fixture(scope="module")
def exported(snapshot_config, pages_dir, tmp_path_factory):
    if not HAVE_ONNX:
        pytest.skip("onnx and onnxruntime are optional (requirements-onnx.txt, scripts/setup.sh)")
    path = str(tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    page = os.path.join(pages_dir, "页_0.jpg")
    assert export.main([snapshot_config.path, "--testiter", "7", "--out", path,
                        "--image", page]) == 0
    return path


def test_export_py_writes_the_maps_of_predict_by_name(exported, snapshot_config, pages_dir):
    import onnx
    import onnxruntime as ort

    model = onnx.load(exported)
    assert model.opset_import[0].version == OPSET
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["iteration"] == "7" and metadata["categories"] == "6"
    net = load_trained_network(snapshot_config, 7, "cpu")
    session = ort.InferenceSession(exported, providers=["CPUExecutionProvider"])
    def prepared(page):
        return prepare_image(read_image(os.path.join(pages_dir, page)), snapshot_config)[0].images

    # another size than the page it was traced on, and a batch of two
    images = prepared("页_2.jpg")
    assert images.shape[2:] != prepared("页_0.jpg").shape[2:]
    images = torch.cat([images, images.flip(-1)])
    with torch.inference_mode():
        expected = net.predict(images)
    names = [o.name for o in session.get_outputs()]
    assert names == list(expected) == json.loads(metadata["outputs"])
    for name, got in zip(names, session.run(names, {"images": images.numpy()})):
        assert got.shape == tuple(expected[name].shape), name
        assert np.abs(got - expected[name].numpy()).max() < MAX_DIFFERENCE, name


def test_demo_py_with_onnx_finds_what_the_snapshot_finds(exported, snapshot_config, pages_dir,
                                                          tmp_path):
    # settings under which the random network of the snapshot finds boxes:
    # any two corners pair, a centre may lie in the middle half of a box, and
    # its random sizes pass the size check (the box classifier still names them)
    # (at 0.6 of the pages' own pixels: the random boxes' heights would set any scale)
    settings = ["db.test_scale_mode=pixels", "db.test_scales=[0.6]",
                "db.ae_threshold=100", "db.top_k=100", "db.num_dets=1000",
                "db.center_region_small_n=2", "db.center_region_large_n=2",
                "db.size_tolerance=1e9"]
    common = [snapshot_config.path, "--images", pages_dir, "--device", "cpu"]
    for setting in settings:
        common += ["--set", setting]
    # the exported model runs in float32: compare it with the snapshot in fp32
    assert demo.main(common + ["--testiter", "7", "--precision", "fp32",
                               "--out", str(tmp_path / "torch")]) == 0
    assert demo.main(common + ["--onnx", exported, "--out", str(tmp_path / "onnx")]) == 0
    found = 0
    for i in range(len(PAGES)):
        pair = []
        for folder in ("torch", "onnx"):
            with open(tmp_path / folder / f"页_{i}.json", encoding="utf-8") as f:
                pair.append(json.load(f)["detections"])
            assert (tmp_path / folder / f"页_{i}.jpg").is_file()
        by_torch, by_onnx = pair
        assert len(by_torch) == len(by_onnx)
        for a, b in zip(by_torch, by_onnx):
            assert a["class"] == b["class"]
            assert np.abs(np.subtract(a["box"], b["box"])).max() < 0.05
            assert abs(a["score"] - b["score"]) < 1e-3
        found += len(by_torch)
    assert found > 50


def test_demo_py_needs_a_snapshot_or_a_model(snapshot_config, pages_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        demo.main([snapshot_config.path, "--images", pages_dir, "--out", str(tmp_path)])
    assert stopped.value.code == 2
    assert "--testiter" in capsys.readouterr().err
    assert demo.main([snapshot_config.path, "--onnx", str(tmp_path / "none.onnx"),
                      "--images", pages_dir, "--out", str(tmp_path)]) != 0


def test_heads_a_network_adds_are_exported_by_name(tmp_path):
    if not HAVE_ONNX:
        pytest.skip("onnx and onnxruntime are optional (requirements-onnx.txt, scripts/setup.sh)")
    from config import load_config
    from models import build_network
    from nnet.onnx_model import compare_with_pytorch, export_onnx

    cfg = load_config("CenterNet-tiny", check_data=False, overrides={
        "db": {"center_size": True, "pool_window": [3, 5]}})
    torch.manual_seed(0)
    net = build_network(cfg).eval()
    images = torch.randn(1, 3, 127, 255)
    path = export_onnx(net, cfg, str(tmp_path / "heads.onnx"), images)
    differences = compare_with_pytorch(net, path, torch.randn(2, 3, 255, 127))
    with torch.inference_mode():
        assert list(differences) == list(net.predict(images))
    assert "ct_size" in differences
    assert max(differences.values()) < MAX_DIFFERENCE


def test_a_corrupt_box_classifier_beside_the_model_is_one_line(exported, snapshot_config,
                                                               pages_dir, tmp_path, capsys):
    from nnet.onnx_model import classifier_path

    model = tmp_path / "copy.onnx"
    model.write_bytes(open(exported, "rb").read())
    with open(classifier_path(str(model)), "wb") as f:
        f.write(b"not a model at all")
    assert demo.main([snapshot_config.path, "--onnx", str(model), "--images", pages_dir,
                      "--device", "cpu", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(
        f"demo.py: onnxruntime cannot load {classifier_path(str(model))}, the box classifier "
        f"exported beside {model}: ")
    assert "export again with `python export.py" in err


def test_export_py_out_a_folder_writes_in_it_and_leaves_nothing_behind(snapshot_config, pages_dir,
                                                                      tmp_path, capsys,
                                                                      read_only_folder):
    if not HAVE_ONNX:
        pytest.skip("onnx and onnxruntime are optional (requirements-onnx.txt, scripts/setup.sh)")
    page = os.path.join(pages_dir, "页_0.jpg")
    folder = tmp_path / "models"
    folder.mkdir()
    assert export.main([snapshot_config.path, "--testiter", "7", "--out", str(folder),
                        "--image", page]) == 0
    # the model under its default name inside, the classifier beside it; no temporaries
    assert sorted(os.listdir(folder)) == ["Tiny-Test_7.classifier.onnx", "Tiny-Test_7.onnx"]
    assert sorted(os.listdir(tmp_path)) == ["models", "read_only"]
    capsys.readouterr()

    a_file = tmp_path / "a_file"
    a_file.write_text("mine", encoding="utf-8")
    says = "it is on a read-only file system" if os.geteuid() == 0 else "permission denied"
    for out, message in ((read_only_folder, f"--out {read_only_folder / 'Tiny-Test_7.onnx'} "
                                            f"cannot be written: {says}"),
                         (a_file / "m.onnx", f"--out {a_file / 'm.onnx'} cannot be written: "
                                             f"{a_file} is a file, not a folder")):
        assert export.main([snapshot_config.path, "--testiter", "7", "--out", str(out),
                            "--image", page]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.strip().startswith(f"export.py: {message}"), err
    assert os.listdir(read_only_folder) == [] and a_file.read_text(encoding="utf-8") == "mine"
