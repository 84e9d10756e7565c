"""The test-time pipeline (test/): a network that finds every object exactly
gives AP 1 through padding, decoding, flip, scales, the centre check, NMS and
COCOeval; the edge cases (nothing found, no annotations, dense pages, scales
without 1) work; test.py and demo.py run end to end on a real snapshot."""

import json
import os
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
import torch

from config import PROJECT_ROOT, load_config
from db import load_db
from test import merge as merge_module
from test.center_check import center_check
from test.evaluate import (
    coco_results,
    evaluate,
    format_metrics,
    max_dets_for,
    run_cocoeval,
    summarize,
)
from test.kp_detection import batch_inputs, prepare_image
from test.run import DetectionWarning, detect_split, run_test
from tests.conftest import (
    CATEGORIES,
    PAGES,
    FakeNetwork,
    blank_maps,
    detection_config,
    input_geometry,
    perfect_maps,
    perfect_network,
    write_pages,
)


def _test(cfg, net, tmp_path, split="val"):
    db = load_db(cfg, split)
    return db, detect_split(net, cfg, db, "cpu", str(tmp_path / "out"))


# ----------------------------------------------------------------------------
# preparation
# ----------------------------------------------------------------------------

def test_prepare_image_centres_the_resized_image_on_a_127_mod_128_input(tmp_path, pages_dir):
    cfg = detection_config(pages_dir, tmp_path, test_scales=[1, 0.7])
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (100, 130, 3), dtype=np.uint8)
    mean = np.array(cfg.db.mean, np.float32)[:, None, None]
    std = np.array(cfg.db.std, np.float32)[:, None, None]
    for scaled, scale in zip(prepare_image(image, cfg), cfg.db.test_scales):
        (new_h, new_w), (input_h, input_w), (top, left), _ = input_geometry(100, 130, scale)
        assert scaled.images.shape == (2, 3, input_h, input_w)
        assert input_h % 128 == 127 and input_w % 128 == 127
        # shrinking averages areas (a 12-megapixel photo keeps its thin strokes)
        resized = image if scale == 1 else cv2.resize(image, (new_w, new_h),
                                                      interpolation=cv2.INTER_AREA)
        expected = (resized.transpose(2, 0, 1) / 255.0 - mean) / std
        batch = scaled.images.numpy()
        np.testing.assert_allclose(batch[0, :, top:top + new_h, left:left + new_w], expected,
                                   atol=1e-5)
        padding = batch[0].copy()
        padding[:, top:top + new_h, left:left + new_w] = np.nan
        black = np.broadcast_to(-mean / std, padding.shape)
        np.testing.assert_allclose(padding[~np.isnan(padding)], black[~np.isnan(padding)], atol=1e-6)
        np.testing.assert_array_equal(batch[1], batch[0, :, :, ::-1])


# ----------------------------------------------------------------------------
# the whole pipeline on exact network outputs
# ----------------------------------------------------------------------------

def test_a_perfect_network_scores_ap_1(tmp_path, pages_dir):
    cfg = detection_config(pages_dir, tmp_path)
    db = load_db(cfg, "val")
    out_dir = str(tmp_path / "out")
    metrics = run_test(perfect_network(db.records, cfg), cfg, db, "cpu", out_dir)
    assert metrics["AP"] >= 0.99 and metrics["AP50"] >= 0.99
    with open(os.path.join(out_dir, "metrics.json"), encoding="utf-8") as f:
        written = json.load(f)
    for key in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100",
                "per_category", "max_dets", "num_images", "num_detections"):
        assert key in written, key
    assert set(written["per_category"]) == set(cfg.db.category_names)
    assert all(ap >= 0.99 for ap in written["per_category"].values())
    assert written["num_images"] == len(PAGES)
    with open(os.path.join(out_dir, "results.json"), encoding="utf-8") as f:
        results = json.load(f)
    assert {r["category_id"] for r in results} == set(db.category_ids)
    # every true box is found, at its place, with a top score
    for record in db.records:
        found = [r for r in results if r["image_id"] == record.image_id and r["score"] > 0.9]
        assert len(found) == record.num_objects
        found_boxes = np.array([r["bbox"] for r in found])
        for box in record.boxes:
            xywh = [box[0], box[1], box[2] - box[0], box[3] - box[1]]
            assert np.abs(found_boxes - xywh).max(axis=1).min() < 0.05


