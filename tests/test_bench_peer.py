"""bench/bench_peer.py without ultralytics: the peer is an optional extra
(requirements-peer.txt, AGPL-3.0) that the product never imports and
scripts/setup.sh never installs; the benchmark says so when it is missing;
the YOLO image size follows the pages' problem size."""

import os
import re

import numpy as np

from bench import bench_peer
from db.records import ImageRecord

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in
                   ("data", "cache", "results", "build", "__pycache__")]
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def test_only_the_benchmark_imports_ultralytics():
    importing = re.compile(r"^\s*(import|from)\s+ultralytics\b", re.MULTILINE)
    found = [os.path.relpath(path, ROOT) for path in _python_files()
             if importing.search(open(path, encoding="utf-8").read())]
    assert found == [os.path.join("bench", "bench_peer.py")]


def test_setup_installs_neither_ultralytics_nor_its_requirements():
    with open(os.path.join(ROOT, "scripts", "setup.sh"), encoding="utf-8") as f:
        setup = f.read()
    assert "requirements-peer" not in setup and "ultralytics" not in setup
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as f:
        assert "ultralytics" not in f.read().lower()
    with open(os.path.join(ROOT, "requirements-peer.txt"), encoding="utf-8") as f:
        peer = f.read()
    assert re.search(r"^ultralytics==\d", peer, re.MULTILINE)
    assert "--no-deps" in peer and "opencv-python\n" not in peer


def test_without_ultralytics_the_benchmark_says_so_and_stops(monkeypatch, capsys, tmp_path):
    real = bench_peer.importlib.util.find_spec
    monkeypatch.setattr(bench_peer.importlib.util, "find_spec",
                        lambda name, *a: None if name == "ultralytics" else real(name, *a))
    workdir = tmp_path / "work"
    assert bench_peer.main(["--budget", "0.1", "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert "ultralytics is not installed, so the peer (YOLO) cannot run" in err
    assert "pip install --no-deps -r requirements-peer.txt" in err
    assert "AGPL-3.0" in err and "--detectors ours" in err
    assert not workdir.exists()  # nothing was prepared


def test_the_image_size_puts_the_median_problem_two_cells_tall():
    def page(long_side, heights):
        boxes = [[10, 10 + 40 * i, 200, 10 + 40 * i + h] for i, h in enumerate(heights)]
        return ImageRecord(1, "page.jpg", long_side * 3 // 4, long_side, boxes, [0] * len(boxes))

    records = [page(1000, [8, 10, 12]), page(2000, [20, 20, 24])]  # relative heights 0.01 median
    size, why = bench_peer.choose_imgsz(records)
    assert size == 1600 and size % 32 == 0  # 16 px / 0.01
    assert np.isclose(why["median_height"], 16) and why["p5_height"] < 16
    assert why["median_long_side"] == 1500
    assert bench_peer.choose_imgsz(records, cells=1)[0] == 800
