"""Test-time scales from the page itself (test/scales.py, db.test_scale_mode
"objects"): a first look measures the page's objects and the page is tested at
the scale that brings them to db.test_object_height, so the same page detects
the same at any resolution; "pixels" mode keeps db.test_scales exactly.

The network here sees: it finds the coloured rectangles on whatever input it
is given (un-normalising the pixels, one connected component per object) and
answers with perfect maps for them, so it knows nothing of the scale the
pipeline chose, and the heights it saw are recorded per call."""

import os

import cv2
import numpy as np
import pytest
import torch

from config import load_config
from db import load_db
from sample.kp_detection import object_height_at_input
from test.kp_detection import detect_images, prepare_page
from test.run import detect_split
from test.scales import (
    FIRST_LOOK_MIN_OBJECTS,
    first_look_scale,
    keeps_first_look,
    object_height,
    object_height_note,
    page_scales,
)
from tests.conftest import CATEGORIES

# BGR colour of each category's rectangles; the paper is light grey
COLOURS = np.array([(40 * c, 90, 220 - 35 * c) for c in range(CATEGORIES)], np.float32)
PAPER = 235


class SeeingNetwork(torch.nn.Module):
    """net.predict and net.classify of a detector that reads its input: every
    coloured rectangle is an object, found exactly wherever and however large
    it lies on the input; `heights[k]` are the rectangles' heights, in input
    pixels, that call k saw in its first image."""

    def __init__(self, cfg):
        super().__init__()
        self.mean = np.asarray(cfg.db.mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(cfg.db.std, np.float32).reshape(3, 1, 1)
        self.heights = []
        self.classified = []   # (height, width) of each picture the classifier read

    def _pixels(self, image: torch.Tensor) -> np.ndarray:
        """(3, H, W) network input -> (H, W, 3) float BGR 0..255."""
        return ((image.float().numpy() * self.std + self.mean) * 255).transpose(1, 2, 0)

    def _boxes(self, pixels):
        grey = pixels.mean(axis=2)
        ink = ((grey > 40) & (grey < 200)).astype(np.uint8)  # neither paper nor black padding
        count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=4)
        return [(x, y, x + w, y + h) for x, y, w, h, area in stats[1:count] if area >= 4]

    def predict(self, images):
        batch, _, input_h, input_w = images.shape
        heat_h, heat_w = (input_h + 1) // 4, (input_w + 1) // 4
        maps = {name: np.full((batch, 1, heat_h, heat_w), -100.0, np.float32)
                for name in ("tl_heat", "br_heat", "ct_heat")}
        for name in ("tl_tag", "br_tag"):
            maps[name] = np.zeros((batch, 1, heat_h, heat_w), np.float32)
        for name in ("tl_regr", "br_regr", "ct_regr", "ct_size"):
            maps[name] = np.zeros((batch, 2, heat_h, heat_w), np.float32)
        for b in range(batch):
            boxes = self._boxes(self._pixels(images[b]))
            if b == 0:
                self.heights.append([y2 - y1 for _, y1, _, y2 in boxes])
            for tag, (x1, y1, x2, y2) in enumerate(boxes, start=1):
                x1, x2 = x1 * heat_w / input_w, x2 * heat_w / input_w
                y1, y2 = y1 * heat_h / input_h, y2 * heat_h / input_h
                for kind, x, y in (("tl", x1, y1), ("br", x2, y2),
                                   ("ct", (x1 + x2) / 2, (y1 + y2) / 2)):
                    ix, iy = min(int(x), heat_w - 1), min(int(y), heat_h - 1)
                    maps[f"{kind}_heat"][b, 0, iy, ix] = 10.0
                    maps[f"{kind}_regr"][b, :, iy, ix] = (x - ix, y - iy)
                    if kind != "ct":
                        maps[f"{kind}_tag"][b, 0, iy, ix] = tag
                    else:
                        maps["ct_size"][b, :, iy, ix] = np.log([x2 - x1, y2 - y1])
        return {name: torch.from_numpy(m) for name, m in maps.items()}

    def classify(self, images, rois):
        self.classified.append(tuple(images.shape[-2:]))
        pixels = self._pixels(images[0])
        logits = torch.zeros(len(rois), CATEGORIES)
        for i, (_, x1, y1, x2, y2) in enumerate(rois.numpy()):
            colour = pixels[int((y1 + y2) / 2), int((x1 + x2) / 2)]
            logits[i, int(np.abs(COLOURS - colour).sum(axis=1).argmin())] = 10.0
        return logits