@pytest.mark.parametrize("mode", ["per-class corners (CenterNet-52)", "boxes named and sized"])
def test_a_perfect_network_scores_ap_1_in_every_class_mode(tmp_path, pages_dir, mode):
    if mode.startswith("per-class"):
        cfg = load_config("CenterNet-52", overrides={
            "system": {"data_dir": str(pages_dir), "cache_dir": str(tmp_path / "cache"),
                       "result_dir": str(tmp_path / "results")},
            "db": {"top_k": 40, "num_dets": 400, "test_scales": [1, 0.5],
                   "test_scale_mode": "pixels"}})
        assert not cfg.db.class_agnostic_corners and cfg.db.classes_from == "centers"
        options = {}
    else:
        cfg = detection_config(pages_dir, tmp_path, classes_from="boxes", center_size=True,
                       test_scales=[1, 0.5])
        options = {"named_boxes": True}
    db = load_db(cfg, "val")
    net = perfect_network(db.records, cfg, **options)
    _, run = _test(cfg, net, tmp_path)
    assert run.metrics["AP"] >= 0.99, run.metrics
    for record in db.records:
        found = run.detections[record.image_id]
        best = found[found[:, 4] > 0.9]
        # each object once, at its place, under its own class
        assert len(best) == record.num_objects
        for box, cls in zip(record.boxes, record.classes):
            match = np.abs(best[:, :4] - box).max(axis=1) < 1.5
            assert match.sum() == 1 and best[match, 5][0] == cls


def test_the_size_check_refuses_a_box_the_centre_does_not_support(tmp_path, pages_dir):
    cfg = detection_config(pages_dir, tmp_path, classes_from="boxes", center_size=True,
                   size_tolerance=1.5)
    # two problems one above the other, and a box made of the first one's
    # top-left corner and the second one's bottom-right: its central region
    # holds a centre (placed there on purpose) but of a problem half its height
    detections = np.array([[10, 10, 70, 90, 0.5, 0.5, 0.5, 0]], np.float32)
    fitting_centre = np.array([[40, 50, 0, 0.9, 60, 80]], np.float32)
    small_centre = np.array([[40, 50, 0, 0.9, 60, 20]], np.float32)
    assert len(center_check(detections, fitting_centre, cfg)) == 1
    assert len(center_check(detections, small_centre, cfg)) == 0
    without = detection_config(pages_dir, tmp_path, classes_from="boxes", center_size=False)
    assert len(center_check(detections, small_centre[:, :4], without)) == 1


def test_images_of_one_call_lie_top_left_in_an_input_as_large_as_the_largest(tmp_path, pages_dir):
    cfg = detection_config(pages_dir, tmp_path, test_scales=[1, 0.6])
    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 256, shape, dtype=np.uint8)
                for shape in ((100, 300, 3), (200, 130, 3), (60, 60, 3))]
    prepared = [prepare_image(picture, cfg) for picture in pictures]
    black = -np.array(cfg.db.mean, np.float32) / np.array(cfg.db.std, np.float32)
    for s in range(len(cfg.db.test_scales)):
        images, placed = batch_inputs([p[s] for p in prepared], cfg)
        height = max(p[s].input_size[0] for p in prepared)
        width = max(p[s].input_size[1] for p in prepared)
        assert images.shape == (2 * len(pictures), 3, height, width)
        for i, (own, where) in enumerate(zip(prepared, placed)):
            rows = images[2 * i:2 * i + 2].numpy()
            own_h, own_w = own[s].input_size
            np.testing.assert_array_equal(rows[0, :, :own_h, :own_w], own[s].images[0].numpy())
            outside = rows[0].copy()
            outside[:, :own_h, :own_w] = np.nan
            for c in range(3):
                values = outside[c][~np.isnan(outside[c])]
                np.testing.assert_allclose(values, black[c], atol=1e-6)
            np.testing.assert_array_equal(rows[1], rows[0, :, :, ::-1])
            # the mapping back keeps the image's place, in the larger input
            assert where.offset == own[s].offset and where.resized_size == own[s].resized_size
            assert where.input_size == (height, width)


