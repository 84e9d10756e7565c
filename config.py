"""The one home of every setting: loads `config/<Name>.json`, validates it once
and hands out a read-only config object.

A config file keeps the original CenterNet shape, two sections:

    {"system": {...training, data and file settings...},
     "db":     {...dataset, sampling, decoding and testing settings...}}

Every key is declared once in `SCHEMA` below with its type, its default and the
check its value must pass; a key missing from the JSON takes the default
written here. An unknown key, a wrong type or an impossible value fails at load
time naming the key (and, for a misspelt key, the closest valid one), so nothing
fails later, half-way through a run, because of a setting.

    cfg = load_config("CenterNet-52")          # config/CenterNet-52.json
    cfg.system.batch_size, cfg.db.categories   # plain Python values
    cfg.to_dict()                              # the full, validated settings

Relative paths in the config (`data_dir`, `cache_dir`, `result_dir`,
`pretrain`) are relative to the project root, the folder that holds this file,
so commands behave the same from any working directory.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import shlex
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import strict_json

PROJECT_ROOT = os.path.dirname(os.path.abspath(__file__))
CONFIG_DIR = os.path.join(PROJECT_ROOT, "config")

# The network's stride from input to heatmaps: a 7x7 stride-2 convolution and a
# stride-2 residual block, each mapping a size s to (s - 1) // 2 + 1, which
# twice is (s - 1) // 4 + 1 (db.output_sizes is derived with it).
NETWORK_STRIDE = 4

# ImageNet statistics in BGR order (images are read with OpenCV), as the
# original CornerNet/CenterNet used for MSCOCO.
_MEAN_BGR = [0.40789654, 0.44719302, 0.47026115]
_STD_BGR = [0.28863828, 0.27408164, 0.27809835]
_EIG_VAL = [0.2141788, 0.01817699, 0.00341571]
_EIG_VEC = [[-0.58752847, -0.69563484, 0.41340352],
            [-0.5832747, 0.00994535, -0.81221408],
            [-0.56089297, 0.71832671, 0.41158938]]


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and key."""


# --------------------------------------------------------------------------
# value checks: each returns the (possibly normalised) value or raises
# ValueError with a short reason; the loader adds the file and key.
# --------------------------------------------------------------------------

def is_int(v) -> bool:
    """An int that is not a bool (JSON's true is no count)."""
    return isinstance(v, int) and not isinstance(v, bool)



def _is_number(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v))


def integer(minimum=None, maximum=None):
    def check(v):
        if not is_int(v):
            raise ValueError(f"must be an integer, got {v!r}")
        if minimum is not None and v < minimum:
            raise ValueError(f"must be >= {minimum}, got {v}")
        if maximum is not None and v > maximum:
            raise ValueError(f"must be <= {maximum}, got {v}")
        return v
    return check


def number(low=None, high=None, low_open=False, high_open=False):
    def check(v):
        if not _is_number(v):
            raise ValueError(f"must be a number, got {v!r}")
        if low is not None and (v < low or (low_open and v == low)):
            raise ValueError(f"must be {'>' if low_open else '>='} {low}, got {v}")
        if high is not None and (v > high or (high_open and v == high)):
            raise ValueError(f"must be {'<' if high_open else '<='} {high}, got {v}")
        return float(v)
    return check


def boolean(v):
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {v!r}")
    return v


def string(v):
    if not isinstance(v, str) or not v:
        raise ValueError(f"must be a non-empty string, got {v!r}")
    return v


def optional(check):
    def inner(v):
        return None if v is None else check(v)
    return inner


