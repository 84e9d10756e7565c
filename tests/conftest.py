"""Shared pytest fixtures and the helpers behind them: the one place for
fake pages, tiny configs and fake networks (test modules import the plain
helpers from here, never from another test module).

Fake pages:
- `tiny_ks_dir`: a small synthetic 口算 set (db/synth.py) in the ks format
  (docs/ks-format.md), generated once per test session;
- `write_image`: one plain image file;
- `write_pages` (+ the `pages_dir` fixture of PAGES): pages of outlined,
  numbered boxes at decimal coordinates, with their ks file;
- `draw_split`: pages of filled rectangles at random, with their ks file;
- `read_only_folder`: a folder nothing can be written to; `small_disk`: a
  folder on a file system of a few MiB;
- `drawn_db`: a DetectionDB of noise pictures with random boxes, in memory.

Tiny configs:
- `write_config` (+ `run_train`): a CenterNet-tiny config file at 63 px
  inputs and batch 2 for train.py, its files under a folder;
  (these tiny configs say fp32: CenterNet-tiny's "auto" would make the
  tests' numbers depend on whether the CPU computes bf16 natively)
- `training_config`: the same network settings, loaded, for NetworkFactory;
- `sampler_config`: 127 px inputs and per-class corners, for the sampler;
- `detection_config`: test-time settings on a data folder, for test/;
- `tiny_snapshot`, `snapshot_config`: configs with a random-weight snapshot.

Fake networks: `FakeNetwork` (what `net.predict` returns, from maps
computed independently of test/), `perfect_maps` / `perfect_network` (every
object found exactly), `blank_maps` (nothing found).
"""

import json
import os

import cv2
import numpy as np
import pytest
import torch

from config import load_config
from db.detection import DetectionDB
from db.records import ImageRecord
from db.synth import generate

TINY_KS_COUNTS = {"train": 6, "val": 3, "test": 3}
CATEGORIES = 6


@pytest.fixture(scope="session")
def tiny_ks_dir(tmp_path_factory) -> str:
    """Folder (a str) holding ks_train.txt (6 pages), ks_val.txt and ks_test.txt (3 pages each).

    Small pages (256-400 px wide, 8-30 problems), seed 0, images under images/<split>/
    with Chinese file names. Shared by the whole session: do not modify it.
    """
    out_dir = tmp_path_factory.mktemp("tiny_ks")
    generate(out_dir, TINY_KS_COUNTS, seed=0, workers=1, small=True, log=lambda message: None)
    return str(out_dir)


@pytest.fixture(scope="session")
def tiny_snapshot(tmp_path_factory):
    """Write configs that share one random-weight snapshot (iteration 1) of
    CenterNet-tiny: `tiny_snapshot(folder, data_dir, **db)` writes
    `<folder>/Tiny-Snapshot.json` (its results under <folder>/results) and
    returns its path. Snapshots belong to a config's name and cache_dir, so
    every config written here finds the same one."""
    from models import build_network
    from nnet.checkpoints import snapshot_path
    from nnet.snapshot import save_snapshot

    cache_dir = str(tmp_path_factory.mktemp("tiny_snapshot_cache"))

    def write(folder, data_dir, **db):
        os.makedirs(str(folder), exist_ok=True)
        path = os.path.join(str(folder), "Tiny-Snapshot.json")
        settings = {"base": "CenterNet-tiny",
                    "system": {"data_dir": str(data_dir), "cache_dir": cache_dir,
                               "result_dir": os.path.join(str(folder), "results"),
                               "precision": "fp32"},
                    "db": {"top_k": 20, "num_dets": 100, **db}}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(settings, f)
        return path

    cfg = load_config(write(tmp_path_factory.mktemp("tiny_snapshot_config"), cache_dir),
                      check_data=False)
    torch.manual_seed(0)
    net = build_network(cfg)
    save_snapshot(snapshot_path(cfg, 1), {
        "network": net.state_dict(), "optimizer": {}, "scaler": None, "iteration": 1,
        "rng": {}, "config": cfg.to_dict(), "metrics": {}})
    return write


