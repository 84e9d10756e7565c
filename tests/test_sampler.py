"""Tests of the training sampler (sample/): the targets of kp_detection (peaks,
offsets, tags, mask, gaussian radius, flips, the validation crop) and the
Dataset/DataLoader layer (order and augmentation fixed by (iteration, slot),
whatever the workers or processes; the max_tag_len check; /dev/shm).

Every image is drawn here: small random pictures with planted boxes.
"""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from config import load_config
from db.records import ImageRecord
from sample import dataset as dataset_module
from sample import kp_detection
from sample.dataset import (
    GlobalBatchShards,
    TooManyObjectsError,
    TrainingExamples,
    ValidationExamples,
    training_loader,
    validation_shard_batches,
    workers_that_fit,
)
from sample.utils import gaussian_radius
from tests.conftest import (
    CATEGORIES,
    SAMPLER_INPUT,
    SAMPLER_OUTPUT,
    drawn_db,
    noise_picture,
    sampler_config,
)

INPUT, OUTPUT = SAMPLER_INPUT, SAMPLER_OUTPUT
# Box corners chosen off the heatmap grid (x * 32 / 127 is never an integer
# here), so a mirrored corner lands on the mirrored pixel.
BOXES = np.array([[10.3, 12.2, 40.7, 30.9],
                  [50.2, 60.6, 110.4, 90.1],
                  [5.5, 80.3, 20.1, 120.7],
                  [70.9, 5.1, 122.3, 50.8]], dtype=np.float32)
CLASSES = np.array([0, 3, 5, 3])


def picture(width=INPUT, height=INPUT, seed=0):
    return noise_picture(width, height, seed)


def record(boxes=BOXES, classes=CLASSES, width=INPUT, height=INPUT, path="/drawn/page.png"):
    return ImageRecord(image_id=1, path=path, width=width, height=height,
                       boxes=boxes, classes=classes)


def keypoint_pixels(boxes, ratio=OUTPUT / INPUT):
    """(x, y) heatmap pixels of tl, br and ct of boxes in input pixels."""
    out = boxes.astype(np.float32) * np.float32(ratio)
    centers = (out[:, :2] + out[:, 2:]) / 2
    def pixel(points):
        return np.minimum(np.floor(points).astype(int), OUTPUT - 1)
    return pixel(out[:, :2]), pixel(out[:, 2:]), pixel(centers)


def check_peaks(example, classes, agnostic=False):
    mask = example["tag_mask"]
    assert mask.sum() == len(classes)
    assert not mask[len(classes):].any()
    for name in ("tl", "br", "ct"):
        heatmap = example[f"{name}_heatmap"]
        for k, c in enumerate(classes):
            channel = 0 if agnostic and name != "ct" else c
            y, x = divmod(int(example[f"{name}_tags"][k]), OUTPUT)
            assert heatmap[channel, y, x] == 1.0, (name, k)
        regr = example[f"{name}_regr"][mask]
        assert (regr >= 0).all() and (regr < 1).all()
        assert heatmap.max() <= 1.0 and heatmap.min() >= 0.0


# ----------------------------------------------------------------------
# targets
# ----------------------------------------------------------------------

def test_peaks_offsets_tags_and_mask_at_every_keypoint():
    cfg = sampler_config(rand_crop=False)
    example = kp_detection(picture(), record(), cfg, np.random.default_rng(0), augment=False)
    check_peaks(example, CLASSES)
    tl, br, ct = keypoint_pixels(BOXES)
    for name, pixels in (("tl", tl), ("br", br), ("ct", ct)):
        expected = pixels[:, 1] * OUTPUT + pixels[:, 0]
        np.testing.assert_array_equal(example[f"{name}_tags"][:len(BOXES)], expected)
    # pixel + offset is the exact keypoint at output scale
    out = BOXES * np.float32(OUTPUT / INPUT)
    np.testing.assert_allclose(tl + example["tl_regr"][:len(BOXES)], out[:, :2], atol=1e-5)
    np.testing.assert_allclose(br + example["br_regr"][:len(BOXES)], out[:, 2:], atol=1e-5)
    assert example["image"].shape == (3, INPUT, INPUT) and example["image"].dtype == np.float32
    for name in ("tl_heatmap", "br_heatmap", "ct_heatmap"):
        assert example[name].shape == (CATEGORIES, OUTPUT, OUTPUT)
    for name in ("tl_tags", "br_tags", "ct_tags", "tag_mask"):
        assert example[name].shape == (cfg.db.max_tag_len,)
    assert example["tag_mask"].dtype == bool and example["tl_tags"].dtype == np.int64