def choice(*options):
    def check(v):
        if v not in options:
            hint = difflib.get_close_matches(str(v), options, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ValueError(f"must be one of {list(options)}, got {v!r}{extra}")
        return v
    return check


def number_list(length=None, positive=False, nonempty=True):
    def check(v):
        if not isinstance(v, list) or not all(_is_number(x) for x in v):
            raise ValueError(f"must be a list of numbers, got {v!r}")
        if nonempty and not v:
            raise ValueError("must not be empty")
        if length is not None and len(v) != length:
            raise ValueError(f"must have {length} numbers, got {len(v)}")
        if positive and any(x <= 0 for x in v):
            raise ValueError(f"every value must be > 0, got {v}")
        return [float(x) for x in v]
    return check


def image_size(v):
    """511 or [511, 511] -> [height, width]."""
    if is_int(v):
        v = [v, v]
    if (not isinstance(v, list) or len(v) != 2
            or not all(is_int(x) and x > 0 for x in v)):
        raise ValueError(f"must be a positive integer or [height, width], got {v!r}")
    return list(v)


def output_sizes(v):
    if (not isinstance(v, list) or not v
            or not all(isinstance(s, list) for s in v)):
        raise ValueError(f"must be a list of [height, width] pairs, got {v!r}")
    return [image_size(s) for s in v]


def cell_pair(v):
    if (not isinstance(v, list) or len(v) != 2
            or not all(is_int(x) and x >= 0 for x in v)):
        raise ValueError(f"must be [vertical, horizontal], two integers >= 0, got {v!r}")
    return [int(x) for x in v]


def string_list(v):
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise ValueError(f"must be a list of non-empty strings, got {v!r}")
    return list(v)


def matrix3(v):
    if (not isinstance(v, list) or len(v) != 3
            or not all(isinstance(r, list) and len(r) == 3
                       and all(_is_number(x) for x in r) for r in v)):
        raise ValueError("must be a 3x3 list of numbers")
    return [[float(x) for x in r] for r in v]


@dataclass(frozen=True)
class Key:
    default: Any
    check: Callable[[Any], Any]
    doc: str


# --------------------------------------------------------------------------
# SCHEMA: every setting, its default and what it means.
# --------------------------------------------------------------------------

SYSTEM = {
    "dataset": Key("KS", choice("KS", "MSCOCO"),
                   "annotation format: KS (ks_<split>.txt) or MSCOCO (instances_<split>.json)"),
    "network": Key(None, optional(string),
                   "network file under models/ (models/<network>.py); null: the config's name"),
    "sampling_function": Key("kp_detection", choice("kp_detection"),
                             "training-example builder under sample/"),
    "data_dir": Key("data/ks", string,
                    "KS: folder holding ks_<split>.txt; MSCOCO: folder holding annotations/ and images/"),
    "cache_dir": Key("cache", string, "snapshots go to <cache_dir>/nnet/<config name>/"),
    "result_dir": Key("results", string, "test output goes to <result_dir>/<config name>/"),
    "train_split": Key("train", string, "split trained on (ks_<train_split>.txt)"),
    "val_split": Key("val", string, "split for validation loss and AP during training"),
    "test_split": Key("test", string, "default split of test.py"),
    "batch_size": Key(48, integer(1), "global batch; split evenly across torchrun processes"),
    "learning_rate": Key(0.00025, number(0, low_open=True), "initial learning rate"),
    "decay_rate": Key(10.0, number(1), "learning rate is divided by this every stepsize iterations"),
    "stepsize": Key(450000, integer(1), "iterations between learning-rate decays"),
    "warmup_iter": Key(0, integer(0), "linear learning-rate warm-up over this many iterations (0: none)"),
    "max_iter": Key(480000, integer(1), "iterations to train"),
    "time_budget": Key(None, optional(number(0, low_open=True)),
                       "minutes of training (null: no limit): the run stops when they are used "
                       "or at max_iter, and the learning rate drops at whichever comes first of "
                       "stepsize iterations and the same fraction of the budget, so a slow "
                       "machine trains fewer steps on the same schedule (train.py --time-budget "
                       "overrides it)"),
    "snapshot": Key(5000, integer(1), "iterations between snapshots"),
    "val_iter": Key(500, integer(0), "iterations between validation losses (0: never)"),
    "val_images": Key(0, integer(0),
                      "validation loss on the first this many val_split images, un-augmented (0: all)"),
    "val_ap_iter": Key(0, integer(0), "iterations between validation COCO AP, best snapshot kept (0: never)"),
    "val_ap_images": Key(0, integer(0), "validation images used for AP during training (0: all)"),
    "pull_weight": Key(0.1, number(0), "weight of the embedding pull loss (paper: 0.1)"),
    "push_weight": Key(0.1, number(0), "weight of the embedding push loss (paper: 0.1)"),
    "regr_weight": Key(1.0, number(0), "weight of the offset loss (paper: 1)"),
    "focal_alpha": Key(2.0, number(0),
                       "focal loss on the heatmaps: exponent of the (1 - p) and p factors that "
                       "weigh hard pixels up (CornerNet's alpha; paper: 2)"),
    "focal_beta": Key(4.0, number(0),
                      "focal loss on the heatmaps: exponent of (1 - y) that lessens the penalty "
                      "on pixels near an object (CornerNet's beta; paper: 4)"),
    "heat_bias": Key(-2.19, number(),
                     "initial bias of the heatmaps' last convolution: sigmoid(-2.19) ~ 0.1, a low "
                     "prior for every pixel (the focal-loss init of CornerNet / CenterNet)"),
    "size_weight": Key(1.0, number(0), "weight of the centre size loss (db.center_size)"),
    "class_weight": Key(1.0, number(0), "weight of the box classifier's loss (db.classes_from boxes)"),
    "opt_algo": Key("adam", choice("adam", "sgd"), "optimizer"),
    "weight_decay": Key(0.0, number(0), "optimizer weight decay"),
    "momentum": Key(0.9, number(0, 1), "SGD momentum"),
    "workers": Key(4, integer(0), "DataLoader worker processes (train.py --workers overrides)"),
    "seed": Key(317, integer(0), "seed of every random generator"),
    "pretrain": Key(None, optional(string),
                    "snapshot to start from; layers whose shapes differ (another category count) keep their init"),
    "precision": Key("auto", choice("auto", "fp32", "bf16", "fp16"),
                     "arithmetic of the network: auto (bf16 where the CPU or GPU computes bf16 "
                     "natively, else fp32; nnet/device.py), fp32, bf16 autocast (CPU and GPU), "
                     "fp16 autocast with a grad scaler (GPU only)"),
    "channels_last": Key(False, boolean, "run the network in channels_last memory format"),
}

DB = {
    "categories": Key(6, integer(1), "number of object categories: the heatmaps' width"),
    "category_names": Key(None, optional(string_list), "one name per category (null: 'class_<i>')"),
    "max_tag_len": Key(256, integer(1), "most objects on one training image"),
    # One size rule for every reader (db/image_io.py): the checker, train.py,
    # test.py and demo.py refuse the same images, from the header, before
    # decoding. At most OpenCV's own decoding limit, 2**30 pixels.
    "max_image_pixels": Key(100_000_000, integer(1, 2 ** 30),
                            "largest image read, in pixels (width x height; 10000 x 10000 by "
                            "default): decoded it takes 3 bytes a pixel, and training and testing "
                            "make float copies of it several times that size"),
    "input_size": Key([511, 511], image_size, "training input, [height, width] (or one integer)"),
    "output_sizes": Key(None, optional(output_sizes),
                        "heatmap size per input, derived from input_size: (input - 1) // 4 + 1 "
                        "on each side (null or left out: derived; given, it must be that)"),
    "rand_scales": Key(None, optional(number_list(positive=True)),
                       "crop scales; null: arange(rand_scale_min, rand_scale_max, rand_scale_step)"),
    "rand_scale_min": Key(0.6, number(0, low_open=True), "smallest random crop scale"),
    "rand_scale_max": Key(1.4, number(0, low_open=True), "random crop scales stop below this"),
    "rand_scale_step": Key(0.1, number(0, low_open=True), "step between random crop scales"),
    "rand_crop": Key(True, boolean, "random crops (false: whole image padded to a square)"),
    "rand_flip": Key(True, boolean, "random horizontal flips"),
    "rand_color": Key(True, boolean, "colour jitter (brightness, contrast, saturation)"),
    "lighting": Key(True, boolean, "PCA lighting noise (with rand_color)"),
    "rand_blur": Key(0.0, number(0, 5),
                     "half of the training crops blurred with a Gaussian of sigma up to this "
                     "many input pixels, as out-of-focus photos are (0: never, the paper)"),
    "rand_jpeg": Key(0, integer(0, 100),
                     "half of the training crops compressed again as JPEG of quality from this "
                     "up to 95 (0: never, the paper)"),
    "border": Key(128, integer(0), "crop centres keep this far from the image edges"),
    "gaussian_bump": Key(True, boolean, "gaussian heatmap targets (false: single pixels)"),
    "gaussian_iou": Key(0.7, number(0, 1, low_open=True, high_open=True), "IoU that sets the gaussian radius"),
    "gaussian_radius": Key(-1, integer(-1), "fixed gaussian radius (-1: from gaussian_iou)"),
    "mean": Key(_MEAN_BGR, number_list(3), "per-channel mean, BGR, of images scaled to [0, 1]"),
    "std": Key(_STD_BGR, number_list(3, positive=True), "per-channel std, BGR"),
    "eig_val": Key(_EIG_VAL, number_list(3), "PCA lighting eigenvalues"),
    "eig_vec": Key(_EIG_VEC, matrix3, "PCA lighting eigenvectors"),
    "top_k": Key(100, integer(1), "corners and centres kept per image when decoding"),
    "num_dets": Key(1000, integer(1), "corner pairs kept per image when decoding (at most top_k**2)"),
    "ae_threshold": Key(0.5, number(0, low_open=True), "largest embedding distance of a corner pair"),
    "nms_kernel": Key(3, integer(1), "max-pool window of the heatmap peak search (odd)"),
    "test_scale_mode": Key("objects", choice("objects", "pixels"),
                           "how test_scales are read (test/scales.py): objects: each page is "
                           "first looked at with its long side first_look_side pixels, then "
                           "tested at the scale that brings its median object height to "
                           "test_object_height, times each of test_scales, so a page detects "
                           "the same at any resolution; pixels: test_scales multiply the "
                           "stored pixels, exactly (the original's; MSCOCO)"),
    "test_scales": Key([1.0], number_list(positive=True),
                       "image scales at test time (test_scale_mode says of what)"),
    "test_object_height": Key(22.0, number(1),
                              "objects mode: input pixels the median object of a page is "
                              "brought to: the median height objects have at the network's "
                              "input in training (train.py says so when they differ; 22 for the "
                              "synthetic pages at CenterNet-52's crop scales)"),
    "first_look_side": Key(640, integer(32),
                           "objects mode: long side, in input pixels, of the first look at a "
                           "page that measures its objects"),
    "first_look_threshold": Key(0.3, number(0, 1),
                                "objects mode: the first look's boxes scoring at least this "
                                "are measured"),
    "first_look_reuse": Key(1.0, number(1),
                            "objects mode, one scale without flip: the first look's boxes are "
                            "the final ones when the chosen scale is within this factor of "
                            "the first look's (1: always test again at the chosen scale)"),
    "test_max_side": Key(4096, integer(32),
                         "objects mode: no test input side exceeds this many pixels"),
    "test_flip": Key(True, boolean, "test each image with its horizontal flip too"),
    "test_batch_images": Key(1, integer(1),
                             "images per network call at test time, each padded to the largest "
                             "of its call (raise it on a GPU with memory to spare)"),
    "center_region_small_n": Key(3, integer(1), "central region of a small box: the middle 1/n"),
    "center_region_large_n": Key(5, integer(1), "central region of a large box: the middle 1/n"),
    "center_region_area": Key(22500.0, number(0), "boxes above this area (pixels) count as large"),
    "nms_algorithm": Key("exp_soft_nms", choice("nms", "linear_soft_nms", "exp_soft_nms"),
                         "per-class suppression after merging scales"),
    "nms_threshold": Key(0.5, number(0, 1, low_open=True), "IoU threshold of (soft-)NMS"),
    "nms_sigma": Key(0.5, number(0, low_open=True),
                     "exp_soft_nms: a box's score is multiplied by exp(-IoU^2 / sigma) (Soft-NMS, "
                     "Bodla et al. 2017; CenterNet: 0.5)"),
    "merge_bbox": Key(True, boolean, "weighted box merge during soft-NMS (soft_nms_merge)"),
    "weight_exp": Key(10.0, number(0), "exponent of the box-merge weights"),
    "max_per_image": Key(100, integer(1), "detections kept per image"),
    "score_threshold": Key(0.001, number(0, 1, low_open=True),
                           "(soft-)NMS drops boxes scoring below this; no final detection scores less"),
    # Scores from which a detection counts, one key per job; each left null
    # takes db.vis_threshold, which once set all four (docs/config-keys.md).
    "vis_threshold": Key(0.1, number(0, 1),
                         "the score threshold of every job whose own key is null: "
                         "draw_threshold, confusion_threshold, empty_page_threshold, "
                         "grade_threshold (it once set all four)"),
    "draw_threshold": Key(None, optional(number(0, 1)),
                          "debug pictures (test.py --debug, demo.py) draw the boxes scoring at "
                          "least this (null: db.vis_threshold)"),
    "confusion_threshold": Key(None, optional(number(0, 1)),
                               "the confusion matrix of test.py counts the detections scoring at "
                               "least this (null: db.vis_threshold)"),
    "empty_page_threshold": Key(None, optional(number(0, 1)),
                                "on pages without objects, test.py counts the detections scoring "
                                "at least this, each a false positive (null: db.vis_threshold)"),
    "grade_threshold": Key(None, optional(number(0, 1)),
                           "grade.py grades the boxes scoring at least this (its --threshold "
                           "overrides it; null: db.vis_threshold)"),
    "same_place_iou": Key(0.5, number(0, 1),
                          "a box overlapping a better-scoring one by more than this IoU is the "
                          "same place reported again (under another category): pictures draw "
                          "and grade.py grades only the best (test/boxes.py one_per_place)"),
    "grade_inside_share": Key(0.6, number(0, 1),
                              "grade.py passes over a box with at least this share of its area "
                              "inside a better-scoring one: a piece of a problem found beside "
                              "the whole"),
    "grade_truth_iou": Key(0.5, number(0, 1, low_open=True),
                           "grade.py and bench_grading against the ground truth "
                           "(ks_<split>_text.jsonl): a found box is a true problem's when they "
                           "overlap by at least this IoU"),
    "class_agnostic_corners": Key(False, boolean,
                                  "corner heatmaps of one channel; the class comes from the centre heatmap"),
    # Departures from the paper for small networks on dense pages; the
    # defaults are the paper's (README, "What CenterNet-tiny changes").
    "classes_from": Key("centers", choice("centers", "boxes"),
                        "centers: one centre heatmap per category (paper); boxes: one "
                        "class-agnostic centre heatmap, and each box found is named by a small "
                        "CNN on its pixels (needs class_agnostic_corners)"),
    "box_crop": Key([16, 80], image_size,
                    "with classes_from boxes: [height, width] of the crop the box classifier reads"),
    "box_scale": Key(1.0, number(1, 4),
                     "with classes_from boxes: in training the box classifier reads its crop from "
                     "the training crop at this many times the network input's size (1: from the "
                     "network input itself)"),
    "test_box_scale": Key(1.0, number(1, 4),
                          "with classes_from boxes: at test time the box classifier reads its crop "
                          "from the page at this many times the scale it is tested at (1: from the "
                          "network input), no finer than the page's own pixels: the operators of a "
                          "problem 12 px tall at the input are a few pixels wide"),
    "box_pooling": Key("global", choice("global", "columns"),
                       "with classes_from boxes: how the box classifier pools its crop: "
                       "global (one max over the crop) or columns (a max per column, the "
                       "columns in order, so that the first of several operators can name "
                       "the problem)"),
    "boxes_per_image": Key(24, integer(1),
                           "with classes_from boxes: training boxes classified per image"),
    "box_jitter": Key(0.1, number(0, 0.5),
                      "with classes_from boxes: training boxes move each side by up to this "
                      "fraction of their size, as found boxes do"),
    "classes_per_box": Key(2, integer(1),
                           "with classes_from boxes: a box is reported under its this many "
                           "likeliest categories, each scored box score x probability (the best "
                           "one alone is drawn in pictures)"),
    "center_size": Key(False, boolean,
                       "regress each object's size at its centre; the centre check then also "
                       "needs the box to agree with it (size_tolerance)"),
    "size_tolerance": Key(1.5, number(1, low_open=True),
                          "with center_size: a box's width and height may differ from the "
                          "centre's prediction by at most this factor"),
    "pool_window": Key(None, optional(cell_pair),
                       "[vertical, horizontal] heatmap cells that corner and centre pooling look "
                       "along (null: to the image border, the paper)"),
}

SCHEMA = {"system": SYSTEM, "db": DB}

# The keys a null value of which means db.vis_threshold's (see DB above).
FROM_VIS_THRESHOLD = ("draw_threshold", "confusion_threshold", "empty_page_threshold",
                      "grade_threshold")

# Keys of the original CenterNet that this project dropped on purpose.
_RETIRED = {
    "chunk_sizes": "batch_size is the global batch, split evenly across torchrun processes",
    "prefetch_size": "data loading uses torch DataLoader workers (system.workers)",
    "display": "the progress bar shows every iteration",
    "kp_categories": "not used by CenterNet",
    "special_crop": "not used by CenterNet",
    "data_rng": "randomness comes from system.seed",
}


class Section(Mapping):
    """A read-only view of one config section with attribute access."""

    def __init__(self, name: str, values: dict):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, key):
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"config section {self._name!r} has no key {key!r}") from None

    def __setattr__(self, key, value):
        raise AttributeError("a loaded config is read-only; change the JSON file instead")

    def __getitem__(self, key):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return f"Section({self._name!r}, {self._values!r})"


