"""One size rule for every reader (db/image_io.py, db.max_image_pixels): the
check command reports an image over the limit with file:line and the reason,
and train.py, test.py and demo.py refuse the same image with the same reason,
from its header, before decoding it."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib

import pytest

from config import SCHEMA, ConfigError, load_config
from db import AnnotationError
from db.coco import load_coco
from db.image_io import default_max_pixels, image_size
from tests.conftest import write_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = SCHEMA["db"]["max_image_pixels"].default
HUGE = (20000, 20000)  # 400 megapixels: over the default, and over Pillow's own limit


def write_png_header(path, width, height):
    """A PNG whose header says width x height, without the pixels: all a
    reader that checks the size before decoding looks at."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


@pytest.fixture
def data_dir(tmp_path):
    """ks_train.txt and ks_val.txt: a good page on line 1, the huge one on line 2."""
    folder = tmp_path / "data"
    folder.mkdir()
    write_image(folder / "good.png")
    write_png_header(folder / "huge.png", *HUGE)
    for split in ("train", "val"):
        (folder / f"ks_{split}.txt").write_text("good.png 10,10,50,50,0\nhuge.png 1,1,9,9,1\n",
                                                encoding="utf-8")
    return folder


def reason(width, height, limit=LIMIT):
    return (f"image huge.png is too large: {width}x{height} is {width * height:,} pixels, "
            f"more than db.max_image_pixels ({limit:,})")


def test_the_limit_is_a_config_key_with_one_default():
    assert default_max_pixels() == LIMIT == load_config("CenterNet-52", check_data=False).db.max_image_pixels
    with pytest.raises(ConfigError, match=r"db\.max_image_pixels: must be >= 1"):
        load_config("CenterNet-52", check_data=False, overrides={"db": {"max_image_pixels": 0}})


def test_the_check_command_reports_an_image_over_the_limit(data_dir):
    source = str(data_dir / "ks_train.txt")
    done = subprocess.run([sys.executable, "-m", "db.ks", source], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{source}:2: {reason(*HUGE)}" in done.stdout
    assert "shrink the image, or raise db.max_image_pixels" in done.stdout
    assert "OK: no errors" not in done.stdout

    # --max-image-pixels replaces the config's limit: the good page is now too large too
    done = subprocess.run([sys.executable, "-m", "db.ks", source, "--max-image-pixels", "10000"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert f"{source}:1: image good.png is too large: 120x100 is 12,000 pixels" in done.stdout


def test_train_test_and_demo_refuse_it_with_the_checkers_reason(data_dir, tmp_path, entry_point,
                                                                capsys):
    config = tmp_path / "Huge.json"
    config.write_text(json.dumps({"base": "CenterNet-tiny", "system": {
        "data_dir": str(data_dir), "cache_dir": str(tmp_path / "cache"),
        "result_dir": str(tmp_path / "results")}}), encoding="utf-8")
    cfg = load_config(str(config))
    os.makedirs(cfg.snapshot_dir)
    open(os.path.join(cfg.snapshot_dir, f"{cfg.name}_1.pkl"), "wb").close()  # found, never read

    expected = {"train.py": f"{data_dir / 'ks_train.txt'}:2: {reason(*HUGE)}",
                "test.py": f"{data_dir / 'ks_val.txt'}:2: {reason(*HUGE)}",
                "demo.py": f"{data_dir / 'huge.png'}: {reason(*HUGE)[len('image huge.png is too large: '):]}"}
    arguments = {"train.py": ["--device", "cpu", "--workers", "0"],
                 "test.py": ["--testiter", "1", "--device", "cpu"],
                 "demo.py": ["--testiter", "1", "--device", "cpu", "--images",
                             data_dir / "huge.png", "--out", tmp_path / "demo"]}
    for script, message in expected.items():
        assert entry_point(script, config, *arguments[script]) == 2, script
        assert message in capsys.readouterr().err, script


def test_header_sizes_follow_the_given_limit(tmp_path):
    write_png_header(tmp_path / "huge.png", *HUGE)
    assert image_size(str(tmp_path / "huge.png"), max_pixels=HUGE[0] * HUGE[1]) == HUGE


def test_the_coco_reader_applies_the_rule_to_the_json_sizes(tmp_path):
    (tmp_path / "images").mkdir()
    write_image(tmp_path / "images" / "a.png")
    write_image(tmp_path / "images" / "b.png")
    annotations = tmp_path / "instances_x.json"
    annotations.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 120, "height": 100},
                   {"id": 2, "file_name": "b.png", "width": HUGE[0], "height": HUGE[1]}],
        "categories": [{"id": 1, "name": "add"}], "annotations": []}), encoding="utf-8")
    with pytest.raises(AnnotationError) as caught:
        load_coco(str(annotations), str(tmp_path / "images"), categories=1)
    assert "(images[1]): image b.png is too large: 20000x20000 is 400,000,000 pixels" in str(caught.value)
    assert len(load_coco(str(annotations), str(tmp_path / "images"), 1,
                         max_pixels=HUGE[0] * HUGE[1])) == 2
