"""Tests of the dataset readers (db/): the ks format of ks-format.md, its check
command, the MSCOCO reader, the in-memory COCO ground truth and image reading.

Every input is made here, in tmp_path: tiny images written with OpenCV and
annotation files written byte by byte, so encodings and line ends are exact.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from config import load_config
from db import AnnotationError, ImageReadError, ImageRecord, image_size, load_db, read_image
from db.ks import format_ks_line, inspect_ks_file, ks_image_paths, load_ks, parse_ks_line
from tests.conftest import write_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATEGORIES = 6


def write_text(path, text, encoding="utf-8", newline="\n", bom=False):
    data = text.replace("\n", newline).encode(encoding)
    with open(path, "wb") as f:
        f.write((b"\xef\xbb\xbf" if bom else b"") + data)
    return str(path)


def ks_config(data_dir, **system):
    return load_config("CenterNet-tiny", overrides={"system": {"data_dir": str(data_dir), **system}})


def problem_lines(error):
    """(line number, message) of each problem of an AnnotationError."""
    return [(p.line, p.message) for p in error.problems]


# ----------------------------------------------------------------------
# the ks reader: good input
# ----------------------------------------------------------------------

def test_ks_reads_every_allowed_form(tmp_path):
    """BOM, CRLF, Chinese names in a Chinese folder, relative and absolute paths,
    tabs and runs of spaces, comments, blank lines, decimals, images without objects."""
    chinese = write_image(tmp_path / "数据" / "页面_一.jpg", 120, 100)
    elsewhere = write_image(tmp_path / "other" / "abs.png", 64, 48)
    write_image(tmp_path / "blank.png", 30, 20)
    text = ("# ks_train.txt of a test\n"
            "\n"
            f"数据/页面_一.jpg 10,10,50,50,0\t\t20.5,20.25,60,70.75,5   1,1,2,2,3\n"
            "   # an indented comment\n"
            "  \t \n"
            f"{elsewhere}\t 0,0,64,48,2\n"
            "blank.png\n")
    write_text(tmp_path / "ks_train.txt", text, newline="\r\n", bom=True)

    db = load_db(ks_config(tmp_path), "train")

    assert len(db) == 3
    assert [r.image_id for r in db.records] == [1, 2, 3]
    assert [r.source_line for r in db.records] == [3, 6, 7]
    assert db.records[0].path == chinese and db.records[1].path == elsewhere
    assert db.records[2].path == str(tmp_path / "blank.png")
    assert [(r.width, r.height) for r in db.records] == [(120, 100), (64, 48), (30, 20)]
    first = db.records[0]
    assert first.boxes.dtype == np.float32 and first.classes.dtype == np.int64
    np.testing.assert_allclose(first.boxes, [[10, 10, 50, 50], [20.5, 20.25, 60, 70.75], [1, 1, 2, 2]])
    assert first.classes.tolist() == [0, 5, 3]
    assert db.records[2].boxes.shape == (0, 4) and db.records[2].classes.shape == (0,)
    assert db.object_counts().tolist() == [3, 1, 0]
    assert db.max_objects() == (3, first)
    assert db.has_annotations
    assert db.category_ids == [1, 2, 3, 4, 5, 6]
    assert db.category_names == ["add", "sub", "mul", "div", "compare", "fill"]
    assert db.warnings == []
    assert db.source == str(tmp_path / "ks_train.txt")


def test_ks_line_writer_round_trips(tmp_path):
    boxes = np.array([[1.25, 2, 30.5, 40], [0, 0, 10.004, 9.996]], np.float32)
    write_image(tmp_path / "图" / "一.png", 50, 50)
    other = write_image(tmp_path / "二.png", 50, 50)
    lines = [format_ks_line("图/一.png", boxes, [4, 0]), format_ks_line(other, np.zeros((0, 4)), [])]
    assert lines[0] == "图/一.png 1.25,2,30.5,40,4 0,0,10,10,0"
    write_text(tmp_path / "ks_x.txt", "\n".join(lines) + "\n")
    db = load_ks(str(tmp_path / "ks_x.txt"), CATEGORIES)
    np.testing.assert_allclose(db.records[0].boxes, [[1.25, 2, 30.5, 40], [0, 0, 10, 10]])
    assert db.records[1].num_objects == 0
    with pytest.raises(ValueError, match="spaces"):
        format_ks_line("a b.png", boxes, [0, 0])


def test_one_line_parser_reads_a_line_as_the_file_reader_does(tmp_path):
    entry, problems = parse_ks_line("\ufeff 图/一.png\t1,2,30,40,4  5,6,7.5,8,0 ", CATEGORIES,
                                    number=3, folder=str(tmp_path))
    assert problems == [] and entry.line == 3 and entry.written_path == "图/一.png"
    assert entry.path == os.path.join(str(tmp_path), "图", "一.png")
    assert entry.boxes == [[1, 2, 30, 40], [5, 6, 7.5, 8]] and entry.classes == [4, 0]
    written = format_ks_line(entry.written_path, entry.boxes, entry.classes)
    assert parse_ks_line(written, CATEGORIES)[0].boxes == entry.boxes
    assert parse_ks_line("  # annotated", CATEGORIES) == (None, [])
    entry, problems = parse_ks_line("a.png 1,2,3,4,9 1,2,3,4,1", CATEGORIES)
    assert entry.classes == [1] and problems == [
        'box 1 "1,2,3,4,9": category 9 is out of range: db.categories is 6, so 0..5']
    assert parse_ks_line("a.png 1,2,3,4,9", None)[1] == []  # any category: paths only
    entry, problems = parse_ks_line("1,2,3,4,0 a.png", CATEGORIES)
    assert entry is None and "starts with a box" in problems[0]


def test_image_paths_of_a_ks_file_refuse_lines_without_an_image(tmp_path):
    path = tmp_path / "ks_list.txt"
    path.write_bytes("a.png 1,2,3,4,99\n# note\nsub/b.png\na.png\n".encode("utf-8"))
    assert ks_image_paths(str(path)) == [str(tmp_path / "a.png"), str(tmp_path / "sub" / "b.png"),
                                         str(tmp_path / "a.png")]
    path.write_bytes(b"a.png\n\xff\xfe.png\n")
    with pytest.raises(ValueError, match=r"ks_list.txt:2: not UTF-8"):
        ks_image_paths(str(path))


def test_records_are_read_only(tmp_path):
    write_image(tmp_path / "a.png")
    write_text(tmp_path / "ks_x.txt", "a.png 1,2,3,4,0\n")
    record = load_ks(str(tmp_path / "ks_x.txt"), CATEGORIES).records[0]
    with pytest.raises(ValueError):
        record.boxes[0, 0] = 5  # the sampler must work on a copy
    with pytest.raises(ValueError, match="boxes must be"):
        ImageRecord(1, "x", 10, 10, np.zeros((2, 5)), np.zeros(2))
    with pytest.raises(ValueError, match="2 boxes but 1 classes"):
        ImageRecord(1, "x", 10, 10, np.zeros((2, 4)), np.zeros(1))


# ----------------------------------------------------------------------
# the ks reader: bad input
# ----------------------------------------------------------------------

def test_ks_reports_every_problem_in_one_exception(tmp_path):
    write_image(tmp_path / "a.png", 120, 100)
    write_image(tmp_path / "b.png", 120, 100)
    (tmp_path / "garbage.jpg").write_bytes(b"this is not an image")
    lines = [
        "a.png 1,2,3,4 1,2,3,4,0,9",               # 1: 4 fields, 6 fields
        "b.png 1,2,x,4,0 nan,2,3,4,0",             # 2: non-number, NaN
        "b.png 1,2,3,4,0 1,2,3",                    # 3: duplicate of line 2, 3 fields
        "c.png 1,2,inf,4,0",                        # 4: infinity (and c.png is missing)
        "garbage.jpg",                              # 5: not decodable
        "# a comment",                              # 6: fine
        "./a.png",                                  # 7: duplicate of line 1, another spelling
        "d.png",                                    # 8: missing
    ]
    good = [
        "e.png 10,10,5,20,0 10,20,30,20,1 1,1,2,2,6 1,1,2,2,-1 1,1,2,2,1.5",  # 9
        "f.png 200,10,300,50,0 -50,-50,-1,10,1 1,1,2,2,0 # trailing comment",  # 10
        "10,10,20,20,0",                                                       # 11: no path
    ]
    write_image(tmp_path / "e.png", 120, 100)
    write_image(tmp_path / "f.png", 120, 100)
    source = write_text(tmp_path / "ks_bad.txt", "\n".join(lines + good) + "\n")
    # line 12, not UTF-8: a GBK file name
    with open(source, "ab") as f:
        f.write("页面.png 1,1,2,2,0\n".encode("gbk"))

    with pytest.raises(AnnotationError) as caught:
        load_ks(source, CATEGORIES)
    error = caught.value
    message = str(error)
    expected = [
        (1, 'box 1 "1,2,3,4": has 4 fields'),
        (1, 'box 2 "1,2,3,4,0,9": has 6 fields'),
        (2, 'box 1 "1,2,x,4,0": x2 "x" is not a number'),
        (2, 'box 2 "nan,2,3,4,0": x1 is nan'),
        (3, "image b.png is listed again (first on line 2)"),
        (3, 'box 2 "1,2,3": has 3 fields'),
        (4, 'box 1 "1,2,inf,4,0": x2 is inf'),
        (4, "image c.png does not exist"),
        (5, "image garbage.jpg cannot be read"),
        (7, "image ./a.png is listed again (first on line 1)"),
        (8, "image d.png does not exist"),
        (9, 'box 1 "10,10,5,20,0": x2 (5) <= x1 (10)'),
        (9, 'box 2 "10,20,30,20,1": y2 (20) <= y1 (20)'),
        (9, 'box 3 "1,1,2,2,6": category 6 is out of range'),
        (9, 'box 4 "1,1,2,2,-1": category -1 is out of range'),
        (9, 'box 5 "1,1,2,2,1.5": category "1.5" is not a whole number'),
        (10, "'#' starts a comment only at the beginning of a line"),
        (10, 'box 1 "200,10,300,50,0" lies entirely outside its image (120x100)'),
        (10, 'box 2 "-50,-50,-1,10,1" lies entirely outside its image'),
        (11, "the line starts with a box"),
        (12, "not UTF-8"),
    ]
    for line, text in expected:
        assert any(n == line and text in m for n, m in problem_lines(error)), (line, text, message)
        assert f"{source}:{line}: " in message
    assert len(error.problems) == len(expected), message
    assert isinstance(error, ValueError)
    assert message.startswith(f"{source}: {len(expected)} problems")
    # a DataLoader worker pickles the exception: it must survive intact
    assert str(pickle.loads(pickle.dumps(error))) == message


TRICKY_BOXES = [
    "1,2,3,4,0", "1e1,2,3e1,4,5", "+1,2,3,4,0", ".5,1,2.,3,1", "1,2,3,4,0.0", "1,2,3,4,-0",
    "-3,-2,-1,4,0", "1e,2,3,4,0", "1_0,2,30,4,0", "nan,2,3,4,0", "1,2,Infinity,4,0",
    "1,2,3,4,6", "1,2,3,4,-1", "1,2,3,4,2.5", "1,,3,4,0", "0x1,2,3,4,0", "1e999,2,3e999,4,0",
    "１,2,3,4,0", "1，2，3，4，0", "1,2,3,4", "1,2,3,4,0,", "3,2,1,4,0", "1,4,3,4,0", "--1,2,3,4,0",
]


@pytest.mark.parametrize("token", TRICKY_BOXES)
def test_fast_and_careful_box_parsers_agree(token):
    """A line without mistakes is parsed at once; any other goes box by box.
    Both must accept exactly the same boxes, with the same values."""
    from db.ks import _parse_box, _parse_good_line
    careful, reason = _parse_box(token, CATEGORIES)
    fast = _parse_good_line([token, "1,1,2,2,0"], CATEGORIES)
    if reason is None:
        assert fast is not None and fast[0].tolist() == careful
    else:
        assert fast is None and reason


def test_ks_full_width_characters_get_a_hint(tmp_path):
    write_image(tmp_path / "a.png")
    source = write_text(tmp_path / "ks_x.txt", "a.png １,2,3,4,0 1，2，3，4，0\n")
    with pytest.raises(AnnotationError) as caught:
        load_ks(source, CATEGORIES)
    assert [line for line, _ in problem_lines(caught.value)] == [1, 1]
    assert "ASCII 0-9" in str(caught.value) and "full-width commas" in str(caught.value)


def test_ks_box_partly_outside_is_clipped_with_a_warning(tmp_path, caplog):
    write_image(tmp_path / "a.png", 120, 100)
    source = write_text(tmp_path / "ks_x.txt", "\n# comment\na.png -5,10,50,50,1 100,90,130.5,110,2 1,1,2,2,0\n")
    with caplog.at_level(logging.WARNING, logger="db"):
        db = load_ks(source, CATEGORIES)
    np.testing.assert_allclose(db.records[0].boxes, [[0, 10, 50, 50], [100, 90, 120, 100], [1, 1, 2, 2]])
    assert [str(w) for w in db.warnings] == [
        f'{source}:3: box 1 "-5,10,50,50,1" extends past its image (120x100): clipped to 0,10,50,50',
        f'{source}:3: box 2 "100,90,130.5,110,2" extends past its image (120x100): clipped to 100,90,120,100']
    # printed once, as one log record holding both
    assert len(caplog.records) == 1 and f"{source}:3:" in caplog.records[0].getMessage()
    db.log_warnings()
    assert len(caplog.records) == 1


def test_many_warnings_are_printed_shortened(tmp_path, caplog):
    write_image(tmp_path / "a.png", 20, 20)
    source = write_text(tmp_path / "ks_x.txt", "a.png" + " -1,0,5,5,0" * 30 + "\n")
    with caplog.at_level(logging.WARNING, logger="db"):
        db = load_ks(source, CATEGORIES)
    assert len(db.warnings) == 30
    printed = caplog.records[0].getMessage()
    assert "30 warnings" in printed and "and 10 more" in printed
    assert printed.count("extends past") == 20


def test_ks_file_without_boxes_is_unannotated(tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png")
    write_text(tmp_path / "ks_test.txt", "a.png\nb.png\n")
    db = load_db(ks_config(tmp_path), "test")
    assert len(db) == 2 and not db.has_annotations
    with pytest.raises(ValueError, match="no annotations"):
        db.coco_gt()


def test_ks_empty_file_is_an_error(tmp_path):
    source = write_text(tmp_path / "ks_x.txt", "# nothing here\n\n")
    with pytest.raises(AnnotationError, match="lists no images"):
        load_ks(source, CATEGORIES)


def test_missing_ks_file_names_the_path_and_the_keys(tmp_path):
    write_text(tmp_path / "ks_train.txt", "")
    cfg = ks_config(tmp_path, val_split="minival")
    with pytest.raises(FileNotFoundError) as caught:
        load_db(cfg, "minival")
    message = str(caught.value)
    assert str(tmp_path / "ks_minival.txt") in message
    assert "system.data_dir" in message and "system.val_split" in message
    assert "ks_train.txt" in message  # what the folder does hold


# ----------------------------------------------------------------------
# COCO ground truth
# ----------------------------------------------------------------------

def test_ks_coco_ground_truth_scores_perfect_detections(tmp_path, capsys):
    from pycocotools.cocoeval import COCOeval

    write_image(tmp_path / "a.png", 200, 100)
    write_image(tmp_path / "b.png", 200, 100)
    write_image(tmp_path / "c.png", 200, 100)
    write_text(tmp_path / "ks_val.txt",
               "a.png 10,10,50,40,0 60.5,10,90,40,5 -10,50,30,90,2\n"
               "b.png 100,20,190,80,4\n"
               "c.png\n")
    db = load_db(ks_config(tmp_path), "val")
    capsys.readouterr()
    gt = db.coco_gt()
    assert db.coco_gt() is gt
    assert capsys.readouterr().out == ""  # pycocotools' prints are kept out of the output

    annotations = gt.loadAnns(gt.getAnnIds())
    assert [a["bbox"] for a in annotations] == [[10, 10, 40, 30], [60.5, 10, 29.5, 30],
                                                [0, 50, 30, 40], [100, 20, 90, 60]]
    assert [a["area"] for a in annotations] == [1200, 885, 1200, 5400]
    assert [a["category_id"] for a in annotations] == [1, 6, 3, 5]
    assert all(a["iscrowd"] == 0 for a in annotations)
    assert [c["name"] for c in gt.loadCats(gt.getCatIds())] == db.category_names
    assert sorted(gt.getImgIds()) == [1, 2, 3]
    assert gt.loadImgs(1)[0]["width"] == 200 and gt.loadImgs(1)[0]["height"] == 100

    detections = [{"image_id": a["image_id"], "category_id": a["category_id"],
                   "bbox": a["bbox"], "score": 1.0} for a in annotations]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(gt, gt.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)
    assert evaluation.stats[1] == pytest.approx(1.0)


def test_db_pickles_without_its_ground_truth(tmp_path):
    write_image(tmp_path / "a.png")
    db = load_ks(write_text(tmp_path / "ks_x.txt", "a.png 1,2,3,4,0\n"), CATEGORIES)
    db.coco_gt()
    copy = pickle.loads(pickle.dumps(db))
    assert copy._coco_gt is None and len(copy) == 1
    assert copy.coco_gt().getAnnIds() == [1]


# ----------------------------------------------------------------------
# the check command
# ----------------------------------------------------------------------

def run_check(*args):
    return subprocess.run([sys.executable, "-m", "db.ks", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_check_command_lists_every_mistake(tmp_path):
    write_image(tmp_path / "a.png", 120, 100)
    source = write_text(tmp_path / "ks_x.txt",
                        "a.png 1,2,3 -5,0,10,10,1\n"
                        "missing.png\n"
                        "a.png 1,2,3,4,0\n"
                        "# fine\n"
                        "a2.png 5,5,1,1,9\n")
    result = run_check(source)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f'{source}:1: box 1 "1,2,3": has 3 fields' in out
    assert f"{source}:2: image missing.png does not exist" in out
    assert f"{source}:3: image a.png is listed again (first on line 1)" in out
    assert f'{source}:5: box 1 "5,5,1,1,9": x2 (1) <= x1 (5)' in out
    assert "category 9 is out of range" in out
    assert f"{source}:5: image a2.png does not exist" in out
    assert f'{source}:1: box 2 "-5,0,10,10,1" extends past' in out  # a warning, also listed
    assert "5 errors" in out and "1 warning" in out


def test_check_command_summarises_a_good_file(tmp_path):
    write_image(tmp_path / "页" / "一.jpg", 120, 100)
    write_image(tmp_path / "b.png", 120, 100)
    write_image(tmp_path / "c.png", 120, 100)
    source = write_text(tmp_path / "ks_x.txt",
                        "页/一.jpg 1,1,5,5,0 1,1,5,5,0 1,1,5,5,4\n"
                        "b.png 1,1,5,5,1 -1,1,5,5,5\n"
                        "c.png\n", newline="\r\n", bom=True)
    result = run_check(source)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""  # no runpy warning, no OpenCV noise
    out = result.stdout
    assert "images: 3 (1 without objects)" in out
    assert "objects: 5" in out
    counts = {line.split()[1]: int(line.split()[2]) for line in out.splitlines()
              if len(line.split()) == 3 and line.split()[0].isdigit()}
    assert counts == {"add": 2, "sub": 1, "mul": 0, "div": 0, "compare": 1, "fill": 1}
    assert "most objects on one image: 3 (line 1: 页/一.jpg)" in out
    assert f'{source}:2: box 2 "-1,1,5,5,5" extends past' in out  # clipping: printed, exit 0

    # --categories other than the config's: no names, the range follows it
    result = run_check(source, "--categories", "5")
    assert result.returncode == 1 and "category 5 is out of range" in result.stdout


def test_check_command_counts_images_over_max_tag_len(tmp_path):
    limit = load_config("CenterNet-52", check_data=False).db.max_tag_len
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png")
    source = write_text(tmp_path / "ks_x.txt", "a.png" + " 1,1,5,5,0" * (limit + 1) + "\nb.png\n")
    result = run_check(source)
    assert result.returncode == 0
    assert f"images over db.max_tag_len ({limit} in CenterNet-52): 1;" in result.stdout
    assert f"most objects on one image: {limit + 1} (line 1: a.png)" in result.stdout


def test_check_command_catches_a_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    noise = np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", noise)[1].tobytes()
    path.write_bytes(data[: len(data) // 2])
    source = write_text(tmp_path / "ks_x.txt", "cut.jpg 1,1,9,9,0\n")
    # loading reads only the header, which is intact ...
    assert len(load_ks(source, CATEGORIES)) == 1
    # ... the check command decodes every pixel
    result = run_check(source)
    assert result.returncode == 1
    assert f"{source}:1: image cut.jpg cannot be read" in result.stdout
    # one parser for both: the check's report equals the loader's, plus decoding
    report = inspect_ks_file(source, CATEGORIES, decode=True)
    assert [p.line for p in report.errors] == [1]


# ----------------------------------------------------------------------
# MSCOCO
# ----------------------------------------------------------------------

def coco_config(data_dir, categories=3):
    return load_config("CenterNet-tiny", overrides={
        "system": {"dataset": "MSCOCO", "data_dir": str(data_dir)},
        "db": {"categories": categories, "category_names": None}})


def write_coco(data_dir, split, images=True, annotations=True, missing=()):
    """A tiny instances_<split>.json: category ids 3, 7, 90 (not contiguous)."""
    content = {
        "images": [{"id": 11, "file_name": "p11.jpg", "width": 100, "height": 80},
                   {"id": 42, "file_name": "p42.jpg", "width": 60, "height": 60},
                   {"id": 7, "file_name": "p7.jpg", "width": 50, "height": 40}],
        "categories": [{"id": 90, "name": "toothbrush"}, {"id": 3, "name": "car"},
                       {"id": 7, "name": "train"}],
    }
    if annotations:
        content["annotations"] = [
            {"id": 1, "image_id": 11, "category_id": 3, "bbox": [10, 20, 30, 40],
             "area": 1000.0, "iscrowd": 0},
            {"id": 2, "image_id": 11, "category_id": 90, "bbox": [50, 5, 60, 10],
             "area": 500.0, "iscrowd": 0},
            {"id": 3, "image_id": 11, "category_id": 7, "bbox": [0, 0, 100, 80],
             "area": 7000.0, "iscrowd": 1},
            {"id": 4, "image_id": 42, "category_id": 7, "bbox": [1.5, 2.5, 10, 20],
             "area": 150.0, "iscrowd": 0},
        ]
    os.makedirs(os.path.join(data_dir, "annotations"), exist_ok=True)
    with open(os.path.join(data_dir, "annotations", f"instances_{split}.json"), "w") as f:
        json.dump(content, f)
    if images:
        for image in content["images"]:
            if image["file_name"] not in missing:
                write_image(os.path.join(data_dir, "images", split, image["file_name"]),
                            image["width"], image["height"])
    return content


def test_coco_reader(tmp_path):
    write_coco(str(tmp_path), "mini")
    db = load_db(coco_config(tmp_path), "mini")
    assert db.category_ids == [3, 7, 90]
    assert db.category_names == ["car", "train", "toothbrush"]
    assert [r.image_id for r in db.records] == [11, 42, 7]
    first = db.records[0]
    assert first.path == str(tmp_path / "images" / "mini" / "p11.jpg")
    assert (first.width, first.height) == (100, 80)
    # the crowd box is left out of training; the box past the right edge is clipped
    np.testing.assert_allclose(first.boxes, [[10, 20, 40, 60], [50, 5, 100, 15]])
    assert first.classes.tolist() == [0, 2]
    np.testing.assert_allclose(db.records[1].boxes, [[1.5, 2.5, 11.5, 22.5]])
    assert db.records[1].classes.tolist() == [1]
    assert db.object_counts().tolist() == [2, 1, 0]
    assert db.has_annotations
    assert len(db.warnings) == 1 and "clipped" in str(db.warnings[0])
    # the ground truth is the file itself, crowd region included
    gt = db.coco_gt()
    assert sorted(gt.getAnnIds()) == [1, 2, 3, 4]
    assert gt.loadAnns(3)[0]["iscrowd"] == 1 and gt.loadAnns(2)[0]["bbox"] == [50, 5, 60, 10]


def test_coco_missing_images_are_all_listed(tmp_path):
    write_coco(str(tmp_path), "mini", missing=("p11.jpg", "p7.jpg"))
    with pytest.raises(AnnotationError) as caught:
        load_db(coco_config(tmp_path), "mini")
    message = str(caught.value)
    assert len(caught.value.problems) == 2
    assert f"image file {tmp_path / 'images' / 'mini' / 'p11.jpg'} does not exist" in message
    assert "image id 7" in message and "p42" not in message


def test_coco_category_count_must_match_the_config(tmp_path):
    write_coco(str(tmp_path), "mini")
    with pytest.raises(AnnotationError, match=r"has 3 categories but the config's db.categories is 80"):
        load_db(coco_config(tmp_path, categories=80), "mini")


def test_coco_image_info_without_annotations(tmp_path):
    write_coco(str(tmp_path), "testdev", annotations=False)
    db = load_db(coco_config(tmp_path), "testdev")
    assert len(db) == 3 and not db.has_annotations
    assert db.object_counts().tolist() == [0, 0, 0]


def test_coco_bad_entries_are_all_reported(tmp_path):
    content = write_coco(str(tmp_path), "mini")
    content["annotations"] += [
        {"id": 5, "image_id": 999, "category_id": 3, "bbox": [1, 1, 2, 2], "iscrowd": 0},
        {"id": 6, "image_id": 42, "category_id": 4, "bbox": [1, 1, 2, 2], "iscrowd": 0},
        {"id": 7, "image_id": 42, "category_id": 3, "bbox": [1, 1, 2], "iscrowd": 0},
    ]
    path = tmp_path / "annotations" / "instances_mini.json"
    path.write_text(json.dumps(content))
    with pytest.raises(AnnotationError) as caught:
        load_db(coco_config(tmp_path), "mini")
    message = str(caught.value)
    assert "id 5): image_id 999 is not in images" in message
    assert "id 6): category_id 4 is not in categories" in message
    assert "id 7): bbox must be [x, y, width, height]" in message

    path.write_text('{"images": [\n  oops]}')
    with pytest.raises(AnnotationError, match=rf"{path}:2: not valid JSON"):
        load_db(coco_config(tmp_path), "mini")


def test_missing_coco_file_names_the_path_and_the_keys(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        load_db(coco_config(tmp_path), "train")
    message = str(caught.value)
    assert str(tmp_path / "annotations" / "instances_train.json") in message
    assert "system.data_dir" in message and "system.train_split" in message


# ----------------------------------------------------------------------
# image reading
# ----------------------------------------------------------------------

def test_read_image_non_ascii_path_and_grey_image(tmp_path):
    path = tmp_path / "图片" / "灰.png"
    path.parent.mkdir()
    cv2.imencode(".png", np.full((7, 9), 77, np.uint8))[1].tofile(str(path))
    image = read_image(str(path))
    assert image.shape == (7, 9, 3) and image.dtype == np.uint8 and (image == 77).all()
    assert image_size(str(path)) == (9, 7)


def test_read_image_ignores_exif_orientation(tmp_path):
    """Boxes refer to the stored pixels: an EXIF 'rotate 90' tag must not turn the image."""
    path = str(tmp_path / "rotated.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 20), (255, 0, 0)).save(path, exif=exif)
    assert read_image(path).shape == (20, 40, 3)
    assert image_size(path) == (40, 20)
    b, g, r = read_image(path)[10, 20]
    assert r > 200 and b < 50  # RGB red stored, BGR returned


def test_read_image_errors_name_the_path(tmp_path):
    missing = str(tmp_path / "无.jpg")
    with pytest.raises(ImageReadError, match="无.jpg: no such file") as caught:
        read_image(missing)
    assert caught.value.path == missing
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.path == missing and str(copy) == str(caught.value)

    for name, data in (("empty.jpg", b""), ("text.jpg", b"not an image at all")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageReadError, match=name):
            read_image(str(tmp_path / name))
        with pytest.raises(ImageReadError, match=name):
            image_size(str(tmp_path / name))
    with pytest.raises(ImageReadError, match="no such file"):
        image_size(missing)