class Config:
    """A loaded, validated, read-only config."""

    def __init__(self, name: str, path: str | None, system: dict, db: dict,
                 overrides: dict | None = None, set_by: dict | None = None):
        self.name = name
        self.path = path
        self.system = Section("system", system)
        self.db = Section("db", db)
        # {"db.top_k": 700, ...}: what was set over the file (--set and the
        # entry points' own flags), so that results can say what made them
        self.overrides = dict(overrides or {})
        # {"db.draw_threshold": "db.vis_threshold", ...}: keys whose value came
        # from another key, so that messages name the key the user set
        self._set_by = dict(set_by or {})

    def key_setting(self, key: str) -> str:
        """The config key that gave `key` ("db.empty_page_threshold") its value:
        itself, or db.vis_threshold when the config set only that."""
        return self._set_by.get(key, key)

    # where this config's files go
    @property
    def snapshot_dir(self) -> str:
        return os.path.join(self.system.cache_dir, "nnet", self.name)

    @property
    def result_dir(self) -> str:
        return os.path.join(self.system.result_dir, self.name)

    @property
    def network_name(self) -> str:
        return self.system.network or self.name

    def to_dict(self) -> dict:
        """Plain JSON-able settings (every key, defaults filled in)."""
        return {"system": _plain(self.system), "db": _plain(self.db)}

    def __repr__(self):
        return f"Config({self.name!r})"