def test_random_crops_keep_targets_consistent():
    cfg = sampler_config(rand_crop=True, rand_flip=True, rand_color=True, lighting=True, border=16,
                   rand_scales=[0.6, 1.0, 1.4])
    image = picture(300, 220, seed=3)
    rng = np.random.default_rng(11)
    boxes = np.concatenate([rng.uniform(0, 150, (30, 2)), rng.uniform(0, 150, (30, 2))], axis=1)
    boxes = np.concatenate([boxes[:, :2], boxes[:, :2] + 10 + boxes[:, 2:] / 3], axis=1)
    classes = rng.integers(0, CATEGORIES, 30)
    for seed in range(6):
        example = kp_detection(image, record(boxes.astype(np.float32), classes, 300, 220), cfg,
                               np.random.default_rng(seed), augment=True)
        mask = example["tag_mask"]
        assert 0 <= mask.sum() <= len(boxes)
        for name in ("tl", "br", "ct"):
            tags = example[f"{name}_tags"][mask]
            assert ((tags >= 0) & (tags < OUTPUT * OUTPUT)).all()
            peaks = example[f"{name}_heatmap"].reshape(CATEGORIES, -1).max(axis=0)[tags]
            assert (peaks == 1).all()
            regr = example[f"{name}_regr"][mask]
            # offset 1 only for a box edge cut by the crop, on the map's last pixel
            at_far_edge = np.stack([tags % OUTPUT, tags // OUTPUT], axis=1) == OUTPUT - 1
            assert (regr >= 0).all() and ((regr < 1) | ((regr == 1) & at_far_edge)).all()


def test_blur_and_jpeg_change_the_pixels_only_and_only_when_training():
    """rand_blur and rand_jpeg degrade the crop as a photo would; the targets
    stay those of the undegraded crop, and validation examples stay clean."""
    plain = sampler_config(rand_crop=False, rand_color=False)
    faulty = sampler_config(rand_crop=False, rand_color=False, rand_blur=2.0, rand_jpeg=20)
    image = picture(seed=5)
    changed = 0
    for seed in range(8):
        a = kp_detection(image, record(), plain, np.random.default_rng(seed), augment=True)
        b = kp_detection(image, record(), faulty, np.random.default_rng(seed), augment=True)
        for name in ("tl_heatmap", "br_heatmap", "ct_heatmap", "tl_tags", "tl_regr", "tag_mask"):
            np.testing.assert_array_equal(a[name], b[name])
        changed += not np.array_equal(a["image"], b["image"])
    assert changed >= 4   # each fault on about half the crops: most crops change
    clean = kp_detection(image, record(), plain, np.random.default_rng(0), augment=False)
    still = kp_detection(image, record(), faulty, np.random.default_rng(0), augment=False)
    np.testing.assert_array_equal(clean["image"], still["image"])


def test_the_box_classifiers_picture_is_the_same_crop_at_box_scale():
    """db.box_scale 2: "box_image" is the training crop at twice the input's
    size, with the same flip and colour, and "box_rois" are in its pixels."""
    plain = sampler_config(classes_from="boxes", class_agnostic_corners=True, rand_flip=True,
                           border=16)
    sharper = sampler_config(classes_from="boxes", class_agnostic_corners=True, rand_flip=True,
                             border=16, box_scale=2.0)
    image = cv2.GaussianBlur(picture(300, 260, seed=4), (0, 0), 4)   # smooth: resampled alike
    boxes = np.array([[20, 30, 110, 60], [130, 40, 250, 90], [40, 150, 200, 190]], np.float32)
    for seed in range(4):
        a = kp_detection(image, record(boxes, [1, 2, 3], 300, 260), plain,
                         np.random.default_rng(seed), augment=True)
        b = kp_detection(image, record(boxes, [1, 2, 3], 300, 260), sharper,
                         np.random.default_rng(seed), augment=True)
        for name in ("image", "tl_heatmap", "ct_heatmap", "tl_tags", "box_classes"):
            np.testing.assert_array_equal(a[name], b[name])   # the sampler's draws as without it
        np.testing.assert_allclose(b["box_rois"], 2 * a["box_rois"], rtol=1e-6)
        assert b["box_image"].shape == (3, 2 * INPUT, 2 * INPUT) and "box_image" not in a
        halved = cv2.resize(b["box_image"].transpose(1, 2, 0), (INPUT, INPUT),
                            interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
        assert np.abs(halved - a["image"]).mean() < 0.05   # the same picture, finer


def test_gaussian_radius_and_wider_centre():
    box = np.array([[20.0, 20.0, 100.0, 90.0]], dtype=np.float32)
    cfg = sampler_config(rand_crop=False)
    example = kp_detection(picture(), record(box, [2]), cfg, np.random.default_rng(0), False)
    out = box[0] * np.float32(OUTPUT / INPUT)
    height, width = int(np.ceil(out[3] - out[1])), int(np.ceil(out[2] - out[0]))
    radius = int(gaussian_radius((height, width), cfg.db.gaussian_iou))
    assert radius >= 2
    (tlx, tly), = keypoint_pixels(box)[0]
    row = example["tl_heatmap"][2, tly]
    assert row[tlx + radius] > 0 and row[tlx + radius + 1] == 0
    # sigma = diameter / 5 for the centre, / 6 for corners: the same radius, a wider bump
    (ctx, cty), = keypoint_pixels(box)[2]
    ct_row = example["ct_heatmap"][2, cty]
    assert ct_row[ctx + 1] > row[tlx + 1]
    diameter = 2 * radius + 1
    np.testing.assert_allclose(row[tlx + 1], np.exp(-1 / (2 * (diameter / 6) ** 2)), rtol=1e-5)
    np.testing.assert_allclose(ct_row[ctx + 1], np.exp(-1 / (2 * (diameter / 5) ** 2)), rtol=1e-5)

    fixed = sampler_config(rand_crop=False, gaussian_radius=1)
    example = kp_detection(picture(), record(box, [2]), fixed, np.random.default_rng(0), False)
    assert np.count_nonzero(example["tl_heatmap"]) == 9


def test_single_pixel_targets_without_gaussian_bump():
    cfg = sampler_config(rand_crop=False, gaussian_bump=False)
    example = kp_detection(picture(), record(), cfg, np.random.default_rng(0), False)
    check_peaks(example, CLASSES)
    for name in ("tl_heatmap", "br_heatmap", "ct_heatmap"):
        assert np.count_nonzero(example[name]) == len(BOXES)


def test_class_agnostic_corners_have_one_channel():
    cfg = sampler_config(rand_crop=False, class_agnostic_corners=True)
    example = kp_detection(picture(), record(), cfg, np.random.default_rng(0), False)
    assert example["tl_heatmap"].shape == (1, OUTPUT, OUTPUT)
    assert example["br_heatmap"].shape == (1, OUTPUT, OUTPUT)
    assert example["ct_heatmap"].shape == (CATEGORIES, OUTPUT, OUTPUT)
    check_peaks(example, CLASSES, agnostic=True)


def test_boxes_to_classify_are_uncut_jittered_ground_truth():
    cfg = sampler_config(rand_crop=False, class_agnostic_corners=True, classes_from="boxes",
                   boxes_per_image=3, box_jitter=0.1)
    # the fourth box touches the top border: a crop may have cut it
    boxes = BOXES.copy()
    boxes[3, 1] = 0.0
    example = kp_detection(picture(), record(boxes=boxes), cfg, np.random.default_rng(0), True)
    assert example["ct_heatmap"].shape == (1, OUTPUT, OUTPUT)
    rois, labels = example["box_rois"], example["box_classes"]
    assert rois.shape == (3, 4) and labels.tolist().count(-1) == 0
    for roi, label in zip(rois, labels):
        # each roi is one of the first three boxes, moved by at most 10 % of its size
        distance = np.abs(BOXES[:3] - roi) / np.tile(BOXES[:3, 2:] - BOXES[:3, :2], 2)
        match = int(distance.max(axis=1).argmin())
        assert distance[match].max() <= 0.1 + 1e-6 and label == CLASSES[match]
    assert sorted(np.abs(BOXES[:3] - rois[:, None]).sum(axis=2).argmin(axis=1)) == [0, 1, 2]
    # validation: the first uncut boxes, unmoved, empty slots marked
    more = sampler_config(rand_crop=False, class_agnostic_corners=True, classes_from="boxes",
                    boxes_per_image=5)
    example = kp_detection(picture(), record(boxes=boxes), more, np.random.default_rng(0), False)
    np.testing.assert_allclose(example["box_rois"][:3], BOXES[:3], atol=1e-4)
    assert example["box_classes"].tolist() == [*CLASSES[:3], -1, -1]
    assert (example["box_rois"][3:] == 0).all()


def test_box_cut_at_the_right_edge_stays_on_the_map():
    box = np.array([[90.0, 40.0, 127.0, 127.0]], dtype=np.float32)  # touches right and bottom
    example = kp_detection(picture(), record(box, [1]), sampler_config(rand_crop=False),
                           np.random.default_rng(0), False)
    y, x = divmod(int(example["br_tags"][0]), OUTPUT)
    assert (x, y) == (OUTPUT - 1, OUTPUT - 1)
    assert example["br_heatmap"][1, y, x] == 1
    np.testing.assert_allclose(example["br_regr"][0], [1.0, 1.0], atol=1e-5)


def test_flip_mirrors_image_and_targets():
    cfg = sampler_config(rand_crop=False, rand_flip=True, rand_color=False, lighting=False)
    image, rec = picture(), record()
    plain = kp_detection(image, rec, cfg, np.random.default_rng(0), augment=False)
    n = len(BOXES)
    seen = set()
    for seed in range(10):
        example = kp_detection(image, rec, cfg, np.random.default_rng(seed), augment=True)
        flipped = not np.array_equal(example["image"], plain["image"])
        seen.add(flipped)
        if not flipped:
            for key in plain:
                np.testing.assert_array_equal(example[key], plain[key])
            continue
        np.testing.assert_array_equal(example["image"], plain["image"][:, :, ::-1])
        np.testing.assert_array_equal(example["ct_heatmap"], plain["ct_heatmap"][:, :, ::-1])
        np.testing.assert_array_equal(example["tag_mask"], plain["tag_mask"])

        def xy(name, source):
            y, x = np.divmod(source[f"{name}_tags"][:n], OUTPUT)
            return x, y
        # the flipped top-left corner is the mirrored top-right: x of br, y of tl
        tl_x, tl_y = xy("tl", example)
        br_x, br_y = xy("br", example)
        assert (tl_x == OUTPUT - 1 - xy("br", plain)[0]).all() and (tl_y == xy("tl", plain)[1]).all()
        assert (br_x == OUTPUT - 1 - xy("tl", plain)[0]).all() and (br_y == xy("br", plain)[1]).all()
        ct_x, ct_y = xy("ct", example)
        assert (ct_x == OUTPUT - 1 - xy("ct", plain)[0]).all() and (ct_y == xy("ct", plain)[1]).all()
        np.testing.assert_allclose(example["tl_regr"][:n, 0], 1 - plain["br_regr"][:n, 0], atol=1e-5)
        np.testing.assert_allclose(example["tl_regr"][:n, 1], plain["tl_regr"][:n, 1], atol=1e-5)
        np.testing.assert_allclose(example["ct_regr"][:n, 0], 1 - plain["ct_regr"][:n, 0], atol=1e-5)
        check_peaks(example, CLASSES)
    assert seen == {True, False}


def test_validation_examples_are_deterministic_centre_crops():
    cfg = sampler_config(rand_crop=True, rand_flip=True, rand_color=True, lighting=True)
    image = picture(300, 200, seed=5)
    boxes = np.array([[140.0, 90.0, 170.0, 110.0], [0.0, 0.0, 30.0, 20.0]], dtype=np.float32)
    rec = record(boxes, [4, 1], 300, 200)
    first = kp_detection(image, rec, cfg, np.random.default_rng(1), augment=False)
    second = kp_detection(image, rec, cfg, np.random.default_rng(2), augment=False)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    # the window of input_size centred on the image, at scale 1
    x0, y0 = 150 - INPUT // 2, 100 - INPUT // 2
    window = image[y0:y0 + INPUT, x0:x0 + INPUT].astype(np.float32) / 255
    expected = (window - np.float32(cfg.db.mean)) / np.float32(cfg.db.std)
    np.testing.assert_allclose(first["image"], expected.transpose(2, 0, 1), rtol=1e-6, atol=1e-6)
    assert first["tag_mask"].sum() == 1  # the corner box is outside the window
    # training examples vary with the generator and repeat with its seed
    a = kp_detection(image, rec, cfg, np.random.default_rng(7), augment=True)
    b = kp_detection(image, rec, cfg, np.random.default_rng(7), augment=True)
    c = kp_detection(image, rec, cfg, np.random.default_rng(8), augment=True)
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], c["image"])


def test_too_many_objects_for_one_example():
    with pytest.raises(ValueError, match="max_tag_len"):
        kp_detection(picture(), record(), sampler_config(max_tag_len=3), np.random.default_rng(0), True)


# ----------------------------------------------------------------------
# dataset and loaders
# ----------------------------------------------------------------------

def test_max_tag_len_error_names_the_densest_images(tmp_path):
    db = drawn_db(tmp_path, [2, 9, 4, 7, 12, 3, 8, 10, 11])
    cfg = sampler_config(max_tag_len=5)
    with pytest.raises(TooManyObjectsError) as caught:
        TrainingExamples(db, cfg)
    message = str(caught.value)
    assert "db.max_tag_len" in message and "at least 12" in message
    for count, index in ((12, 4), (11, 8), (10, 7), (9, 1), (8, 6)):
        assert f"{count} objects: {db.records[index].path}" in message
        assert f"ks_train.txt:{index + 1}" in message
    assert "page_3.png" not in message and "and 1 more" in message
    with pytest.raises(TooManyObjectsError):
        ValidationExamples(db, cfg)
    TrainingExamples(db, sampler_config(max_tag_len=12))


def batches(loader):
    return [{k: v.clone() for k, v in batch.items()} for batch in loader]


def test_batches_do_not_depend_on_workers_or_processes(tmp_path):
    db = drawn_db(tmp_path, [3, 1, 4, 1, 5])
    cfg = load_config("CenterNet-tiny", check_data=False, overrides={
        "system": {"batch_size": 4},
        "db": {"input_size": INPUT, "output_sizes": [[OUTPUT, OUTPUT]], "border": 16}})
    dataset = TrainingExamples(db, cfg)
    single = batches(training_loader(dataset, 1, 3))
    assert len(single) == 3 and single[0]["image"].shape == (4, 3, INPUT, INPUT)
    with_workers = batches(training_loader(dataset, 1, 3, workers=2))
    shards = [batches(training_loader(dataset, 1, 3, rank=r, world_size=2)) for r in range(2)]
    resumed = batches(training_loader(dataset, 3, 3))
    for i, batch in enumerate(single):
        for key, value in batch.items():
            assert torch.equal(value, with_workers[i][key]), key
            assert torch.equal(value, torch.cat([shards[0][i][key], shards[1][i][key]])), key
            if i == 2:
                assert torch.equal(value, resumed[0][key]), key
    assert not torch.equal(single[0]["image"], single[1]["image"])


def test_every_image_once_per_epoch(tmp_path):
    db = drawn_db(tmp_path, [1] * 7)
    cfg = load_config("CenterNet-tiny", check_data=False, overrides={"system": {"batch_size": 3}})
    dataset = TrainingExamples(db, cfg)
    keys = [key for batch in GlobalBatchShards(1, 7, 3) for key in batch]  # 3 epochs of 7
    order = [dataset.image_index(*key) for key in keys]
    for epoch in range(3):
        assert sorted(order[epoch * 7:(epoch + 1) * 7]) == list(range(7))
    assert order[:7] != order[7:14]


def test_sharding_rules():
    with pytest.raises(ValueError, match="batch_size 6 .* 4 processes"):
        GlobalBatchShards(1, 2, 6, rank=0, world_size=4)
    assert list(GlobalBatchShards(5, 6, 4, rank=1, world_size=2)) == [
        [(5, 2), (5, 3)], [(6, 2), (6, 3)]]
    shards = [validation_shard_batches(7, 2, r, 2) for r in range(2)]
    assert shards == [[[0, 1], [2]], [[3, 4], [5, 6]]]


def test_workers_shrink_to_fit_shared_memory(monkeypatch, tmp_path):
    cfg = sampler_config()
    per_batch = dataset_module.example_bytes(cfg) * 4
    free = per_batch * dataset_module.PREFETCH_FACTOR * 2 * 2 + 1  # room for 2 workers
    monkeypatch.setattr(dataset_module.os, "statvfs",
                        lambda path: SimpleNamespace(f_bavail=free, f_frsize=1))
    assert workers_that_fit(cfg, 4, 2, shm_dir=str(tmp_path)) == (2, None)
    workers, note = workers_that_fit(cfg, 4, 6, shm_dir=str(tmp_path))
    assert workers == 2 and "using 2 workers" in note and str(tmp_path) in note
