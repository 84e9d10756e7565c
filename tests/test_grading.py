"""Grading pages (reader/grading.py, train_reader.py, grade.py): which boxes
are graded, the decision per problem with what was read, the JSON and the
picture, the comparison with ks_<split>_text.jsonl, and bad input (an empty
box, a box at the border, an answer that is not a number, a page without
problems) giving a clear result."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from reader.arithmetic import DECISIONS, RIGHT, UNANSWERED, UNREADABLE, WRONG
from reader.crops import EmptyCrop
from reader.engine import Reading
from reader.grading import (
    compare_with_truth,
    draw_grades,
    grade_boxes,
    match_boxes,
    page_json,
    page_score,
    reading_order,
    select_boxes,
)
from reader.text import PageText, read_text_file


class FakeReader:
    """Reads what it is told, box by box, and checks the boxes it is given."""

    def __init__(self, readings):
        self.readings = readings
        self.boxes = None

    def read_boxes(self, image, boxes):
        self.boxes = np.asarray(boxes)
        return self.readings[:len(boxes)]


def test_one_box_per_place_none_inside_a_better_one():
    detections = np.array([
        [10, 10, 110, 30, 0.9, 0],      # a problem, reported under three categories
        [10, 10, 110, 30, 0.5, 1],
        [11, 10, 111, 31, 0.4, 5],
        [60, 10, 108, 30, 0.6, 2],      # its right half, found beside it
        [10, 50, 110, 70, 0.3, 4],      # another problem
        [10, 90, 110, 110, 0.05, 3],    # below the threshold
    ])
    kept = select_boxes(detections, 0.1)
    assert kept[:, 4].tolist() == [0.9, 0.3]
    assert select_boxes(np.zeros((0, 6)), 0.1).shape == (0, 6)


def test_problems_come_in_reading_order():
    rng = np.random.default_rng(0)
    grid = [(x, y) for y in (10, 50, 90) for x in (10, 200, 400)]
    boxes = np.array([[x, y + rng.uniform(-3, 3), x + 150, y + 20] for x, y in grid])
    shuffled = rng.permutation(len(boxes))
    order = reading_order(boxes[shuffled])
    assert shuffled[order].tolist() == list(range(9))


def test_each_box_gets_a_decision_with_what_was_read_and_why():
    readings = [Reading("12+7=", "19", 0.9, 0.8), Reading("12+7=", "18", 0.9, 0.8),
                Reading("( )+5=7", "", 0.9, 0.99), Reading("35○53", "7", 0.9, 0.5),
                Reading("12+7=", "1>", 0.9, 0.4), Reading("12+", "3", 0.2, 0.9),
                EmptyCrop("the box is 0 x 20 px: nothing to read")]
    boxes = np.array([[10, 10 + 40 * k, 110, 30 + 40 * k, 0.9, 0] for k in range(len(readings))],
                     np.float64)
    reader = FakeReader(readings)
    graded = grade_boxes(reader, np.zeros((400, 200, 3), np.uint8), boxes)
    assert reader.boxes.shape == (7, 4)
    assert [g.decision for g in graded] == [RIGHT, WRONG, UNANSWERED, UNREADABLE, UNREADABLE,
                                            UNREADABLE, UNREADABLE]
    assert graded[1].expected == "19" and graded[2].expected == "2"
    assert "is not >, < or =" in graded[3].reason
    assert "the answer '1>' is not a number" == graded[4].reason
    assert graded[5].reason.startswith("printed part:")
    assert "nothing to read" in graded[6].reason and graded[6].printed is None
    score = page_score(graded)
    assert score == {RIGHT: 1, WRONG: 1, UNANSWERED: 1, UNREADABLE: 4, "problems": 7, "score": "1/7"}
    page = page_json("p.jpg", np.zeros((400, 200, 3), np.uint8), graded, names=["add"] * 6)
    assert json.loads(json.dumps(page))["problems"][0]["name"] == "add"


def test_the_picture_marks_each_problem_and_shows_the_score():
    image = np.full((300, 400, 3), 230, np.uint8)
    readings = [Reading("1+1=", "2", 1, 1), Reading("1+1=", "3", 1, 1), Reading("1+1=", "", 1, 1)]
    boxes = np.array([[20, 60, 120, 80], [20, 120, 120, 140], [20, 180, 120, 200]], np.float64)
    graded = grade_boxes(FakeReader(readings), image, boxes)
    picture = draw_grades(image, graded)
    assert picture.shape == image.shape and (image == 230).all()   # the page itself is untouched
    changed = (picture != 230).any(axis=2)
    assert changed[:20].any()                                       # the score band
    for y1, y2 in ((60, 80), (120, 140), (180, 200)):
        assert changed[y1 - 5:y2 + 5, 125:160].any()                # a mark right of each box
    green, red = picture[60:80, 125:160], picture[120:140, 125:160]
    assert (green[..., 1] > green[..., 2] + 60).any() and (red[..., 2] > red[..., 1] + 60).any()
    # a page without problems: the picture says so, nothing else drawn
    empty = draw_grades(image, [])
    assert (empty[40:] == 230).all() and (empty[:20] != 230).any()
    assert page_score([])["score"] == "0/0"


def test_marks_stay_inside_the_picture_for_boxes_at_its_border():
    image = np.full((100, 200, 3), 230, np.uint8)
    readings = [Reading("1+1=", "3", 1, 1), Reading("1+1=", "2", 1, 1)]
    boxes = np.array([[120, 75, 200, 100], [-5, -5, 60, 20]], np.float64)
    picture = draw_grades(image, grade_boxes(FakeReader(readings), image, boxes))
    assert picture.shape == image.shape


def test_found_boxes_are_compared_with_the_truth_one_to_one():
    truth = PageText(image="p.jpg", boxes=np.array([[0, 0, 100, 20], [0, 40, 100, 60],
                                                     [0, 80, 100, 100]], np.float64),
                     classes=(0, 0, 4), printed=("1+1=", "2+2=", "3○4"), answers=("2", "5", ""),
                     solutions=("2", "4", "<"))
    assert match_boxes(np.array([[0, 41, 100, 61], [2, 0, 100, 20], [0, 0, 100, 22]]),
                       truth.boxes) == [(1, 0), (0, 1)]
    readings = [Reading("1+1=", "2", 1, 1), Reading("2+2=", "4", 1, 1), Reading("7", "", 1, 1)]
    found = np.array([[1, 0, 100, 20], [0, 40, 101, 60], [300, 300, 340, 320]], np.float64)
    graded = grade_boxes(FakeReader(readings), np.zeros((400, 400, 3), np.uint8), found)
    counts = compare_with_truth(graded, truth)
    # the second answer was read as 4 but the pupil wrote 5: the decision is wrong too
    assert counts == {"truth": 3, "found": 2, "detections": 3, "printed_exact": 2,
                      "answer_exact": 1, "printed_read_exact": 2, "answer_read_exact": 1,
                      "decision_right": 1, "truth_right": 1, "truth_right_decided": 1,
                      "truth_wrong": 1, "truth_wrong_decided": 0}


# --------------------------------------------------------------------------
# train_reader.py and grade.py, end to end on the tiny synthetic set


@pytest.fixture(scope="module")
def tiny_reader(tiny_ks_dir, tmp_path_factory):
    """A reader config over the tiny set, trained for 2 steps (a real snapshot)."""
    import importlib.util

    folder = tmp_path_factory.mktemp("tiny_reader")
    config = folder / "Tiny-Reader.json"
    config.write_text(json.dumps({
        "base": "CRNN-tiny",
        "system": {"data_dir": tiny_ks_dir, "cache_dir": str(folder / "cache"), "max_iter": 2,
                   "snapshot": 2, "val_pages": 1, "batch_size": 4, "pages_per_batch": 2,
                   "warmup_iter": 1},
        # PP-OCR's second opinion is tested on its own (tests/test_ppocr.py, and below):
        # for an untrained recognizer it would read every box
        "reader": {"crop_height": 16, "crop_width": 64, "channels": [4, 8], "hidden": 8,
                   "second_reader": "none"}}),
        encoding="utf-8")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("entry_train_reader",
                                                  os.path.join(root, "train_reader.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(config), "--no-progress"]) == 0
    return config


def test_training_writes_a_snapshot_that_reads(tiny_reader, tiny_ks_dir):
    from db import read_image
    from reader.config import load_reader_config
    from reader.engine import load_reader

    cfg = load_reader_config(str(tiny_reader))
    assert os.path.isfile(os.path.join(cfg.snapshot_dir, "Tiny-Reader_2.pkl"))
    lines = [json.loads(line) for line in open(os.path.join(cfg.snapshot_dir, "log.jsonl"))]
    assert lines[-1]["validation"]["problems"] > 0
    reader = load_reader(cfg, "latest")
    page = read_text_file(os.path.join(tiny_ks_dir, "ks_val_text.jsonl"))[0]
    image = read_image(page.image)
    readings = reader.read_boxes(image, page.boxes)
    assert len(readings) == len(page.boxes)
    assert all(isinstance(r, Reading) and set(r.answer) <= set(cfg.reader.answer_alphabet)
               for r in readings)
    # boxes at the border, empty, outside: read or refused, never a crash
    h, w = image.shape[:2]
    odd = reader.read_boxes(image, [[w - 30, h - 12, w + 5, h + 3], [5, 5, 5, 20], [w + 10, 0, w + 50, 20]])
    assert isinstance(odd[0], Reading) and isinstance(odd[1], EmptyCrop) and isinstance(odd[2], EmptyCrop)


def test_train_reader_says_its_precision_and_refuses_one_it_cannot_run(tiny_reader, tmp_path,
                                                                        entry_point, capsys):
    elsewhere = f"system.cache_dir={tmp_path / 'cache'}"
    assert entry_point("train_reader.py", tiny_reader, "--no-progress", "--max-iter", "1",
                       "--set", elsewhere, "--set", "system.precision=bf16") == 0
    assert "precision: bf16 (set by" in capsys.readouterr().out
    assert entry_point("train_reader.py", tiny_reader, "--no-progress", "--max-iter", "1",
                       "--set", elsewhere, "--set", "system.precision=fp16") == 2
    assert "system.precision" in capsys.readouterr().err


def test_grade_py_writes_a_json_and_a_picture_per_page(tiny_reader, tiny_ks_dir, tiny_snapshot,
                                                         tmp_path, entry_point, capsys):
    config = tiny_snapshot(tmp_path, tiny_ks_dir)
    out = tmp_path / "graded"
    status = entry_point("grade.py", config, "--testiter", "1", "--device", "cpu", "--images",
                         os.path.join(tiny_ks_dir, "ks_val.txt"), "--out", out, "--reader",
                         tiny_reader, "--threshold", "0")
    assert status == 0
    stems = sorted(p[:-5] for p in os.listdir(out) if p.endswith(".json") and p != "summary.json"
                   and p != ".grade-outputs.json")  # grade.py's manifest (outputs.py)
    assert len(stems) == 3
    for stem in stems:
        page = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
        assert page["score"]["problems"] == len(page["problems"])
        assert all(p["decision"] in DECISIONS for p in page["problems"])
        assert page["detector"]["iteration"] == 1 and "truth" in page
        assert cv2.imread(str(out / f"{stem}.jpg")) is not None
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["images"] == 3 and summary["accuracy"]["truth"] > 0
    assert "against ks_val_text.jsonl" in capsys.readouterr().out


def test_grade_py_replaces_only_its_own_files_of_an_earlier_run(tiny_reader, tiny_ks_dir,
                                                                 tiny_snapshot, tmp_path,
                                                                 entry_point, capsys):
    config = tiny_snapshot(tmp_path, tiny_ks_dir)
    out = tmp_path / "graded"
    arguments = [config, "--gt-boxes", "--images", os.path.join(tiny_ks_dir, "ks_val.txt"),
                 "--out", out, "--reader", tiny_reader]
    assert entry_point("grade.py", *arguments) == 0
    manifest = json.loads((out / ".grade-outputs.json").read_text(encoding="utf-8"))
    assert "summary.json" in manifest["files"] and len(manifest["files"]) == 7
    assert entry_point("grade.py", *arguments) == 0  # its own files, unchanged: replaced
    (out / "summary.json").write_text("my totals", encoding="utf-8")
    capsys.readouterr()
    assert entry_point("grade.py", *arguments) == 2
    assert f"{out / 'summary.json'} was changed since grade.py wrote it" in capsys.readouterr().err
    assert (out / "summary.json").read_text(encoding="utf-8") == "my totals"


def test_grade_py_grades_what_the_detector_finds(tiny_reader, tiny_ks_dir, tiny_snapshot, tmp_path,
                                                 entry_point, monkeypatch):
    """A detector that finds every problem, three times under different
    categories and once as a piece: each problem is graded once."""
    import test.run
    from db import read_image

    truth = {os.path.abspath(p.image): p
             for p in read_text_file(os.path.join(tiny_ks_dir, "ks_val_text.jsonl"))}

    def detect_records(net, records, cfg, device, timer, on_image=None, **kwargs):
        found = {}
        for record in records:
            boxes = truth[os.path.abspath(record.path)].boxes
            rows = [np.concatenate([boxes, np.full((len(boxes), 1), score),
                                    np.full((len(boxes), 1), cls)], axis=1)
                    for score, cls in ((0.9, 0), (0.5, 3), (0.4, 5))]
            piece = boxes.copy()
            piece[:, 0] = (boxes[:, 0] + boxes[:, 2]) / 2
            rows.append(np.concatenate([piece, np.full((len(boxes), 2), [0.8, 1])], axis=1))
            found[record.image_id] = np.concatenate(rows)
            on_image(record, read_image(record.path), found[record.image_id])
        return found

    monkeypatch.setattr(test.run, "detect_records", detect_records)
    config = tiny_snapshot(tmp_path, tiny_ks_dir)
    out = tmp_path / "graded"
    assert entry_point("grade.py", config, "--testiter", "1", "--device", "cpu", "--images",
                       os.path.join(tiny_ks_dir, "ks_val.txt"), "--out", out,
                       "--reader", tiny_reader) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    problems = sum(len(p.boxes) for p in truth.values())
    assert summary["totals"]["problems"] == problems
    assert summary["accuracy"]["found"] == summary["accuracy"]["truth"] == problems
    page = json.loads((out / f"{os.path.splitext(os.path.basename(min(truth)))[0]}.json")
                      .read_text(encoding="utf-8"))
    assert {p["score"] for p in page["problems"]} == {0.9}
    assert {p["name"] for p in page["problems"]} == {"add"}


def test_db_grade_threshold_says_what_grade_py_grades_and_old_configs_keep_vis_threshold(
        tiny_reader, tiny_ks_dir, tiny_snapshot, tmp_path, entry_point, monkeypatch):
    """Every problem found at score 0.5: graded from grade_threshold 0.4 even
    where vis_threshold is 0.6; a config with only vis_threshold 0.6 (as
    before the split) grades none."""
    import test.run
    from db import read_image

    truth = {os.path.abspath(p.image): p
             for p in read_text_file(os.path.join(tiny_ks_dir, "ks_val_text.jsonl"))}

    def detect_records(net, records, cfg, device, timer, on_image=None, **kwargs):
        for record in records:
            boxes = truth[os.path.abspath(record.path)].boxes
            found = np.concatenate([boxes, np.full((len(boxes), 2), [0.5, 0])], axis=1)
            on_image(record, read_image(record.path), found)
        return {}

    monkeypatch.setattr(test.run, "detect_records", detect_records)
    problems = sum(len(p.boxes) for p in truth.values())
    for db, graded in (({"vis_threshold": 0.6, "grade_threshold": 0.4}, problems),
                       ({"vis_threshold": 0.6}, 0)):
        folder = tmp_path / str(len(db))
        config = tiny_snapshot(folder, tiny_ks_dir, **db)
        out = folder / "graded"
        assert entry_point("grade.py", config, "--testiter", "1", "--device", "cpu", "--images",
                           os.path.join(tiny_ks_dir, "ks_val.txt"), "--out", out,
                           "--reader", tiny_reader) == 0
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        assert summary["totals"]["problems"] == graded
        assert summary["detector"]["threshold"] == db.get("grade_threshold", 0.6)


def test_grade_py_on_ground_truth_boxes_reads_every_problem(tiny_reader, tiny_ks_dir, tiny_snapshot,
                                                             tmp_path, entry_point):
    config = tiny_snapshot(tmp_path, tiny_ks_dir)
    out = tmp_path / "graded"
    assert entry_point("grade.py", config, "--gt-boxes", "--images",
                       os.path.join(tiny_ks_dir, "ks_val.txt"), "--out", out,
                       "--reader", tiny_reader) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    truth = sum(len(p.boxes) for p in read_text_file(os.path.join(tiny_ks_dir, "ks_val_text.jsonl")))
    assert summary["accuracy"]["found"] == summary["accuracy"]["truth"] == truth
    assert summary["totals"]["problems"] == truth


def test_grade_py_asks_ppocr_where_the_recognizer_is_unsure_or_says_it_is_missing(
        tiny_reader, tiny_ks_dir, tiny_snapshot, tmp_path, entry_point, capsys):
    from reader.ppocr import model_path

    config = tiny_snapshot(tmp_path, tiny_ks_dir)
    (tmp_path / "ppocr").mkdir()
    reader = tmp_path / "ppocr" / "Tiny-Reader.json"   # the same name: the same snapshots
    reader.write_text(json.dumps({"base": str(tiny_reader), "reader": {"second_reader": "ppocr"}}),
                      encoding="utf-8")
    out = tmp_path / "graded"
    assert entry_point("grade.py", config, "--gt-boxes", "--images",
                       os.path.join(tiny_ks_dir, "ks_val.txt"), "--out", out, "--max-images", "1",
                       "--reader", reader) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    page = json.loads(next(out.glob("*_000000.json")).read_text(encoding="utf-8"))
    if model_path() is None:
        assert "PP-OCR is not installed" in capsys.readouterr().out
        assert summary["second_opinions"] == 0
    else:   # two training steps: the recognizer is sure of nothing
        assert summary["second_opinions"] == len(page["problems"]) > 0
        assert all(p["second_opinion"] for p in page["problems"])
    assert summary["read_mark_seconds_per_page"] <= summary["reading_seconds_per_page"]


def test_a_page_without_problems_gets_a_clear_result(tiny_reader, tiny_snapshot, tmp_path,
                                                      entry_point, capsys):
    config = tiny_snapshot(tmp_path, tmp_path)
    folder = tmp_path / "pages"
    folder.mkdir()
    cv2.imwrite(str(folder / "blank.png"), np.full((120, 160, 3), 240, np.uint8))
    out = tmp_path / "graded"
    # a threshold no box reaches: the page holds nothing to grade
    assert entry_point("grade.py", config, "--testiter", "1", "--device", "cpu", "--images", folder,
                       "--out", out, "--reader", tiny_reader, "--threshold", "1") == 0
    page = json.loads((out / "blank.json").read_text(encoding="utf-8"))
    assert page["problems"] == [] and page["score"]["score"] == "0/0"
    assert cv2.imread(str(out / "blank.jpg")).shape == (120, 160, 3)
    assert "no problems found" in capsys.readouterr().out


def test_grade_py_says_what_is_missing(tiny_snapshot, tmp_path, entry_point, capsys, tiny_ks_dir):
    config = tiny_snapshot(tmp_path, tiny_ks_dir)
    reader = tmp_path / "Untrained.json"
    reader.write_text(json.dumps({"base": "CRNN-tiny", "system": {"cache_dir": str(tmp_path / "none")}}),
                      encoding="utf-8")
    images = os.path.join(tiny_ks_dir, "ks_val.txt")
    assert entry_point("grade.py", config, "--testiter", "1", "--images", images, "--out",
                       tmp_path / "o", "--reader", reader) == 2
    assert "train it first: python train_reader.py Untrained" in capsys.readouterr().err
    assert entry_point("grade.py", config, "--testiter", "1", "--images", images, "--out",
                       tmp_path / "o", "--reader", "No-Such-Reader") == 2
    assert "no reader config 'No-Such-Reader'" in capsys.readouterr().err
    assert entry_point("grade.py", config, "--images", images, "--out", tmp_path / "o") == 2
    assert "give --testiter" in capsys.readouterr().err


def test_a_time_budget_ends_training_with_a_snapshot(tiny_reader, tmp_path, capsys):
    from reader.config import load_reader_config
    from reader.engine import learning_rate, reader_snapshot_path, train_reader

    cfg = load_reader_config(str(tiny_reader), overrides={
        "system": {"cache_dir": str(tmp_path), "max_iter": 1000, "snapshot": 1000, "val_pages": 1}})
    train_reader(cfg, progress=False, time_budget=1e-6)
    assert os.path.isfile(reader_snapshot_path(cfg, 1))          # one step, then out of time
    assert "time-budget" in capsys.readouterr().out
    # the schedule: warm-up, then a cosine from the peak to 0 over the run's progress
    assert learning_rate(cfg, 0, 0.0) == cfg.system.learning_rate
    assert learning_rate(cfg, 500, 0.5) == pytest.approx(cfg.system.learning_rate / 2)
    assert learning_rate(cfg, 999, 1.0) == pytest.approx(0.0, abs=1e-12)


def test_the_grading_benchmark_writes_its_section(tiny_reader, tiny_ks_dir, tiny_snapshot, tmp_path,
                                                   monkeypatch):
    import bench.report
    from bench import bench_grading

    report = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr(bench.report, "BENCHMARKS_MD", str(report))
    config = tiny_snapshot(tmp_path, tiny_ks_dir)
    bench_grading.main([config, "--testiter", "1", "--reader", str(tiny_reader), "--max-images", "1",
                        "--out", str(tmp_path / "graded")])
    text = report.read_text(encoding="utf-8")
    assert "<!-- bench:grading-Tiny-Snapshot -->" in text
    assert "ground truth (the recognizer alone)" in text and "Goals of issues 14 and 24" in text
    assert (tmp_path / "graded" / "summary.json").is_file()
    assert (tmp_path / "graded_gt_boxes" / "summary.json").is_file()


def test_a_fill_blank_read_without_its_gap_is_written_as_the_side_file_writes_it():
    # an underline filled with handwriting shows no gap: the reader may emit "()"
    readings = [Reading("()÷2=18", "36", 1, 1), Reading("7+(  )=9", "2", 1, 1)]
    boxes = np.array([[10, 10, 110, 30], [10, 50, 110, 70]], np.float64)
    graded = grade_boxes(FakeReader(readings), np.zeros((100, 200, 3), np.uint8), boxes)
    assert [g.printed for g in graded] == ["( )÷2=18", "7+( )=9"]
    assert [g.printed_read for g in graded] == ["( )÷2=18", "7+( )=9"]
    assert [g.decision for g in graded] == [RIGHT, RIGHT]


def test_a_reader_its_budget_cut_short_says_so_and_grade_py_repeats_it(tiny_reader, tiny_ks_dir,
                                                                       tiny_snapshot, tmp_path,
                                                                       entry_point, capsys):
    """grade.sh trains the recognizer for a time: beside other work it made a
    fifth of its steps and said nothing."""
    settings = json.loads(open(tiny_reader, encoding="utf-8").read())
    settings["system"].update({"cache_dir": str(tmp_path / "cache"), "max_iter": 1000,
                               "snapshot": 1000})
    reader = tmp_path / "Slow-Reader.json"
    reader.write_text(json.dumps(settings), encoding="utf-8")
    # a budget of a few milliseconds: one step of the 1000
    assert entry_point("train_reader.py", reader, "--no-progress", "--time-budget", "0.0001") == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("warning: the time budget ended training after 1 of 1000 planned "
                           "steps (0%) at ")
    assert "train on a quiet machine" in line and "a GPU (--device cuda)" in line

    config = tiny_snapshot(tmp_path, tiny_ks_dir)
    assert entry_point("grade.py", config, "--gt-boxes", "--images",
                       os.path.join(tiny_ks_dir, "ks_val.txt"), "--out", tmp_path / "graded",
                       "--reader", reader) == 0
    assert "warning: the reader: the time budget ended training after 1 of 1000" in \
        capsys.readouterr().out
    summary = json.loads((tmp_path / "graded" / "summary.json").read_text(encoding="utf-8"))
    assert summary["reader"]["short_of_plan"].startswith("the time budget ended training after 1")


def test_train_reader_refuses_a_snapshot_folder_another_run_holds(tiny_reader, tmp_path,
                                                                  entry_point, capsys):
    from nnet.run_lock import RunLock
    from reader.config import load_reader_config

    elsewhere = f"system.cache_dir={tmp_path / 'cache'}"
    cfg = load_reader_config(str(tiny_reader), overrides={"system": {"cache_dir":
                                                                     str(tmp_path / "cache")}})
    with RunLock(cfg.snapshot_dir, "system.cache_dir", say=lambda line: None):  # the other run
        assert entry_point("train_reader.py", tiny_reader, "--no-progress", "--max-iter", "1",
                           "--set", elsewhere) == 2
        err = capsys.readouterr().err
        assert f"{cfg.snapshot_dir} is in use by process {os.getpid()} on this host" in err
        assert os.listdir(cfg.snapshot_dir) == ["run.lock"]  # it wrote nothing
    assert entry_point("train_reader.py", tiny_reader, "--no-progress", "--max-iter", "1",
                       "--set", elsewhere) == 0


def test_the_real_crop_benchmark_reads_each_crop_as_grade_py_reads_a_box(tiny_reader, tmp_path,
                                                                          monkeypatch):
    """On crops drawn here (the real ones are for measuring only): a section
    with every row, the goals, and what was misread."""
    from bench import bench_real_crops, report

    folder = tmp_path / "crops"
    (folder / "images").mkdir(parents=True)
    labels = {"a.jpg": "12+7=19", "b.jpg": "53-6<49"}
    for name, label in labels.items():
        image = np.full((40, 200, 3), 250, np.uint8)
        cv2.putText(image, label, (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2)
        cv2.imwrite(str(folder / "images" / name), image)
    (folder / "labels.txt").write_text("".join(f"{n},{t}\n" for n, t in labels.items()),
                                       encoding="utf-8")
    monkeypatch.setattr(report, "BENCHMARKS_MD", str(tmp_path / "BENCHMARKS.md"))
    assert bench_real_crops.main(["--crops", str(folder), "--reader", str(tiny_reader),
                                  "--no-peer"]) == 0
    text = (tmp_path / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert "<!-- bench:real-crops -->" in text and "2 photographed problems of `crops`" in text
    for row in ("grade.py's reading", "the recognizer alone", "PP-OCR alone, our decoding",
                "rapidocr 1.4.4, the crop as one line"):
        assert row in text
    assert "Goals of issue 24 on these crops: printed part >= 90 %" in text