def _plain(section):
    return json.loads(json.dumps(dict(section)))


def config_path(name_or_path: str) -> str:
    """`CenterNet-52` -> config/CenterNet-52.json; a path to a .json is kept."""
    if name_or_path.endswith(".json") or os.sep in name_or_path:
        return os.path.abspath(name_or_path)
    return os.path.join(CONFIG_DIR, name_or_path + ".json")


def command_line_name(cfg: "Config") -> str:
    """How to name `cfg` on a command line, shell-quoted: its name when it is
    config/<name>.json, else the path of its file (of the config it extends,
    for test.py --suffix), relative to the working folder when inside it."""
    if cfg.path is None:
        return shlex.quote(cfg.name)
    own = os.path.join(os.path.dirname(os.path.abspath(cfg.path)), cfg.name + ".json")
    if own == config_path(cfg.name):
        return shlex.quote(cfg.name)
    try:
        relative = os.path.relpath(own)
    except ValueError:  # another drive (Windows)
        relative = own
    return shlex.quote(own if relative.startswith(os.pardir) else relative)


def available_configs() -> list[str]:
    return sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".json"))


def load_config(name_or_path: str, overrides: dict | None = None,
                check_data: bool = True, name: str | None = None) -> Config:
    """Load and validate a config by name (config/<name>.json) or path.

    A file may start from another config with `"base": "<name>"` and list
    only what differs (the multi-scale and MSCOCO variants do).
    `overrides` is merged over the file, section by section, before
    validation (same keys, same checks): tests and benchmarks use it to vary
    a setting without writing a file, and the entry points' --set
    (`parse_assignments`); the config keeps them as `cfg.overrides`. `check_data=False` skips the check that
    `data_dir` exists (for building networks without data). `name` replaces
    the config's name, which names its snapshot and result folders (test.py
    --suffix tests the snapshots of the config it extends).
    """
    path = config_path(name_or_path)
    raw = read_with_base(path, name_or_path, seen=())
    if name is None:
        name = os.path.splitext(os.path.basename(path))[0]
    return config_from_dict(raw, name=name, path=path, overrides=overrides,
                            check_data=check_data)