def _page(width, height, rows, columns, seed=0):
    """A page of rows x columns coloured rectangles: (image, boxes (N, 4), classes)."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), PAPER, np.uint8)
    cell_w, cell_h = width / columns, height / rows
    boxes, classes = [], []
    for r in range(rows):
        for c in range(columns):
            x1, y1 = int(c * cell_w + 0.2 * cell_w), int(r * cell_h + 0.25 * cell_h)
            x2, y2 = int(x1 + 0.6 * cell_w), int(y1 + 0.5 * cell_h)
            category = int(rng.integers(0, CATEGORIES))
            image[y1:y2, x1:x2] = COLOURS[category]
            boxes.append((x1, y1, x2, y2))
            classes.append(category)
    return image, np.array(boxes, np.float64), np.array(classes)


def _write_sizes(folder, long_sides, rows=8, columns=3):
    """The same page resized to each long side, each with its ks_val.txt:
    {long side: data folder}."""
    image, boxes, classes = _page(900, 1200, rows, columns)
    folders = {}
    for side in long_sides:
        ratio = side / 1200
        width, height = round(900 * ratio), round(1200 * ratio)
        resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA
                             if ratio < 1 else cv2.INTER_NEAREST)
        data = os.path.join(str(folder), str(side))
        os.makedirs(data)
        cv2.imwrite(os.path.join(data, "page.png"), resized)
        scaled = boxes * np.array([width / 900, height / 1200] * 2)
        fields = [f"{x1:.2f},{y1:.2f},{x2:.2f},{y2:.2f},{c}"
                  for (x1, y1, x2, y2), c in zip(scaled, classes)]
        with open(os.path.join(data, "ks_val.txt"), "w", encoding="utf-8") as f:
            f.write(" ".join(["page.png", *fields]) + "\n")
        folders[side] = data
    return folders


def _config(data_dir, tmp_path, **db):
    settings = {"test_scale_mode": "objects", "test_scales": [1], "test_object_height": 12,
                "first_look_side": 640, "test_flip": False, "top_k": 60, "num_dets": 600,
                "max_per_image": 100, "classes_per_box": 1}
    settings.update(db)
    return load_config("CenterNet-tiny", overrides={
        "system": {"data_dir": str(data_dir), "cache_dir": str(tmp_path / "cache"),
                   "result_dir": str(tmp_path / "results"), "precision": "fp32",
                   "channels_last": False},
        "db": settings})


@pytest.mark.parametrize("flip", [False, True])
def test_a_page_detects_the_same_at_every_resolution(tmp_path, flip):
    folders = _write_sizes(tmp_path / "pages", [300, 700, 1400, 4032])
    for side, data in folders.items():
        cfg = _config(data, tmp_path / f"out{side}", test_flip=flip)
        db = load_db(cfg, "val")
        net = SeeingNetwork(cfg)
        run = detect_split(net, cfg, db, "cpu", str(tmp_path / f"out{side}"))
        assert run.metrics["AP50"] >= 0.99, (side, run.metrics["AP50"])
        # the last call (the chosen scale) saw the objects at about test_object_height,
        # whatever the page's own size; the first look saw them at 640 px a page
        final, first = np.median(net.heights[-1]), np.median(net.heights[0])
        assert abs(final - 12) <= 1.5, (side, final)
        assert abs(first - 640 / 1200 * 0.5 * 1200 / 8) <= 1.5, (side, first)
        found = run.detections[db.records[0].image_id]
        chosen = 12 / (75 * side / 1200)   # the scale that makes the objects 12 px tall
        for box in db.records[0].boxes:    # each in its place, to an input pixel or two
            assert np.abs(found[:, :4] - box).max(axis=1).min() <= 2 / chosen + 1


def test_pixels_mode_tests_exactly_the_given_scales(tmp_path):
    folders = _write_sizes(tmp_path / "pages", [700])
    cfg = _config(folders[700], tmp_path, test_scale_mode="pixels", test_scales=[0.5, 1])
    image = cv2.imread(os.path.join(folders[700], "page.png"))
    page = prepare_page(image, cfg)
    assert not page.looking
    assert [scaled.scale for scaled in page.inputs] == [0.5, 1]
    net = SeeingNetwork(cfg)
    detect_images(net, [page], cfg, "cpu")
    assert len(net.heights) == 2  # one call per scale, no first look


def test_the_scale_comes_from_the_median_of_the_confident_boxes():
    cfg = load_config("CenterNet-tiny", check_data=False, overrides={"db": {
        "test_object_height": 12, "test_scales": [0.5, 1, 2], "first_look_threshold": 0.3,
        "test_max_side": 4096}})
    found = np.array([[0, 0, 50, 20, 0.9, 0], [0, 0, 50, 24, 0.8, 0], [0, 0, 50, 30, 0.5, 0],
                      [0, 0, 50, 400, 0.1, 0]], np.float32)   # the last one is not confident
    assert object_height(found, cfg) == 24
    assert page_scales(1000, 800, cfg, found, look_scale=0.64) == pytest.approx([0.25, 0.5, 1.0])
    # no input side over test_max_side
    small = found.copy()
    small[:, :4] /= 10
    capped = page_scales(8000, 6000, cfg, small, look_scale=0.08)
    assert max(capped) == pytest.approx(4096 / 8000)
    # too few boxes (an empty page): the first look's scale
    assert object_height(found[:FIRST_LOOK_MIN_OBJECTS - 1], cfg) is None
    assert page_scales(1000, 800, cfg, found[:1], look_scale=0.64) == pytest.approx(
        [0.32, 0.64, 1.28])
    assert first_look_scale(1000, 800, cfg) == pytest.approx(cfg.db.first_look_side / 1000)


def test_the_first_look_stands_when_it_was_already_at_the_chosen_scale(tmp_path):
    folders = _write_sizes(tmp_path / "pages", [1200])
    image = cv2.imread(os.path.join(folders[1200], "page.png"))
    # 640 px a page: objects 40 px tall at the first look; asked for 40, it is the answer
    cfg = _config(folders[1200], tmp_path, test_object_height=40, first_look_reuse=1.1)
    net = SeeingNetwork(cfg)
    found = detect_images(net, [prepare_page(image, cfg)], cfg, "cpu")[0]
    assert len(net.heights) == 1 and len(found) == 24
    assert keeps_first_look([0.55], 0.53, cfg) and not keeps_first_look([0.7], 0.53, cfg)
    # always tested again with first_look_reuse 1, and with a flip or several scales
    for settings in ({"first_look_reuse": 1.0}, {"first_look_reuse": 1.1, "test_flip": True},
                     {"first_look_reuse": 1.1, "test_scales": [1, 1.05]}):
        again = _config(folders[1200], tmp_path, test_object_height=40, **settings)
        net = SeeingNetwork(again)
        detect_images(net, [prepare_page(image, again)], again, "cpu")
        assert len(net.heights) == 1 + len(again.db.test_scales), settings


def test_pages_of_other_sizes_share_each_network_call(tmp_path):
    folders = _write_sizes(tmp_path / "pages", [500, 1000, 2000])
    cfg = _config(folders[500], tmp_path, test_batch_images=3)
    images = [cv2.imread(os.path.join(data, "page.png")) for data in folders.values()]
    net = SeeingNetwork(cfg)
    found = detect_images(net, [prepare_page(image, cfg) for image in images], cfg, "cpu")
    assert len(net.heights) == 2          # the three first looks, then the three pages
    for image, boxes in zip(images, found):
        assert len(boxes) == 24
        # every box scales with its page
        assert np.median(boxes[:, 3] - boxes[:, 1]) == pytest.approx(
            image.shape[0] / 1200 * 0.5 * 150, rel=0.1)


def test_train_py_says_when_the_test_height_is_not_the_trained_one(tmp_path):
    folders = _write_sizes(tmp_path / "pages", [1200])
    cfg = _config(folders[1200], tmp_path, rand_scales=[1.5, 2.5])
    records = load_db(cfg, "val").records
    trained = object_height_at_input(records, cfg)
    assert trained == pytest.approx(np.median([75 / 1.5, 75 / 2.5]), rel=0.05)
    note = object_height_note(trained, cfg)
    assert "db.test_object_height = 12" in note and f"about {trained:.0f}" in note
    assert object_height_note(trained, _config(folders[1200], tmp_path,
                                               test_object_height=round(trained))) is None
    assert object_height_note(trained, _config(folders[1200], tmp_path,
                                               test_scale_mode="pixels")) is None


def test_the_box_classifier_reads_the_page_at_test_box_scale_times_the_chosen_scale(tmp_path):
    folders = _write_sizes(tmp_path / "pages", [1200])
    image = cv2.imread(os.path.join(folders[1200], "page.png"))
    for box_scale in (1.0, 2.0):
        cfg = _config(folders[1200], tmp_path, test_box_scale=box_scale)
        net = SeeingNetwork(cfg)
        page = prepare_page(image, cfg)
        found = detect_images(net, [page], cfg, "cpu")[0]
        assert len(found) == 24
        chosen = 12 / 75     # the scale that makes the objects 12 px tall
        height = net.classified[-1][0]
        assert abs(height - (int(1200 * chosen * box_scale) | 127)) <= 1, (box_scale, height)
        # every box named by the colour under it, in either picture
        db = load_db(cfg, "val")
        truth = db.records[0]
        for box, c in zip(truth.boxes, truth.classes):
            match = np.abs(found[:, :4] - box).max(axis=1).argmin()
            assert found[match, 5] == c
