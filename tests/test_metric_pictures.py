"""Pictures of a run: training curves (nnet/plot.py, drawn by train.py when it
ends and by `python -m nnet.plot`), and test.py's precision-recall curves
(test/pr_curves.py) and confusion matrix (test/confusion.py), numbers in
metrics.json and PNGs beside it."""

import dataclasses
import json
import warnings

import cv2
import numpy as np
import pytest

from db import load_db
from nnet import plot
from test.confusion import confusion_matrix, format_confusion_matrix, match_image
from test.run import detect_split
from tests.conftest import (
    CATEGORIES,
    FakeNetwork,
    detection_config,
    perfect_maps,
    perfect_network,
    run_train,
    write_config,
)


def _picture(path):
    """The PNG at `path`, decoded; it must hold more than a blank canvas."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a readable PNG"
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20  # axes, text, curves
    return image


# ----------------------------------------------------------------------------
# training curves
# ----------------------------------------------------------------------------

def test_training_draws_its_curves_beside_the_snapshots(tmp_path, tiny_ks_dir):
    config = write_config(tmp_path, tiny_ks_dir, system={"max_iter": 2, "val_iter": 1})
    assert run_train(config) == 0
    folder = tmp_path / "cache" / "nnet" / "tiny"
    _picture(folder / plot.CURVES_FILE)
    entries = plot.read_log(str(folder / "log.jsonl"))
    iterations, values = plot.series(entries, "val_total")
    assert list(iterations) == [1, 2] and np.isfinite(values).all()


def _write_log(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line if isinstance(line, str) else json.dumps(line) + "\n")


def test_plot_command_draws_a_log_with_validation_ap(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lines = []
    for it in range(1, 41):
        entry = {"iteration": it, "total": 5 - it / 10 + rng.random(), "focal": 3.0, "pull": 0.1,
                 "push": 0.2, "regr": 1.0, "lr": 1e-4 if it < 30 else 1e-5, "images_per_s": 8.0}
        if it % 10 == 0:
            entry.update(val_total=4.0, val_focal=2.5, val_AP=it / 100, val_AP50=it / 50)
        lines.append(entry)
    lines.append({"iteration": 40, "event": "finished"})
    lines.append('{"iteration": 41, "total": 1.')  # cut short by a kill: skipped
    log = tmp_path / "log.jsonl"
    _write_log(log, lines)
    out = tmp_path / "pictures" / "curves.png"
    assert plot.main([str(log), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    _picture(out)
    entries = plot.read_log(str(log))
    assert [e["iteration"] for e in entries] == list(range(1, 41))
    assert list(plot.series(entries, "val_AP")[0]) == [10, 20, 30, 40]


def test_plot_command_refuses_a_missing_or_empty_log(tmp_path, capsys):
    assert plot.main([str(tmp_path / "none.jsonl")]) == 2  # as db.ks's: it did not start
    assert "no such file" in capsys.readouterr().err
    empty = tmp_path / "log.jsonl"
    _write_log(empty, [{"iteration": 3, "event": "finished"}])
    assert plot.main([str(empty)]) == 1
    assert "no training iterations" in capsys.readouterr().err


def test_a_one_iteration_log_draws_without_warnings(tmp_path):
    # one learning rate just under a power of ten (1e-4 as the schedule computes
    # it) gave a log axis of no height, and matplotlib a "singular" warning
    log = tmp_path / "log.jsonl"
    _write_log(log, [{"iteration": 1, "total": 9.7, "focal": 5.8, "pull": 0.004, "push": 0.09,
                      "regr": 1.2, "lr": 9.999999999999999e-05, "images_per_s": 20.3}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _picture(plot.plot_log(str(log), str(tmp_path / "curves.png")))


def test_moving_average_is_the_mean_of_the_last_window():
    values = np.array([4.0, 2.0, 6.0, 8.0, 0.0])
    expected = [np.mean(values[max(0, i - 2):i + 1]) for i in range(len(values))]
    np.testing.assert_allclose(plot.moving_average(values, 3), expected)
    np.testing.assert_array_equal(plot.moving_average(values, 1), values)


# ----------------------------------------------------------------------------
# confusion matrix and precision-recall curves
# ----------------------------------------------------------------------------

def _detection(box, score, cls):
    return [*box, score, cls]


def test_matching_is_one_to_one_best_overlap_first():
    truth = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], np.float64)
    classes = [0, 1, 2]
    detections = np.array([
        _detection([0, 0, 10, 10], 0.5, 1),      # box 0, exact, detected as class 1
        _detection([0, 0, 10, 11], 0.9, 0),      # box 0 again, less overlap: background
        _detection([21, 0, 30, 10], 0.8, 1),     # box 1, right class
        _detection([60, 0, 70, 10], 0.7, 2),     # on nothing: background
        _detection([40, 0, 44, 10], 0.9, 2),     # box 2 at IoU 0.4: too little; box 2 missed
    ])
    counts = match_image(truth, classes, detections, categories=3)
    expected = np.zeros((4, 4), np.int64)
    expected[0, 1] = 1          # add detected as sub
    expected[1, 1] = 1
    expected[2, 3] = 1          # missed
    expected[3, 0] += 1         # the worse duplicate of box 0
    expected[3, 2] += 2         # the box on nothing and the one at IoU 0.4
    np.testing.assert_array_equal(counts, expected)
    # equal overlaps: the better score is matched
    tie = np.array([_detection([0, 0, 10, 10], 0.3, 2), _detection([0, 0, 10, 10], 0.6, 0)])
    assert match_image(truth[:1], [0], tie, categories=3)[0].tolist() == [1, 0, 0, 0]


def test_detections_under_the_score_threshold_do_not_count(tmp_path, pages_dir):
    db = load_db(detection_config(pages_dir, tmp_path), "val")
    record = db.records[0]
    weak = np.array([[*box, 0.05, cls] for box, cls in zip(record.boxes.tolist(),
                                                            record.classes.tolist())])
    table = confusion_matrix([record], {record.image_id: weak}, db.category_names, 0.1)
    counts = np.array(table["counts"])
    assert counts[:-1, -1].sum() == record.num_objects and counts.sum() == record.num_objects
    assert table["true"][-1] == "background" and table["predicted"][-1] == "missed"
    assert "missed" in format_confusion_matrix(table)


def test_a_perfect_network_fills_the_diagonal_and_draws_flat_pr_curves(tmp_path, pages_dir):
    cfg = detection_config(pages_dir, tmp_path)
    db = load_db(cfg, "val")
    out_dir = tmp_path / "out"
    run = detect_split(perfect_network(db.records, cfg), cfg, db, "cpu", str(out_dir))
    with open(out_dir / "metrics.json", encoding="utf-8") as f:
        written = json.load(f)
    counts = np.array(written["confusion_matrix"]["counts"])
    truth = np.bincount(np.concatenate([r.classes for r in db.records]), minlength=CATEGORIES)
    np.testing.assert_array_equal(np.diag(counts)[:CATEGORIES], truth)
    assert counts[:CATEGORIES, CATEGORIES].sum() == 0  # nothing missed
    curves = written["pr_curves"]
    assert curves["iou"] == 0.5 and len(curves["recall"]) == 101
    for name, precision in curves["precision"].items():
        assert min(precision) == 1.0
        assert np.mean(precision) == pytest.approx(written["per_category_AP50"][name])
    assert run.metrics["confusion_matrix"] == written["confusion_matrix"]
    _picture(out_dir / "confusion_matrix.png")
    _picture(out_dir / "pr_curves.png")


def test_a_network_that_calls_add_sub_shows_it_in_the_matrix(tmp_path, pages_dir):
    cfg = detection_config(pages_dir, tmp_path)
    db = load_db(cfg, "val")
    add, sub = db.category_names.index("add"), db.category_names.index("sub")

    def confused(record, scale, flipped):
        classes = np.where(record.classes == add, sub, record.classes)
        return perfect_maps(dataclasses.replace(record, classes=classes), scale, CATEGORIES,
                            flipped)

    out_dir = tmp_path / "out"
    run = detect_split(FakeNetwork(db.records, cfg, confused), cfg, db, "cpu", str(out_dir))
    counts = np.array(run.metrics["confusion_matrix"]["counts"])
    adds = sum(int((r.classes == add).sum()) for r in db.records)
    assert adds > 0
    assert counts[add, sub] == adds and counts[add, add] == 0
    assert run.metrics["pr_curves"]["precision"]["add"] == [0.0] * 101