def read_with_base(path, asked, seen=(), *, locate=None, available=None, kind="config",
                   schema=None):
    """The JSON object of the config file `path` (asked for as `asked`), with
    the config its "base" names merged under it, section by section; a base
    name is found with `locate` (config_path) among `available` ones
    (available_configs); `schema` (SCHEMA) names the sections. Every problem
    is a ConfigError naming the file. reader/config.py reads recognizer
    configs with it."""
    locate = locate or config_path
    available = available or available_configs
    schema = schema or SCHEMA
    if not os.path.isfile(path):
        raise ConfigError(f"no {kind} {asked!r} ({path}); available: "
                          f"{', '.join(available()) or 'none'}")
    try:  # not UTF-8, nested too deep, a key twice: strict_json names the line or the key
        raw = strict_json.load_file(path)
    except strict_json.JSONInputError as e:
        raise ConfigError(f"{path}{f':{e.line}' if e.line else ''}: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {_top_level(schema)}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: must be a {kind} name, got {base!r}")
    if path in seen:
        raise ConfigError(f"{path}: base: configs extend each other in a circle")
    merged = read_with_base(locate(base), base, seen + (path,), locate=locate,
                            available=available, kind=kind, schema=schema)
    for section, values in raw.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return merged


def config_from_dict(raw: dict, name: str, path: str | None = None,
                     overrides: dict | None = None, check_data: bool = True) -> Config:
    where = path or f"<config {name}>"
    sections, problems = check_sections(raw, SCHEMA, overrides)
    if not problems:
        problems += _cross_checks(sections["system"], sections["db"])
    raise_problems(where, [on_command_line(problem, overrides) for problem in problems])

    system, db = sections["system"], sections["db"]
    for key in ("data_dir", "cache_dir", "result_dir", "pretrain"):
        if system[key] is not None and not os.path.isabs(system[key]):
            system[key] = os.path.normpath(os.path.join(PROJECT_ROOT, system[key]))
    if db["output_sizes"] is None:
        db["output_sizes"] = [network_output_size(db["input_size"])]
    if db["rand_scales"] is None:
        db["rand_scales"] = _arange(db["rand_scale_min"], db["rand_scale_max"], db["rand_scale_step"])
    if db["category_names"] is None:
        db["category_names"] = [f"class_{i}" for i in range(db["categories"])]
    given = _given_keys(raw, overrides, "db")
    set_by = {}
    for key in FROM_VIS_THRESHOLD:
        if db[key] is None:
            db[key] = db["vis_threshold"]
            if "vis_threshold" in given:
                set_by[f"db.{key}"] = "db.vis_threshold"

    if check_data and not os.path.isdir(system["data_dir"]):
        raise ConfigError(
            f"{where}: system.data_dir: folder {system['data_dir']} does not exist "
            f"(generate the synthetic set with "
            f"`python -m db.synth --out {shlex.quote(system['data_dir'])}` "
            f"or point data_dir at your data)")
    return Config(name, path, system, db, overrides=flat_overrides(overrides), set_by=set_by)


