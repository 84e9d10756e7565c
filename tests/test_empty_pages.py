"""Pages without objects are evaluated: on them every detection is a false
positive, counted from db.vis_threshold up and per page (test/evaluate.py).
A ks file whose pages all hold no objects says so with the line "# annotated"
(db/ks.py) and is evaluated; a file of image paths alone stays an image
list, results only."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from config import load_config
from db import load_db
from db.ks import ANNOTATED_MARK
from test.evaluate import evaluate, format_metrics

CATEGORIES = 6


def write_pages(folder, lines, header=""):
    """Pages a.png, b.png, c.png (120 x 100) and ks_val.txt with `lines`."""
    os.makedirs(folder, exist_ok=True)
    for name in ("a", "b", "c"):
        cv2.imwrite(os.path.join(folder, f"{name}.png"), np.full((100, 120, 3), 230, np.uint8))
    with open(os.path.join(folder, "ks_val.txt"), "w", encoding="utf-8") as f:
        f.write(header + "\n".join(lines) + "\n")
    return str(folder)


def config(data_dir):
    return load_config("CenterNet-tiny", check_data=False,
                       overrides={"system": {"data_dir": data_dir}, "db": {"vis_threshold": 0.1}})


def result(image_id, score, category_id=1, box=(10, 10, 30, 20)):
    return {"image_id": image_id, "category_id": category_id, "bbox": list(box), "score": score}


def test_detections_on_pages_without_objects_are_counted_as_false_positives(tmp_path):
    cfg = config(write_pages(tmp_path, ["a.png 10,10,40,30,0", "b.png", "c.png"]))
    db = load_db(cfg, "val")
    results = [result(1, 0.9), result(2, 0.5), result(2, 0.05), result(3, 0.2, category_id=4)]
    metrics = evaluate(results, db, cfg, [1, 2, 3])
    assert metrics["empty_pages"] == 2
    assert metrics["empty_page_false_positives"] == 2  # 0.05 is under vis_threshold
    assert metrics["empty_page_false_positives_per_page"] == 1.0
    assert metrics["false_positive_threshold"] == 0.1
    assert metrics["AP50"] == pytest.approx(1.0)  # the true box was found first
    assert "pages without objects: 2; detections on them scoring >= 0.1" in format_metrics(metrics)


def test_a_split_marked_annotated_with_no_objects_is_evaluated(tmp_path):
    cfg = config(write_pages(tmp_path, ["a.png", "b.png"], header=f"{ANNOTATED_MARK}\n"))
    db = load_db(cfg, "val")
    assert db.has_annotations
    metrics = evaluate([result(1, 0.3), result(2, 0.6), result(2, 0.01)], db, cfg, [1, 2])
    assert metrics["AP"] == -1 and metrics["AR100"] == -1  # undefined without ground truth
    assert set(metrics["per_category"].values()) == {None}
    assert (metrics["empty_pages"], metrics["empty_page_false_positives"]) == (2, 2)
    text = format_metrics(metrics)
    assert "no page holds an object" in text and "every one a false positive" in text


def two_boxes_per_page(net, prepared, cfg, device, timer, **options):
    """In place of the network and decoder: on every page one box scoring
    0.5 and one scoring 0.05 (x1, y1, x2, y2, score, class)."""
    return [np.array([[10, 10, 40, 30, 0.5, 0], [50, 50, 70, 60, 0.05, 1]], np.float32)
            for _ in prepared]


def test_test_py_evaluates_an_annotated_empty_split_and_not_an_image_list(
        tmp_path, tiny_snapshot, entry_point, capsys, monkeypatch):
    import test.run
    monkeypatch.setattr(test.run, "detect_images", two_boxes_per_page)
    marked = write_pages(tmp_path / "marked", ["a.png", "b.png", "c.png"],
                         header=f"{ANNOTATED_MARK}\n")
    config_path = tiny_snapshot(tmp_path / "marked", marked, vis_threshold=0.1)
    assert entry_point("test.py", config_path, "--testiter", "1", "--device", "cpu") == 0
    out = capsys.readouterr().out
    folder = tmp_path / "marked" / "results" / "Tiny-Snapshot" / "val_1"
    with open(folder / "metrics.json", encoding="utf-8") as f:
        metrics = json.load(f)
    with open(folder / "results.json", encoding="utf-8") as f:
        results = json.load(f)
    assert metrics["empty_pages"] == 3 and metrics["AP"] == -1
    assert len(results) == 6 and metrics["empty_page_false_positives"] == 3  # the 0.5 ones
    assert "detections on them scoring >= 0.1 (db.vis_threshold): 3 (1.00 per page)" in out

    plain = write_pages(tmp_path / "plain", ["a.png", "b.png", "c.png"])
    config_path = tiny_snapshot(tmp_path / "plain", plain)
    assert entry_point("test.py", config_path, "--testiter", "1", "--device", "cpu") == 0
    out = capsys.readouterr().out
    folder = tmp_path / "plain" / "results" / "Tiny-Snapshot" / "val_1"
    assert (folder / "results.json").is_file() and not (folder / "metrics.json").exists()
    assert "has no annotations" in out and f'add the line "{ANNOTATED_MARK}"' in out


@pytest.mark.parametrize("text, annotated", [
    ("# annotated\na.png\n", True), ("#Annotated by Li\na.png\n", True),
    ("a.png\n", False), ("# pages of Monday\na.png\n", False), ("a.png 1,1,9,9,0\n", True)])
def test_only_boxes_or_the_mark_make_a_file_annotated(tmp_path, text, annotated):
    write_pages(tmp_path, [])
    (tmp_path / "ks_val.txt").write_text(text, encoding="utf-8")
    assert load_db(config(str(tmp_path)), "val").has_annotations is annotated