def _mount(*args) -> bool:
    import subprocess
    try:
        return subprocess.run(["mount", *map(str, args)], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder in which nothing can be created: mode 0o555, or, for
    root (whom permission bits do not stop), a read-only bind mount of it;
    skipped where neither can be had."""
    import subprocess

    folder = tmp_path / "read_only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not (_mount("--bind", folder, folder) and _mount("-o", "remount,ro,bind", folder)):
        subprocess.run(["umount", str(folder)], capture_output=True)
        pytest.skip("running as root without the right to mount: no read-only folder to test")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


@pytest.fixture
def small_disk(tmp_path):
    """`small_disk(mib)`: an empty folder on a file system of `mib` MiB (a
    tmpfs, which fills up as a real disk does), or None where none can be
    mounted (not root, or no right to mount): the test then fakes the full
    disk."""
    import subprocess

    mounted = []

    def make(mib):
        folder = tmp_path / f"disk_{len(mounted)}"
        folder.mkdir()
        if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", folder):
            return None
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:  # lazily: a file a failed test left open must not keep it mounted
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


@pytest.fixture
def entry_point():
    """Run train.py, test.py or demo.py in this process, as its command line
    would: `entry_point("test.py", *args)` -> the exit status (argparse's
    SystemExit included). test.py is loaded from its path: `import test`
    finds the test/ package."""
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(script, *args):
        name = "entry_" + os.path.splitext(script)[0]
        spec = importlib.util.spec_from_file_location(name, os.path.join(root, script))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        try:
            return module.main([str(a) for a in args])
        except SystemExit as e:
            return e.code
    return run


# ----------------------------------------------------------------------------
# fake pages
# ----------------------------------------------------------------------------

# (width, height, boxes as x1, y1, x2, y2, class); box sides are decimals on
# purpose, so corner offsets are not whole heatmap pixels
PAGES = [
    (200, 150, [(12.5, 10.25, 70.5, 28.0, 0), (90.0, 10.5, 150.75, 27.5, 1),
                (12.0, 50.5, 66.25, 70.0, 2), (90.5, 52.0, 148.0, 71.75, 3),
                (12.25, 95.0, 72.0, 113.5, 4), (90.0, 96.25, 160.5, 115.0, 5)]),
    (230, 180, [(20.0, 15.5, 90.25, 38.0, 5), (110.5, 14.0, 200.0, 36.5, 4),
                (20.5, 60.0, 88.0, 82.25, 0), (105.25, 62.5, 210.5, 85.0, 0),
                (30.0, 120.25, 210.0, 170.5, 1)]),
    # one large box: above db.center_region_area, so its central region is the middle fifth
    (260, 240, [(10.25, 10.5, 250.5, 120.0, 2), (20.0, 150.5, 80.5, 175.0, 3),
                (120.0, 150.25, 200.75, 176.5, 1)]),
]


def write_image(path, width=120, height=100, value=180):
    """A tiny image at `path` (any extension OpenCV writes; non-ASCII paths work)."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    image = np.full((height, width, 3), value, np.uint8)
    image[::7] = 30  # some structure, so JPEG has real data to compress
    ok, encoded = cv2.imencode(os.path.splitext(str(path))[1], image)
    assert ok
    encoded.tofile(str(path))
    return str(path)


def write_pages(folder, pages, split="val", with_boxes=True):
    """`pages` (as PAGES) as JPEG pictures 页_<i>.jpg of outlined, numbered
    boxes, and `ks_<split>.txt` listing them (without boxes: an image list)."""
    os.makedirs(folder, exist_ok=True)
    lines = []
    for i, (width, height, boxes) in enumerate(pages):
        image = np.full((height, width, 3), 235, dtype=np.uint8)
        for x1, y1, x2, y2, c in boxes:
            cv2.rectangle(image, (int(x1), int(y1)), (int(x2), int(y2)), (40, 40, 40), 1)
            cv2.putText(image, str(c), (int(x1) + 3, int(y2) - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (0, 0, 0), 1)
        name = f"页_{i}.jpg"  # a non-ASCII file name, as real pages have
        ok, data = cv2.imencode(".jpg", image)
        assert ok
        data.tofile(os.path.join(folder, name))
        fields = [name] + ([f"{x1},{y1},{x2},{y2},{c}" for x1, y1, x2, y2, c in boxes]
                           if with_boxes else [])
        lines.append(" ".join(fields))
    with open(os.path.join(folder, f"ks_{split}.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def pages_dir(tmp_path_factory):
    """A folder holding PAGES and their ks_val.txt (write_pages)."""
    return write_pages(str(tmp_path_factory.mktemp("pages")), PAGES)


def draw_split(folder, split, pages, objects=4, seed=0):
    """Pages of coloured rectangles (one per object) and their ks file."""
    rng = np.random.default_rng([seed, len(split)])
    lines = []
    for i in range(pages):
        image = np.full((90, 100, 3), 235, np.uint8)
        boxes = []
        for _ in range(objects):
            x, y = int(rng.integers(0, 70)), int(rng.integers(0, 65))
            w, h = int(rng.integers(10, 30)), int(rng.integers(8, 25))
            x2, y2 = min(x + w, 100), min(y + h, 90)
            c = int(rng.integers(0, CATEGORIES))
            cv2.rectangle(image, (x, y), (x2 - 1, y2 - 1), (40 * c, 90, 220 - 35 * c), -1)
            boxes.append(f"{x},{y},{x2},{y2},{c}")
        name = f"{split}_{i}.png"
        cv2.imwrite(os.path.join(folder, name), image)
        lines.append(" ".join([name] + boxes))
    with open(os.path.join(folder, f"ks_{split}.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def noise_picture(width, height, seed=0):
    """(height, width, 3) uint8 noise."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def drawn_db(folder, counts, size=(150, 130)):
    """A DetectionDB of noise PNGs with counts[i] random boxes on image i."""
    records = []
    rng = np.random.default_rng(0)
    for i, count in enumerate(counts):
        path = os.path.join(str(folder), f"page_{i}.png")
        cv2.imwrite(path, noise_picture(*size, seed=i))
        xy = rng.uniform(0, 100, (count, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(8, 40, (count, 2))], axis=1)
        records.append(ImageRecord(i + 1, path, size[0], size[1], boxes,
                                   rng.integers(0, CATEGORIES, count), source_line=i + 1))
    names = [f"class_{i}" for i in range(CATEGORIES)]
    return DetectionDB(records, names, list(range(1, CATEGORIES + 1)), True,
                       os.path.join(str(folder), "ks_train.txt"))


# ----------------------------------------------------------------------------
# tiny configs
# ----------------------------------------------------------------------------

TINY_INPUT = {"input_size": 63, "output_sizes": [[16, 16]], "border": 16, "max_tag_len": 32}


def write_config(folder, data_dir, name="tiny", system=None, db=None):
    """A config file `<folder>/<name>.json` extending CenterNet-tiny at 63 px
    inputs, batch 2, 4 iterations; its snapshots and results go under `folder`."""
    settings = {
        "system": {"data_dir": data_dir, "cache_dir": os.path.join(str(folder), "cache"),
                   "result_dir": os.path.join(str(folder), "results"),
                   "batch_size": 2, "max_iter": 4, "snapshot": 2, "val_iter": 2,
                   "val_ap_iter": 0, "workers": 0, "warmup_iter": 3, "stepsize": 3,
                   "precision": "fp32"},
        "db": {**TINY_INPUT, "rand_flip": True, "top_k": 20, "num_dets": 100},
    }
    settings["system"].update(system or {})
    settings["db"].update(db or {})
    os.makedirs(str(folder), exist_ok=True)
    path = os.path.join(str(folder), f"{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"base": "CenterNet-tiny", **settings}, f)
    return path


def run_train(config, *args):
    """train.py's entry point on the CPU, no loader workers: its exit status."""
    import train
    return train.main([config, "--device", "cpu", "--workers", "0", *args])


def training_config(data_dir, **system):
    """CenterNet-tiny at 63 px, batch 2, a learning rate that warms up over 4
    iterations and drops by 10 every 10."""
    settings = {"data_dir": data_dir, "batch_size": 2, "warmup_iter": 4, "stepsize": 10,
                "decay_rate": 10, "learning_rate": 0.001, "precision": "fp32"}
    settings.update(system)
    return load_config("CenterNet-tiny", overrides={"system": settings, "db": dict(TINY_INPUT)})


SAMPLER_INPUT, SAMPLER_OUTPUT = 127, 32


def sampler_config(**db):
    """CenterNet-tiny at 127 px inputs (32 px maps); per-class corners unless
    asked otherwise: the original's targets."""
    settings = {"input_size": SAMPLER_INPUT, "output_sizes": [[SAMPLER_OUTPUT, SAMPLER_OUTPUT]],
                "categories": CATEGORIES, "class_agnostic_corners": False,
                "classes_from": "centers"}
    settings.update(db)
    return load_config("CenterNet-tiny", overrides={"db": settings}, check_data=False)


def detection_config(data_dir, tmp_path, **db):
    """CenterNet-tiny testing the pages of `data_dir` at scale 1 of their
    pixels with flip; results under `tmp_path`. Class-agnostic corners named
    by per-class centres, no size check, unless asked otherwise: what the fake
    networks below compute (their `named_boxes` option gives the box
    classifier's path). FakeNetwork knows the scales in advance: pixels mode."""
    settings = {"top_k": 40, "num_dets": 400, "test_flip": True, "test_scales": [1],
                "test_scale_mode": "pixels",
                "max_per_image": 100, "classes_from": "centers", "center_size": False}
    settings.update(db)
    return load_config("CenterNet-tiny", overrides={
        "system": {"data_dir": str(data_dir), "cache_dir": str(tmp_path / "cache"),
                   "result_dir": str(tmp_path / "results")},
        "db": settings})


@pytest.fixture(scope="module")
def snapshot_config(tmp_path_factory, pages_dir):
    """A config file extending CenterNet-tiny on `pages_dir` and a
    random-weight snapshot of it at iteration 7; the loaded config."""
    from models import build_network
    from nnet.checkpoints import snapshot_path
    from nnet.snapshot import save_snapshot

    folder = tmp_path_factory.mktemp("snapshot")
    config = {"base": "CenterNet-tiny",
              "system": {"data_dir": pages_dir, "cache_dir": str(folder / "cache"),
                         "result_dir": str(folder / "results")},
              "db": {"top_k": 20, "num_dets": 100, "vis_threshold": 0.0}}
    path = folder / "Tiny-Test.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    cfg = load_config(str(path))
    torch.manual_seed(0)
    net = build_network(cfg)
    os.makedirs(cfg.snapshot_dir, exist_ok=True)
    save_snapshot(snapshot_path(cfg, 7), {
        "network": net.state_dict(), "optimizer": {}, "scaler": None, "iteration": 7,
        "rng": {}, "config": cfg.to_dict(), "metrics": {}})
    return cfg


# ----------------------------------------------------------------------------
# fake networks: what net.predict returns, computed independently of test/
# ----------------------------------------------------------------------------

def input_geometry(height, width, scale):
    """The test-time input of the spec, computed here independently of test/:
    (resized h, w), (input h, w), (top, left) of the image in it, (heatmap h, w)."""
    new_h, new_w = int(height * scale), int(width * scale)
    input_h, input_w = new_h | 127, new_w | 127
    top, left = input_h // 2 - new_h // 2, input_w // 2 - new_w // 2
    heat_h, heat_w = (input_h + 1) // 4, (input_w + 1) // 4
    return (new_h, new_w), (input_h, input_w), (top, left), (heat_h, heat_w)


def perfect_maps(record, scale, categories, flipped=False, corners=True, centres=True,
                 peak=10.0, named_boxes=False):
    """The maps of net.predict for one image, by name: logit `peak` at every
    true corner and centre (-10 elsewhere), one tag per object, exact offsets.
    With `flipped`, the maps of the mirrored input. `named_boxes`: the
    class-agnostic centres of db.classes_from "boxes" and their exact sizes
    (FakeNetwork.classify names the boxes)."""
    (new_h, new_w), (input_h, input_w), (top, left), (heat_h, heat_w) = \
        input_geometry(record.height, record.width, scale)
    heats = [np.full((1 if named_boxes and kind == 2 else categories, heat_h, heat_w), -10.0,
                     np.float32) for kind in range(3)]
    tags = [np.zeros((1, heat_h, heat_w), np.float32) for _ in range(2)]
    regrs = [np.zeros((2, heat_h, heat_w), np.float32) for _ in range(3)]
    sizes = np.zeros((2, heat_h, heat_w), np.float32)
    boxes = record.boxes.astype(np.float64).copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]] * (new_w / record.width) + left
    boxes[:, [1, 3]] = boxes[:, [1, 3]] * (new_h / record.height) + top
    if flipped:  # a point x of the input is at input_w - x in its mirror
        boxes[:, [0, 2]] = input_w - boxes[:, [2, 0]]
    boxes[:, [0, 2]] *= heat_w / input_w
    boxes[:, [1, 3]] *= heat_h / input_h

    def plant(kind, x, y, cls, tag):
        ix, iy = min(int(x), heat_w - 1), min(int(y), heat_h - 1)
        heats[kind][cls, iy, ix] = peak
        regrs[kind][:, iy, ix] = (x - ix, y - iy)
        if kind < 2:
            tags[kind][0, iy, ix] = tag
        return ix, iy

    for i, ((x1, y1, x2, y2), cls) in enumerate(zip(boxes, record.classes)):
        if corners:
            plant(0, x1, y1, cls, i + 1)
            plant(1, x2, y2, cls, i + 1)
        if centres:
            ix, iy = plant(2, (x1 + x2) / 2, (y1 + y2) / 2, 0 if named_boxes else cls, 0)
            sizes[:, iy, ix] = np.log([x2 - x1, y2 - y1])
    tl, br, ct = heats
    maps = {"tl_heat": tl, "br_heat": br, "tl_tag": tags[0], "br_tag": tags[1],
            "tl_regr": regrs[0], "br_regr": regrs[1], "ct_heat": ct, "ct_regr": regrs[2]}
    if named_boxes:
        maps["ct_size"] = sizes
    return maps


class FakeNetwork(torch.nn.Module):
    """Stands in for a trained network: `net.predict` returns `maps_for(record,
    scale, flipped)` for each image of the call (and its mirror), in the order
    test/ asks: `db.test_batch_images` records per call, every scale.

    A call of several images gets one input as large as the largest: each
    image's maps lie at the top-left of the larger maps (at the top-right for
    the mirror, which mirrors the whole input), the rest is empty, as for a
    network that sees black padding there.
    """

    def __init__(self, records, cfg, maps_for):
        super().__init__()
        assert cfg.db.test_scale_mode == "pixels", \
            "FakeNetwork knows every call's scale in advance: test in pixels mode"
        per_call = cfg.db.test_batch_images
        groups = [records[i:i + per_call] for i in range(0, len(records), per_call)]
        self.calls = [(group, s) for group in groups for s in cfg.db.test_scales]
        self.scales = cfg.db.test_scales
        self.maps_for = maps_for
        self.asked = 0
        self.classified = 0   # images of the last call whose boxes were named

    def classify(self, images, rois):
        """The box classifier: logit 10 for the class of the true box that
        overlaps each roi most, in the next image of the last call (test/
        names each image's boxes in order, on its first scale's input)."""
        group, scale = self.calls[self.asked - 1]
        record = group[self.classified]
        self.classified += 1
        (new_h, new_w), _, (top, left), _ = input_geometry(record.height, record.width,
                                                           self.scales[0])
        boxes = rois[:, 1:].numpy().astype(np.float64)
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - left) * record.width / new_w
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - top) * record.height / new_h
        truth = record.boxes.astype(np.float64)
        width = (np.minimum(boxes[:, None, 2], truth[None, :, 2])
                 - np.maximum(boxes[:, None, 0], truth[None, :, 0])).clip(0)
        height = (np.minimum(boxes[:, None, 3], truth[None, :, 3])
                  - np.maximum(boxes[:, None, 1], truth[None, :, 1])).clip(0)
        logits = torch.zeros(len(boxes), CATEGORIES)
        logits[torch.arange(len(boxes)), torch.from_numpy(
            record.classes[(width * height).argmax(axis=1)])] = 10.0
        return logits

    def predict(self, images):
        group, scale = self.calls[self.asked]
        self.asked += 1
        self.classified = 0
        inputs = [input_geometry(r.height, r.width, scale)[1] for r in group]
        input_h, input_w = max(h for h, _ in inputs), max(w for _, w in inputs)
        per_image = len(images) // len(group)
        assert tuple(images.shape) == (per_image * len(group), 3, input_h, input_w)
        heat_h, heat_w = (input_h + 1) // 4, (input_w + 1) // 4
        batch = []
        for record in group:
            for flipped in (False, True)[:per_image]:
                own = self.maps_for(record, scale, flipped)
                placed = {}
                for name, m in own.items():
                    # heats are logits (nothing: very negative), the rest values
                    empty = -100.0 if name.endswith("_heat") else 0.0
                    canvas = np.full((m.shape[0], heat_h, heat_w), empty, np.float32)
                    left = heat_w - m.shape[2] if flipped else 0
                    canvas[:, :m.shape[1], left:left + m.shape[2]] = m
                    placed[name] = canvas
                batch.append(placed)
        # the maps by name, as kp.predict gives them
        return {name: torch.from_numpy(np.stack([maps[name] for maps in batch])).to(images.device)
                for name in batch[0]}


def perfect_network(records, cfg, **options):
    """A FakeNetwork with the perfect maps of `records` (options: perfect_maps's)."""
    return FakeNetwork(records, cfg, lambda r, s, f: perfect_maps(r, s, CATEGORIES, f, **options))


def blank_maps(record, scale, flipped):
    """What a network that sees nothing returns: every heat logit -100."""
    _, _, _, (heat_h, heat_w) = input_geometry(record.height, record.width, scale)
    heat = np.full((CATEGORIES, heat_h, heat_w), -100.0, np.float32)
    zeros = np.zeros((1, heat_h, heat_w), np.float32)
    offsets = np.zeros((2, heat_h, heat_w), np.float32)
    return {"tl_heat": heat, "br_heat": heat, "tl_tag": zeros, "br_tag": zeros,
            "tl_regr": offsets, "br_regr": offsets, "ct_heat": heat, "ct_regr": offsets}