def _given_keys(raw, overrides, section) -> set:
    """The keys of `section` that the file or the overrides set."""
    given = set()
    for source in (raw, overrides or {}):
        values = source.get(section) if isinstance(source, dict) else None
        if isinstance(values, dict):
            given.update(values)
    return given


def check_sections(raw, schema, overrides=None) -> tuple[dict, list[str]]:
    """The sections of a config's JSON (`raw`) with `overrides` ({section:
    {key: value}}) laid over them, each value checked by `schema`'s Key and
    every key the file leaves out at its default: ({section: {key: value}},
    [problem, ...]). Shared by the detector's and the recognizer's configs;
    the checks between keys are each loader's own."""
    if not isinstance(raw, dict):
        return {}, [_top_level(schema)]
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for section, values in (overrides or {}).items():
        if isinstance(raw.setdefault(section, {}), dict):
            raw[section].update(values)
    problems, sections = [], {}
    for section_name, value in raw.items():
        if section_name not in schema:
            problems.append(unknown_name(section_name, schema, "section"))
        elif not isinstance(value, dict):
            problems.append(f"{section_name}: must be an object")
    for section_name, keys in schema.items():
        given = raw.get(section_name, {})
        if not isinstance(given, dict):
            continue
        values = {}
        for key, value in given.items():
            if key not in keys:
                problems.append(_key_problem(section_name, key, schema))
                continue
            try:
                values[key] = keys[key].check(value)
            except ValueError as e:
                problems.append(f"{section_name}.{key}: {e}")
        for key, spec in keys.items():
            if key not in given:
                values[key] = _copy(spec.default)
        sections[section_name] = values
    return sections, problems


