"""The recognizer's settings: `config/reader/<Name>.json`, validated once into
a read-only object, as config.py does for the detector.

    cfg = load_reader_config("CRNN-tiny")      # config/reader/CRNN-tiny.json
    cfg.system.batch_size, cfg.reader.crop_height
    cfg.snapshot_dir                           # <cache_dir>/reader/<name>/

Why a schema of its own and not a third section of config.py: config.py's
loader is the detector's, built around its two sections and the checks
between them (heatmap sizes against the input, categories against names),
and every file in config/ is a detector config that the test suite builds a
network from. A recognizer config shares none of those keys, so it lives in
config/reader/ with this schema, in the same shape (one `Key` per setting
with its default, check and meaning), read and checked by config.py's own
functions (`read_with_base`: `"base"` to start from another reader config;
`check_sections`: the value checks, an unknown key named with the closest
valid one, overrides checked like the file); only the checks between keys
are the recognizer's.
"""

from __future__ import annotations

import json
import os

from config import (
    CONFIG_DIR,
    PROJECT_ROOT,
    Key,
    Section,
    check_sections,
    choice,
    flat_overrides,
    integer,
    number,
    parse_assignments,
    raise_problems,
    read_with_base,
    string,
)

READER_CONFIG_DIR = os.path.join(CONFIG_DIR, "reader")

# Characters that occur in the synthetic set's printed problems (docs/ks-format.md,
# "What each box reads"): the space is the inside of the blank "( )"; brackets,
# the decimal point, ≈ and the units of compare problems and conversions.
PRINTED_ALPHABET = "0123456789+−×÷=○() .≈千米分厘毫元角时秒吨克"
# and in the answers: numbers, decimals, remainders (3……2), relations
ANSWER_ALPHABET = "0123456789<>=.…"


def _alphabet(value):
    value = string(value)
    if len(set(value)) != len(value):
        repeated = sorted({c for c in value if value.count(c) > 1})
        raise ValueError(f"lists {''.join(repeated)!r} more than once")
    return value


def _channels(value):
    if (not isinstance(value, list) or not value
            or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in value)):
        raise ValueError(f"must be a non-empty list of positive integers, got {value!r}")
    return list(value)


SYSTEM = {
    "data_dir": Key("data/ks", string,
                    "folder holding ks_<split>.txt and its side file ks_<split>_text.jsonl"),
    "cache_dir": Key("cache", string, "snapshots go to <cache_dir>/reader/<config name>/"),
    "train_split": Key("train", string, "split trained on (ks_<train_split>_text.jsonl)"),
    "val_split": Key("val", string, "split read at each snapshot for exact-match accuracy"),
    "val_pages": Key(10, integer(0), "validation pages read at each snapshot (0: all)"),
    "batch_size": Key(32, integer(1), "crops per training step"),
    "pages_per_batch": Key(4, integer(1),
                           "pages a step's crops are cut from (a page is decoded once per step)"),
    "answer_weight": Key(1.0, number(0, low_open=True),
                         "weight of the answer head's CTC loss (the printed head's is 1)"),
    "learning_rate": Key(0.003, number(0, low_open=True), "peak learning rate (Adam)"),
    "weight_decay": Key(0.0, number(0), "Adam weight decay"),
    "warmup_iter": Key(100, integer(0), "linear learning-rate warm-up over this many steps"),
    "max_iter": Key(4000, integer(1),
                    "training steps; the learning rate follows a cosine from the peak to 0"),
    "snapshot": Key(1000, integer(1), "steps between snapshots (and validation)"),
    "seed": Key(317, integer(0), "seed of the initial weights and of every crop drawn"),
    "precision": Key("auto", choice("auto", "fp32", "bf16"),
                     "training: bf16 autocast where the hardware computes bf16 natively "
                     "(auto, as the detector's system.precision), or fp32, or bf16; the CTC "
                     "losses stay in fp32, and reading is in fp32"),
}