@pytest.mark.parametrize("per_call", [2, 3])
def test_several_images_per_network_call_keep_every_box(tmp_path, pages_dir, per_call):
    cfg = detection_config(pages_dir, tmp_path, test_scales=[0.5, 1], test_batch_images=per_call)
    db = load_db(cfg, "val")
    net = perfect_network(db.records, cfg)
    _, run = _test(cfg, net, tmp_path)
    assert net.asked == len(net.calls) == -(-len(PAGES) // per_call) * 2
    assert run.metrics["AP"] >= 0.99, run.metrics
    assert run.timer.images == len(PAGES)
    for record in db.records:
        found = run.detections[record.image_id]
        found = found[found[:, 4] > 0.9]
        assert len(found) == record.num_objects
        # test/ maps a heatmap back with the input / heatmap ratio of the larger
        # input (the original's convention), the fake network places the maps at
        # an exact stride of 4: they differ by up to a pixel at scale 0.5
        for box in record.boxes:
            assert np.abs(found[:, :4] - box).max(axis=1).min() < 1.5


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    """Synthetic 口算 pages (db/synth.py): three small pages and one of 160 problems."""
    from db.synth import generate
    folder = str(tmp_path_factory.mktemp("synth"))
    quiet = lambda message: None  # noqa: E731
    generate(folder, counts={"val": 3}, seed=3, workers=1, small=True, log=quiet)
    generate(os.path.join(folder, "dense"), counts={"val": 1}, seed=3, workers=1,
             num_problems=160, log=quiet)
    return folder


@pytest.mark.parametrize("dense", [False, True])
def test_a_perfect_network_scores_ap_1_on_synthetic_pages(tmp_path, synthetic_dir, dense):
    data_dir = os.path.join(synthetic_dir, "dense") if dense else synthetic_dir
    cfg = detection_config(data_dir, tmp_path, top_k=200, num_dets=1000, max_per_image=300)
    db = load_db(cfg, "val")
    assert db.object_counts().max() == 160 if dense else db.object_counts().min() >= 8
    metrics = run_test(perfect_network(db.records, cfg), cfg, db, "cpu", str(tmp_path / "out"))
    assert metrics["AP"] >= 0.99 and metrics["max_dets"] == 300, metrics


def test_the_flipped_half_gives_the_same_boxes_as_the_unflipped(tmp_path, pages_dir):
    plain_cfg = detection_config(pages_dir, tmp_path, test_flip=False)
    db, plain = _test(plain_cfg, perfect_network(load_db(plain_cfg, "val").records, plain_cfg),
                      tmp_path / "plain")

    # only the mirrored half sees anything: every box comes through the un-flip
    def mirrored_only(record, scale, flipped):
        return perfect_maps(record, scale, CATEGORIES, flipped) if flipped else \
            blank_maps(record, scale, flipped)

    flip_cfg = detection_config(pages_dir, tmp_path, test_flip=True)
    _, mirrored = _test(flip_cfg, FakeNetwork(db.records, flip_cfg, mirrored_only),
                        tmp_path / "mirrored")
    for image_id, expected in plain.detections.items():
        got = mirrored.detections[image_id]
        assert len(expected) == len(got) == db.record(image_id).num_objects
        order_e, order_g = np.lexsort(expected[:, :2].T), np.lexsort(got[:, :2].T)
        np.testing.assert_allclose(got[order_g], expected[order_e], atol=1e-3)


@pytest.mark.parametrize("scales", [[0.5], [0.5, 0.75], [1, 1.5]])
def test_test_scales_without_or_beside_1_keep_full_ap(tmp_path, pages_dir, scales):
    cfg = detection_config(pages_dir, tmp_path, test_scales=scales)
    db, run = _test(cfg, perfect_network(load_db(cfg, "val").records, cfg), tmp_path)
    assert run.metrics["AP"] >= 0.99, run.metrics


def test_centres_of_one_scale_confirm_the_boxes_of_another(tmp_path, pages_dir):
    cfg = detection_config(pages_dir, tmp_path, test_scales=[0.5, 0.75])

    def split_evidence(record, scale, flipped):  # corners at 0.5 only, centres at 0.75 only
        return perfect_maps(record, scale, CATEGORIES, flipped, corners=scale == 0.5,
                            centres=scale == 0.75)

    db = load_db(cfg, "val")
    _, run = _test(cfg, FakeNetwork(db.records, cfg, split_evidence), tmp_path)
    assert run.metrics["AP"] >= 0.99, run.metrics


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_the_gpu_the_boxes_equal_the_cpu_boxes(tmp_path, pages_dir):
    cfg = detection_config(pages_dir, tmp_path, test_scales=[0.75, 1])
    records = load_db(cfg, "val").records
    _, on_cpu = _test(cfg, perfect_network(records, cfg), tmp_path / "cpu")
    db = load_db(cfg, "val")
    on_gpu = detect_split(perfect_network(records, cfg), cfg, db, "cuda", str(tmp_path / "gpu"))
    assert on_gpu.metrics["AP"] >= 0.99
    for image_id, expected in on_cpu.detections.items():
        got = on_gpu.detections[image_id]
        assert got.shape == expected.shape
        # equal scores may come in another order: compare the sorted rows
        order_e, order_g = np.lexsort(expected[:, [5, 1, 0]].T), np.lexsort(got[:, [5, 1, 0]].T)
        np.testing.assert_allclose(got[order_g], expected[order_e], atol=1e-3)


def test_a_network_that_finds_nothing_gives_zeros_and_a_warning(tmp_path, pages_dir):
    cfg = detection_config(pages_dir, tmp_path)
    db = load_db(cfg, "val")
    with pytest.warns(DetectionWarning, match="no detections"):
        run = detect_split(FakeNetwork(db.records, cfg, blank_maps), cfg, db, "cpu",
                         str(tmp_path / "out"))
    assert run.num_detections == 0
    assert all(d.shape == (0, 6) for d in run.detections.values())
    with open(tmp_path / "out" / "metrics.json", encoding="utf-8") as f:
        metrics = json.load(f)
    assert metrics["AP"] == metrics["AR100"] == 0.0 and metrics["num_detections"] == 0
    assert set(metrics["per_category"].values()) == {0.0}
    assert "0.000" in format_metrics(metrics)


def test_a_split_without_annotations_writes_results_only(tmp_path):
    data_dir = write_pages(str(tmp_path / "data"), PAGES[:2], split="test", with_boxes=False)
    cfg = detection_config(data_dir, tmp_path)
    db = load_db(cfg, "test")
    assert not db.has_annotations
    out_dir = tmp_path / "out"
    # a network finding the planted boxes of the annotated copy of these pages
    annotated = load_db(detection_config(write_pages(str(tmp_path / "annotated"), PAGES[:2]), tmp_path),
                        "val")
    net = FakeNetwork(annotated.records, cfg, lambda r, s, f: perfect_maps(r, s, CATEGORIES, f))
    metrics = run_test(net, cfg, db, "cpu", str(out_dir))
    assert metrics is None
    assert (out_dir / "results.json").is_file() and not (out_dir / "metrics.json").exists()
    with open(out_dir / "results.json", encoding="utf-8") as f:
        results = json.load(f)
    assert len([r for r in results if r["score"] > 0.9]) == sum(len(p[2]) for p in PAGES[:2])


def test_pages_denser_than_top_k_are_named_once(tmp_path, pages_dir):
    cfg = detection_config(pages_dir, tmp_path, top_k=4, num_dets=16)
    db = load_db(cfg, "val")
    with pytest.warns(DetectionWarning, match=r"6 objects but db.top_k is 4") as caught:
        detect_split(perfect_network(db.records, cfg), cfg, db, "cpu", str(tmp_path / "out"))
    assert len([w for w in caught if issubclass(w.category, DetectionWarning)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", DetectionWarning)
        enough = detection_config(pages_dir, tmp_path, top_k=6, num_dets=36)
        detect_split(perfect_network(db.records, enough), enough, db, "cpu", str(tmp_path / "o2"))


@pytest.mark.parametrize("merge_bbox", [True, False])
def test_the_config_selects_the_suppression(tmp_path, pages_dir, monkeypatch, merge_bbox):
    cfg = detection_config(pages_dir, tmp_path, merge_bbox=merge_bbox, nms_algorithm="linear_soft_nms",
                   nms_threshold=0.3, weight_exp=7, test_flip=False)
    calls = []
    for name in ("soft_nms", "soft_nms_merge"):
        real = getattr(merge_module.external_nms, name)

        def spy(boxes, *args, _name=name, _real=real, **kwargs):
            calls.append((_name, kwargs))
            return _real(boxes, *args, **kwargs)
        monkeypatch.setattr(merge_module.external_nms, name, spy)
    db, run = _test(cfg, perfect_network(load_db(cfg, "val").records, cfg), tmp_path)
    assert calls and {c[0] for c in calls} == {"soft_nms_merge" if merge_bbox else "soft_nms"}
    for _, kwargs in calls:
        assert kwargs["Nt"] == 0.3 and kwargs["method"] == "linear_soft_nms"
        assert kwargs["threshold"] == cfg.db.score_threshold
        assert kwargs.get("weight_exp", 7) == 7
    assert run.metrics["AP"] >= 0.99


def test_max_per_image_keeps_the_best_of_all_classes(tmp_path, pages_dir):
    cfg = detection_config(pages_dir, tmp_path, max_per_image=3)
    db, run = _test(cfg, perfect_network(load_db(cfg, "val").records, cfg), tmp_path)
    for detections in run.detections.values():
        assert len(detections) == 3
        assert np.all(np.diff(detections[:, 4]) <= 0)


# ----------------------------------------------------------------------------
# the centre check
# ----------------------------------------------------------------------------

def _detection(x1, y1, x2, y2, tl, br, cls):
    return [x1, y1, x2, y2, (tl + br) / 2, tl, br, cls]


def test_centre_check_keeps_boxes_with_a_centre_strictly_inside_the_middle_third(tmp_path):
    cfg = load_config("CenterNet-tiny", check_data=False,
                      overrides={"db": {"class_agnostic_corners": False, "classes_from": "centers",
                                        "center_size": False}})
    detections = np.array([_detection(0, 0, 90, 30, 0.8, 0.6, 2)] * 5
                          + [_detection(0, 0, 90, 30, -1, -1, 2)], np.float32)
    detections[5, 4] = -1  # a rejected pair never comes back
    centres = np.array([[45, 15, 2, 0.5],    # box 0..4 all could match this
                        [30, 15, 2, 0.9],    # on the edge of the middle third: not inside
                        [45, 15, 1, 0.95],   # another class
                        [50, 12, 2, 0.7]],   # inside and the best of its class
                       np.float32)
    kept = center_check(detections, centres, cfg)
    assert len(kept) == 5
    np.testing.assert_allclose(kept[:, 4], (0.8 + 0.6 + 0.7) / 3, rtol=1e-6)
    assert center_check(detections, centres[1:3], cfg).shape == (0, 8)
    assert center_check(detections, np.zeros((0, 4), np.float32), cfg).shape == (0, 8)
    assert center_check(np.zeros((0, 8), np.float32), centres, cfg).shape == (0, 8)


def test_centre_check_uses_the_middle_fifth_of_large_boxes(tmp_path):
    cfg = load_config("CenterNet-tiny", check_data=False, overrides={"db": {"center_size": False}})
    side = np.sqrt(cfg.db.center_region_area) * 2  # area 4x the limit: large
    detections = np.array([_detection(0, 0, side, side, 0.9, 0.9, 0)], np.float32)
    third = [[side * 0.35, side / 2, 0, 0.9]]   # inside the middle third, outside the middle fifth
    fifth = [[side * 0.45, side / 2, 0, 0.9]]
    assert len(center_check(detections, np.array(third, np.float32), cfg)) == 0
    assert len(center_check(detections, np.array(fifth, np.float32), cfg)) == 1
    small = detections.copy()
    small[0, 2:4] = side / 4  # area a quarter of the limit: small, middle third
    assert len(center_check(small, np.array([[side / 4 * 0.35, side / 8, 0, 0.9]], np.float32),
                            cfg)) == 1


def test_centre_check_gives_the_same_boxes_whatever_it_holds_in_memory_at_once(monkeypatch):
    import test.center_check as module

    # a page's worth of boxes and centres, some centres sharing an x: the check
    # visits (box, centre) pairs in chunks; the chunk size must not matter
    cfg = load_config("CenterNet-tiny", check_data=False)
    rng = np.random.default_rng(3)
    x1, y1 = rng.uniform(0, 600, 400), rng.uniform(0, 800, 400)
    w, h = rng.uniform(20, 200, 400), rng.uniform(10, 40, 400)
    detections = np.stack([x1, y1, x1 + w, y1 + h, rng.uniform(0, 1, 400), rng.uniform(0, 1, 400),
                           rng.uniform(0, 1, 400), np.zeros(400)], 1).astype(np.float32)
    centres = np.stack([np.round(rng.uniform(0, 800, 150) / 20) * 20, rng.uniform(0, 850, 150),
                        np.zeros(150), rng.uniform(0, 1, 150), rng.uniform(20, 200, 150),
                        rng.uniform(10, 40, 150)], 1).astype(np.float32)
    whole = center_check(detections, centres, cfg)
    assert 0 < len(whole) < len(detections)
    monkeypatch.setattr(module, "_MAX_PAIRS", 7)
    np.testing.assert_array_equal(center_check(detections, centres, cfg), whole)


def test_class_agnostic_corners_take_each_class_of_the_centres(tmp_path):
    cfg = load_config("CenterNet-tiny", check_data=False,
                      overrides={"db": {"class_agnostic_corners": True, "classes_from": "centers",
                                        "center_size": False}})
    detections = np.array([_detection(0, 0, 90, 30, 0.8, 0.6, 0),
                           _detection(200, 0, 290, 30, 0.9, 0.9, 0)], np.float32)
    # two centres of class 3 and one of class 4 inside the first box; one
    # centre of class 3 outside its central region; none in the second box
    centres = np.array([[45, 15, 4, 0.6], [46, 15, 3, 0.7], [44, 14, 3, 0.5],
                        [5, 15, 3, 0.99]], np.float32)
    kept = center_check(detections, centres, cfg)
    kept = kept[np.argsort(kept[:, 7])]
    assert kept[:, 7].tolist() == [3, 4]
    np.testing.assert_allclose(kept[:, :4], detections[[0, 0], :4])
    np.testing.assert_allclose(kept[:, 4], [(0.8 + 0.6 + 0.7) / 3, (0.8 + 0.6 + 0.6) / 3], rtol=1e-6)


# ----------------------------------------------------------------------------
# COCO evaluation
# ----------------------------------------------------------------------------

def _dense_db(objects, categories=CATEGORIES):
    """One 800x800 page holding `objects` 30x20 boxes on a grid, classes in turn."""
    from db import DetectionDB, ImageRecord
    boxes = [(40 * (i % 20), 40 * (i // 20), 40 * (i % 20) + 30, 40 * (i // 20) + 20)
             for i in range(objects)]
    record = ImageRecord(image_id=1, path="/nowhere/page.jpg", width=800, height=800,
                         boxes=boxes, classes=[i % categories for i in range(objects)])
    names = [f"c{i}" for i in range(CATEGORIES)]
    return DetectionDB([record], names, list(range(1, CATEGORIES + 1)), True, "dense.txt")


def _noisy_detections(db, rng):
    record = db.records[0]
    boxes = record.boxes + rng.normal(0, 2.0, record.boxes.shape)
    scores = rng.uniform(0.2, 1.0, len(boxes))
    classes = np.where(rng.uniform(size=len(boxes)) < 0.2, (record.classes + 1) % CATEGORIES,
                       record.classes)
    return {1: np.column_stack([boxes, scores, classes]).astype(np.float32)}


def test_our_summary_equals_cocoeval_summarize_at_100_detections(capsys):
    db = _dense_db(60)
    results = coco_results(_noisy_detections(db, np.random.default_rng(1)), db.category_ids)
    coco_eval = run_cocoeval(db.coco_gt(), results, [1], [1, 10, 100])
    coco_eval.summarize()
    ours = summarize(coco_eval)
    keys = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100"]
    np.testing.assert_allclose([ours[k] for k in keys], coco_eval.stats[:9], rtol=1e-12)


def test_dense_pages_are_scored_at_max_per_image_detections(tmp_path):
    # COCOeval's maxDets limits detections per image *and category*: one
    # category holds all 150 objects of this page
    db = _dense_db(150, categories=1)
    record = db.records[0]
    exact = {1: np.column_stack([record.boxes, np.linspace(1, 0.5, 150),
                                 record.classes]).astype(np.float32)}
    results = coco_results(exact, db.category_ids)
    cfg = load_config("CenterNet-tiny", check_data=False, overrides={
        "db": {"max_per_image": 300, "categories": CATEGORIES,
               "category_names": db.category_names}})
    assert max_dets_for(cfg) == [1, 10, 100, 300]
    metrics = evaluate(results, db, cfg, [1])
    assert metrics["max_dets"] == 300 and metrics["num_detections"] == 150
    assert metrics["AP"] > 0.99 and metrics["AP50"] > 0.99
    assert metrics["per_category"]["c0"] > 0.99
    assert all(ap is None for name, ap in metrics["per_category"].items() if name != "c0")
    assert metrics["AR100"] < 0.7  # what COCO's 100 detections would have seen
    at_100 = evaluate(results, db, load_config("CenterNet-tiny", check_data=False, overrides={
        "db": {"max_per_image": 100}}), [1])
    assert at_100["max_dets"] == 100 and at_100["AP"] < 0.7


# ----------------------------------------------------------------------------
# pictures
# ----------------------------------------------------------------------------

def test_colours_are_distinct_for_any_category_count():
    from test.visualize import category_colors
    for n in (1, 6, 80):
        colors = category_colors(n)
        assert len(colors) == n == len(set(colors))
        assert colors == category_colors(n)


def test_pictures_are_written_under_non_ascii_names(tmp_path):
    from test.visualize import render, write_picture
    cfg = load_config("CenterNet-tiny", check_data=False)
    image = np.full((120, 160, 3), 255, np.uint8)
    detections = np.array([[10, 10, 80, 40, 0.9, 1], [20, 60, 150, 110, 0.05, 2]], np.float32)
    picture = render(image, detections, cfg, gt_boxes=np.array([[12, 12, 78, 38]], np.float32))
    assert (picture != 255).any(axis=2)[10:41, 10:81].any()
    # the low-scoring box is below db.vis_threshold: not drawn
    assert not (picture != 255).any(axis=2)[85:100, 30:140].any()
    path = tmp_path / "口算_页.jpg"
    write_picture(str(path), picture)
    assert cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR).shape == image.shape


def test_a_place_reported_under_several_categories_is_drawn_once():
    from test.visualize import category_colors, draw_detections, one_per_place
    detections = np.array([[10, 10, 80, 30, 0.4, 2], [10, 10, 80, 30, 0.9, 1],
                           [11, 11, 81, 31, 0.5, 3], [10, 60, 80, 80, 0.3, 4]], np.float32)
    kept = one_per_place(detections, threshold=0.1)
    assert kept[:, 5].tolist() == [1, 4] and kept[:, 4].tolist() == pytest.approx([0.9, 0.3])
    picture = np.full((100, 100, 3), 255, np.uint8)
    names = ["add", "sub", "mul", "div", "compare", "fill"]
    assert draw_detections(picture, detections, names, category_colors(6), 0.1) == 2
    colours = {tuple(c) for c in picture.reshape(-1, 3).tolist()}
    assert tuple(category_colors(6)[1]) in colours and tuple(category_colors(6)[2]) not in colours


# ----------------------------------------------------------------------------
# test.py and demo.py end to end, on a snapshot of the tiny network
# ----------------------------------------------------------------------------

def _run(script, *args):
    return subprocess.run([sys.executable, os.path.join(PROJECT_ROOT, script), *args],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)


def test_test_py_end_to_end_with_debug_pictures(snapshot_config):
    cfg = snapshot_config
    done = _run("test.py", cfg.path, "--testiter", "7", "--debug", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    out_dir = os.path.join(cfg.result_dir, "val_7")
    for name in ("results.json", "metrics.json"):
        assert os.path.isfile(os.path.join(out_dir, name))
    pictures = os.listdir(os.path.join(out_dir, "debug"))
    assert len(pictures) == len(PAGES) and all(p.endswith(".jpg") for p in pictures)
    assert "AP50" in done.stdout and "network" in done.stdout  # metrics and stage times
    for name in cfg.db.category_names:
        assert name in done.stdout
    # the results say what produced them
    with open(os.path.join(out_dir, "metrics.json"), encoding="utf-8") as f:
        produced_by = json.load(f)["produced_by"]
    assert produced_by["iteration"] == 7 and produced_by["snapshot"].endswith("Tiny-Test_7.pkl")
    assert produced_by["planned_iterations"] == cfg.system.max_iter


def test_test_py_names_the_iterations_that_exist(snapshot_config):
    done = _run("test.py", snapshot_config.path, "--testiter", "123", "--device", "cpu")
    assert done.returncode != 0
    assert "iterations with a snapshot: 7" in done.stderr


def test_demo_py_on_a_folder_writes_a_picture_and_json_per_image(snapshot_config, pages_dir,
                                                                 tmp_path):
    out = tmp_path / "demo"
    done = _run("demo.py", snapshot_config.path, "--testiter", "latest", "--images", pages_dir,
                "--out", str(out), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    for i in range(len(PAGES)):
        assert (out / f"页_{i}.jpg").is_file()
        with open(out / f"页_{i}.json", encoding="utf-8") as f:
            written = json.load(f)
        assert written["width"] == PAGES[i][0] and written["height"] == PAGES[i][1]
        for detection in written["detections"]:
            assert detection["name"] == snapshot_config.db.category_names[detection["class"]]
            assert len(detection["box"]) == 4 and 0 <= detection["score"] <= 1


def test_demo_finds_the_images_of_a_file_a_folder_and_a_ks_list(tmp_path, pages_dir):
    import demo
    names = sorted(n for n in os.listdir(pages_dir) if n.endswith(".jpg"))
    assert demo.image_paths(pages_dir)[0] == [os.path.join(pages_dir, n) for n in names]
    single = os.path.join(pages_dir, names[0])
    assert demo.image_paths(single) == ([single], [])
    listing = tmp_path / "ks_demo.txt"
    listing.write_text("\ufeff# pictures\r\n\r\n" + f"{single} 1,2,30,40,0\r\n"
                       + f"{os.path.relpath(single, tmp_path)}\r\n", encoding="utf-8")
    assert [os.path.normpath(p) for p in demo.image_paths(str(listing))[0]] == [single, single]
    assert demo.unique_stems([single, single, "/x/other.png"]) == ["页_0", "页_0_2", "other"]
    with pytest.raises(ValueError, match="no such file"):
        demo.image_paths(str(tmp_path / "missing"))