def _top_level(schema) -> str:
    return "the top level must be an object with " + " and ".join(repr(s) for s in schema)


def raise_problems(where, problems):
    """ConfigError naming the file and every problem, one a line; nothing when
    there are none."""
    if problems:
        raise ConfigError(f"{where}: " + ("\n  ".join([""] + problems) if len(problems) > 1
                                          else problems[0]))


def on_command_line(problem: str, overrides) -> str:
    """A problem of a key that `overrides` set (--set, or an entry point's own
    flag), worded to say so: the file is not what to fix."""
    key, colon, _ = problem.partition(":")
    given = flat_overrides(overrides)
    if not colon or key not in given:
        return problem
    return f"{problem} ({key}={json.dumps(given[key])} was set on the command line, over the file)"


def flat_overrides(overrides) -> dict:
    """{"db": {"top_k": 7}} -> {"db.top_k": 7}: what was set over the file,
    as results and snapshots name it."""
    return {f"{section}.{key}": value for section, values in (overrides or {}).items()
            if isinstance(values, dict) for key, value in values.items()}


def _cross_checks(system, db):
    problems = []
    names = db["category_names"]
    if names is not None and len(names) != db["categories"]:
        problems.append(f"db.category_names: has {len(names)} names but db.categories is "
                        f"{db['categories']}")
    if db["output_sizes"] is None:
        pass  # derived from input_size once the checks pass
    elif len(db["output_sizes"]) != 1:
        problems.append("db.output_sizes: give exactly one [height, width] (one heatmap resolution)")
    else:
        expected = network_output_size(db["input_size"])
        if db["output_sizes"][0] != expected:
            problems.append(f"db.output_sizes: for input_size {db['input_size']} the network gives "
                            f"{expected}, got {db['output_sizes'][0]}")
    if db["first_look_side"] > db["test_max_side"]:
        problems.append(f"db.first_look_side: must be at most db.test_max_side "
                        f"({db['test_max_side']}), got {db['first_look_side']}")
    if db["nms_kernel"] % 2 == 0:
        problems.append(f"db.nms_kernel: must be odd, got {db['nms_kernel']}")
    if db["rand_scales"] is None and db["rand_scale_min"] >= db["rand_scale_max"]:
        problems.append("db.rand_scale_max: must be greater than rand_scale_min")
    if db["classes_from"] == "boxes" and not db["class_agnostic_corners"]:
        problems.append("db.classes_from: boxes names each box from its pixels, so the corners "
                        "carry no category: set db.class_agnostic_corners to true")
    if db["center_region_small_n"] < 2 or db["center_region_large_n"] < 2:
        problems.append("db.center_region_small_n/large_n: must be >= 2 (1 would be the whole box)")
    return problems