READER = {
    "crop_height": Key(32, integer(8), "network input height, px: a crop is resized to it"),
    "crop_width": Key(256, integer(16),
                      "network input width, px: a crop keeps its aspect ratio up to this width "
                      "(wider ones are squeezed: on the synthetic pages 0.8 % at 32 x 256), the "
                      "rest is paper-coloured padding"),
    "margin_x": Key(0.4, number(0),
                    "context added left and right of a box, in box heights (a found box may cut "
                    "a digit off)"),
    "margin_y": Key(0.15, number(0), "context added above and below a box, in box heights"),
    "jitter_x": Key(0.3, number(0),
                    "training: each of a box's left and right sides moves by up to this many box "
                    "heights, as the detector's boxes do"),
    "jitter_y": Key(0.12, number(0),
                    "training: each of a box's top and bottom moves by up to this many box heights"),
    "scale_jitter": Key(0.25, number(0, 0.9),
                        "training: the crop is shrunk by up to this fraction and enlarged back "
                        "(small print photographed from further away)"),
    "channels": Key([16, 32, 64, 96], _channels,
                    "convolution blocks' widths; every block halves the height, the first two "
                    "the width too (a character is read from 4-pixel columns of the crop)"),
    "stem": Key("pool", choice("pool", "stride"),
                "the first block: 3x3 convolution then 2x2 max-pool (pool), or a stride-2 "
                "3x3 convolution (stride: the same output for a quarter of the work)"),
    "hidden": Key(96, integer(1), "width of the sequence model (the LSTM's per direction)"),
    "sequence": Key("lstm", choice("lstm", "conv"),
                    "along the columns: a bidirectional LSTM (CRNN), or two 1-D convolutions"),
    "printed_alphabet": Key(PRINTED_ALPHABET, _alphabet,
                            "characters the printed-part head reads (CTC blank added)"),
    "answer_alphabet": Key(ANSWER_ALPHABET, _alphabet,
                           "characters the handwritten-answer head reads (CTC blank added)"),
    "right_answer_prior": Key(3.0, number(0),
                              "grading: an answer is taken to be the right one when the crop "
                              "makes that at most this many nats less likely than the best "
                              "reading (pupils are mostly right; 0: the best reading as it is; "
                              "read from the config file, not the snapshot)"),
    "min_box_size": Key(4, integer(1),
                        "boxes narrower or lower than this many pixels are unreadable"),
    "second_reader": Key("ppocr", choice("ppocr", "none"),
                         "grading: a second opinion on the problems the recognizer is not sure "
                         "of, PP-OCR's line recognizer (reader/ppocr.py; rapidocr-onnxruntime's "
                         "model, `pip install --no-deps -r requirements-ocr.txt`; without it "
                         "grade.py says so and reads with the recognizer alone), or none; read "
                         "from the config file, not the snapshot"),
    "settled_confidence": Key(0.5, number(0, 1),
                              "grading: a problem the recognizer reads as answered rightly or "
                              "as unanswered, its printed part and answer together at least "
                              "this probable under the heads' CTC, is settled without a second "
                              "opinion (on 12 synthetic validation pages, 90 % of the problems "
                              "at 0.5, 99.9 % of them read exactly; read from the config file)"),
    "second_reader_share": Key(0.5, number(0, 1),
                               "grading: where PP-OCR is asked, a reading's probability is a "
                               "mixture of the two readers', this much PP-OCR's (1: PP-OCR "
                               "decides, the recognizer only offers readings; read from the "
                               "config file)"),
    "line_margin_x": Key(0.25, number(0),
                         "PP-OCR's crop: context left and right of a box, in box heights"),
    "line_margin_y": Key(0.1, number(0),
                         "PP-OCR's crop: context above and below a box, in box heights"),
}

SCHEMA = {"system": SYSTEM, "reader": READER}


class ReaderConfig:
    """A loaded, validated, read-only recognizer config."""

    def __init__(self, name: str, path: str | None, system: dict, reader: dict,
                 overrides: dict | None = None):
        self.name = name
        self.path = path
        self.system = Section("system", system)
        self.reader = Section("reader", reader)
        self.overrides = dict(overrides or {})

    @property
    def snapshot_dir(self) -> str:
        return os.path.join(self.system.cache_dir, "reader", self.name)

    def to_dict(self) -> dict:
        return {"system": json.loads(json.dumps(dict(self.system))),
                "reader": json.loads(json.dumps(dict(self.reader)))}

    def __repr__(self):
        return f"ReaderConfig({self.name!r})"


def reader_config_path(name_or_path: str) -> str:
    """`CRNN-tiny` -> config/reader/CRNN-tiny.json; a path to a .json is kept."""
    if name_or_path.endswith(".json") or os.sep in name_or_path:
        return os.path.abspath(name_or_path)
    return os.path.join(READER_CONFIG_DIR, name_or_path + ".json")


def available_reader_configs() -> list[str]:
    if not os.path.isdir(READER_CONFIG_DIR):
        return []
    return sorted(f[:-5] for f in os.listdir(READER_CONFIG_DIR) if f.endswith(".json"))


def load_reader_config(name_or_path: str, overrides: dict | None = None) -> ReaderConfig:
    """Load and check a recognizer config by name (config/reader/<name>.json) or path."""
    path = reader_config_path(name_or_path)
    raw = read_with_base(path, name_or_path, locate=reader_config_path,
                         available=available_reader_configs, kind="reader config",
                         schema=SCHEMA)
    name = os.path.splitext(os.path.basename(path))[0]
    return reader_config_from_dict(raw, name, path, overrides)


def reader_config_from_snapshot(settings: dict, name: str) -> ReaderConfig:
    """The config a snapshot was trained with (its "config" entry)."""
    return reader_config_from_dict(settings, name, None)


def reader_config_from_dict(raw: dict, name: str, path: str | None = None,
                            overrides: dict | None = None) -> ReaderConfig:
    where = path or f"<reader config {name}>"
    sections, problems = check_sections(raw, SCHEMA, overrides)
    if not problems:
        reader = sections["reader"]
        # every block halves the height (reader/model.py): at least one row must remain
        if reader["crop_height"] < 2 ** len(reader["channels"]):
            problems.append(f"reader.crop_height: {reader['crop_height']} px is too low for "
                            f"{len(reader['channels'])} halvings of the height (reader.channels); "
                            f"at least {2 ** len(reader['channels'])}")
        if reader["crop_width"] < 4 * reader["crop_height"]:
            problems.append(f"reader.crop_width: at least 4 x crop_height "
                            f"({4 * reader['crop_height']}), a problem is a long line")
    raise_problems(where, problems)
    system = sections["system"]
    for key in ("data_dir", "cache_dir"):
        if not os.path.isabs(system[key]):
            system[key] = os.path.normpath(os.path.join(PROJECT_ROOT, system[key]))
    return ReaderConfig(name, path, system, sections["reader"], flat_overrides(overrides))


def parse_reader_assignments(assignments) -> dict:
    """--set section.key=value (train_reader.py) -> overrides, checked against SCHEMA."""
    return parse_assignments(assignments, SCHEMA, example="system.max_iter=4000")