def heatmap_channels(db) -> tuple[int, int]:
    """(corner, centre) heatmap channels of a db section: one per category, or
    one where db.class_agnostic_corners (corners) or db.classes_from "boxes"
    (centres) takes the category away from the keypoints. The network, the
    sampler and the batch-size estimate all read them here."""
    corner = 1 if db["class_agnostic_corners"] else db["categories"]
    center = 1 if db["classes_from"] == "boxes" else db["categories"]
    return corner, center


def network_output_size(input_size) -> list[int]:
    """[height, width] of the heatmaps for an input of [height, width]."""
    return [(side - 1) // NETWORK_STRIDE + 1 for side in input_size]


def _arange(start, stop, step):
    values, v, i = [], start, 0
    while v < stop - 1e-9:
        values.append(round(v, 6))
        i += 1
        v = start + i * step
    return values


def unknown_name(name, schema, what, key=None):
    """'<name>: unknown <what>', with the closest of `schema`'s names to `key`
    (or `name`) when one is close (config files and --set of the detector and
    of the recognizer)."""
    key = key or name
    hint = difflib.get_close_matches(key, list(schema), n=1, cutoff=0.5)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    return f"{name}: unknown {what}{extra}"


def _key_problem(section_name, key, schema=None) -> str:
    """Why `key` is not a key of `section_name` (a retired original key, a key
    of another section, or a typo with the closest valid name)."""
    schema = schema or SCHEMA
    if schema is SCHEMA and key in _RETIRED:
        return f"{section_name}.{key}: not used in this project: {_RETIRED[key]}"
    for other in schema:
        if other != section_name and key in schema[other]:
            return f"{section_name}.{key}: belongs in the {other} section"
    return unknown_name(f"{section_name}.{key}", schema[section_name], "key", key)


def parse_assignments(assignments, schema=None, example="db.top_k=700") -> dict:
    """The --set arguments of train.py, test.py and demo.py as `load_config`
    overrides: ["db.top_k=700", "system.learning_rate=1e-4"] ->
    {"db": {"top_k": 700}, "system": {"learning_rate": 0.0001}}; with `schema`
    (and an `example` of it) those of another config (train_reader.py).

    A value is read as JSON (700, 1e-4, true, null, [0.5, 1], "text") or,
    when it is not JSON, taken as a string (db.nms_algorithm=nms). Each key
    and value is checked against SCHEMA here, so a mistake names the --set
    that made it (a misspelt key with the closest valid one); the checks
    between keys run when the config loads. ConfigError lists every problem."""
    schema = schema or SCHEMA
    overrides, problems = {}, []
    for assignment in assignments:
        name, equals, text = assignment.partition("=")
        section_name, dot, key = name.strip().partition(".")
        if not equals or not dot or not key:
            found = [s for s, keys in schema.items() if name.strip() in keys]
            shown = f"{found[0]}.{name.strip()}={text or '...'}" if found else example
            problems.append(f"--set {assignment}: write section.key=value, e.g. {shown}")
            continue
        if section_name not in schema:
            problems.append("--set " + unknown_name(section_name, schema, "section"))
            continue
        if key not in schema[section_name]:
            problems.append("--set " + _key_problem(section_name, key, schema))
            continue
        try:
            value = strict_json.loads(text)
        except json.JSONDecodeError:
            value = text
        except strict_json.JSONInputError as e:  # 1000 brackets: json's RecursionError
            shown = text if len(text) <= 40 else text[:37] + "..."
            problems.append(f"--set {section_name}.{key}={shown}: {e}")
            continue
        try:
            schema[section_name][key].check(value)
        except ValueError as e:
            problems.append(f"--set {section_name}.{key}={text}: {e}")
            continue
        overrides.setdefault(section_name, {})[key] = value
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else
                          f"{len(problems)} problems in --set:\n  " + "\n  ".join(problems))
    return overrides


def _copy(value):
    return json.loads(json.dumps(value))


def describe_schema() -> str:
    """Every key with its default and meaning (for the README and --help)."""
    lines = []
    for section, schema in SCHEMA.items():
        for key, spec in schema.items():
            lines.append(f"{section}.{key} = {json.dumps(spec.default)}: {spec.doc}")
    return "\n".join(lines)
