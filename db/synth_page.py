"""One synthetic 口算 page: layout, printing, handwriting, clutter, camera (see db/synth.py).

`render_page(seed, split, index)` draws one worksheet as specified in
docs/ks-format.md and returns the picture with one tight box per
problem. The page model is described in db/synth.py's docstring; this module
is its implementation. Everything random comes from one numpy generator seeded
by (seed, split, index), so a page does not depend on which worker drew it.

Boxes are exact by construction: every problem's ink is also written into a
uint16 label map (problem i -> i + 1) wherever its coverage reaches
LABEL_ALPHA; the map is warped with the page's homography (nearest
neighbour) and each box is the bounding box of its label, with x2/y2
exclusive (a box over pixel columns 10..19 is x1=10, x2=20).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import zlib

import cv2
import numpy as np

from db import synth_fonts, synth_handwriting, synth_problems
from db.synth_fonts import Glyph, compose, face_for
from db.synth_realism import Realism, feature_rng

# Coverage from which a pixel counts as a problem's ink (and enters its box).
LABEL_ALPHA = 0.4


class Kind(enum.IntEnum):
    """Problem categories, numbered as in the table of ks-format.md."""
    ADD = 0
    SUB = 1
    MUL = 2
    DIV = 3
    COMPARE = 4
    FILL = 5


OPERATOR_SIGNS = {Kind.ADD: "+", Kind.SUB: "−", Kind.MUL: "×", Kind.DIV: "÷"}


@dataclasses.dataclass(frozen=True)
class SynthPage:
    image: np.ndarray            # (H, W, 3) uint8 BGR, as it goes to the JPEG encoder
    boxes: np.ndarray            # (N, 4) int32 x1, y1, x2, y2; x2/y2 exclusive edges
    classes: np.ndarray          # (N,) int64, Kind values
    texts: tuple[str, ...]       # one readable line per box, e.g. "23 + 45 = 68"
    jpeg_quality: int
    # Only with keep_debug=True (tests): the warped page before lighting, blur and
    # noise, the warped label map (problem i's ink = i + 1) and where the paper is.
    clean: np.ndarray | None = None     # (H, W, 3) uint8
    labels: np.ndarray | None = None    # (H, W) uint16
    paper: np.ndarray | None = None     # (H, W) bool
    # What a reader should read in each box (db/synth.py writes them to ks_<split>_text.jsonl):
    printed: tuple[str, ...] = ()    # the printed problem, e.g. "12+7=", "( )+5=7", "7○3"
    answers: tuple[str, ...] = ()    # the handwritten answer as written, "" when unanswered
    solutions: tuple[str, ...] = ()  # the right answer: a number or, for compare, > < =


@dataclasses.dataclass(frozen=True)
class PageSize:
    """Ranges for one mode of the generator (full pages or the small test pages)."""
    width: tuple[int, int]
    problems: tuple[int, int]
    min_digit: int          # smallest printed digit height, px
    max_digit_frac: tuple[float, float]  # largest printed digit height, as a fraction of the width


FULL_SIZE = PageSize(width=(600, 1600), problems=(20, 128), min_digit=9,
                     max_digit_frac=(0.018, 0.03))
SMALL_SIZE = PageSize(width=(256, 400), problems=(8, 30), min_digit=7,
                      max_digit_frac=(0.03, 0.05))
# The held-out style's pages (db/synth_style.py): smaller print, as on pages
# photographed from further away (problems about 10-16 px tall).
HOLDOUT_SIZE = PageSize(width=(600, 1600), problems=(20, 128), min_digit=7,
                        max_digit_frac=(0.008, 0.013))
CROWDED_PROBLEMS = (129, 160)   # the pages beyond the usual per-image object limit
CROWDED_RATE = 0.08
CROWDED_MIN_WIDTH = 900         # so 160 problems still print legibly


def page_rng(seed: int, split: str, index: int) -> np.random.Generator:
    # crc32, not hash(): Python salts str hashes per process.
    return np.random.default_rng([int(seed), zlib.crc32(split.encode("utf-8")), int(index)])


# ---------------------------------------------------------------------------------------
# Problems


@dataclasses.dataclass
class Problem:
    kind: Kind
    tokens: list            # printed tokens: str, or ("slot", style) / ("circle",) / ("unit", name, font)
    answer: str             # what the pupil's pen draws (wrong now and then)
    right_answer: str       # in the side file's notation (a remainder as 3……2)
    answered: bool

    @property
    def correct(self) -> bool:
        return self.written_answer() == self.right_answer

    def text(self) -> str:
        parts = []
        for token in self.tokens:
            if isinstance(token, str):
                parts.append(token)
            elif token[0] == "circle":
                parts.append(f"○[{self.written() if self.answered else ''}]")
            elif token[0] == "unit":
                parts.append(token[1])
            else:
                parts.append(f"({self.written() if self.answered else ''})")
        return " ".join(parts)

    def printed(self) -> str:
        """The printed problem alone, without spaces: "12+7=", "( )+5=7", "7○3", "7×8○54",
        "18÷3+9=", "7+(10+5)=", "0.35+0.45=", "447÷5≈", "3分米○3厘米", "3米=( )厘米".

        Signs as printed: + − (U+2212) × ÷ = ≈ ○ and brackets. Where the answer
        goes is not text: the answer's place after "=" or "≈" (an underline,
        parentheses or nothing) is left out, and a blank inside the expression
        is "( )" however it is printed (parentheses or an underline).
        """
        parts = []
        for n, token in enumerate(self.tokens):
            if isinstance(token, str):
                parts.append(token)
            elif token[0] == "circle":
                parts.append("○")
            elif token[0] == "unit":
                parts.append(token[1])
            elif n + 1 < len(self.tokens):  # a blank inside: a fill problem's
                parts.append("( )")
        return "".join(parts)

    def written_answer(self) -> str:
        """The answer drawn, in the side file's notation (a remainder's dots as ……)."""
        return self.answer.replace(synth_problems.REMAINDER_DRAWN, synth_problems.REMAINDER)

    def written(self) -> str:
        """The handwritten answer as written (possibly wrong); "" when unanswered."""
        return self.written_answer() if self.answered else ""


def _operation(op: Kind, level: int, rng) -> tuple[int, int, int]:
    """a op b = c with sizes that suit the page's level (0: within 20, 1: 100, 2: 1000)."""
    limit = (20, 100, 1000)[level]
    if op == Kind.ADD:
        c = int(rng.integers(2, limit + 1))
        a = int(rng.integers(1, c))
        return a, c - a, c
    if op == Kind.SUB:
        a = int(rng.integers(2, limit + 1))
        b = int(rng.integers(1, a + 1))
        return a, b, a - b
    if op == Kind.MUL:
        if level == 0:
            a, b = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        elif level == 1:
            a, b = int(rng.integers(2, 10)), int(rng.integers(10, 34))
        else:
            a, b = int(rng.integers(2, 10)), int(rng.integers(12, 112))
        if rng.random() < 0.5:
            a, b = b, a
        return a, b, a * b
    divisor = int(rng.integers(2, 10))
    quotient = int(rng.integers(1, (10, 31, 121)[level]))
    return divisor * quotient, divisor, quotient


def _wrong(value: int, rng) -> int:
    wrong = value + int(rng.choice([-10, -2, -1, 1, 1, 2, 10]))
    return wrong if wrong >= 0 and wrong != value else value + 1


def _make_problem(kind: Kind, level: int, answer_style: str, answered: bool, wrong_rate: float,
                  rng) -> Problem:
    if kind in OPERATOR_SIGNS:
        a, b, c = _operation(kind, level, rng)
        tokens = [str(a), OPERATOR_SIGNS[kind], str(b), "=", ("slot", answer_style)]
        right = c
    elif kind == Kind.FILL:
        op = Kind(int(rng.integers(0, 4)))
        a, b, c = _operation(op, level, rng)
        style = "paren" if rng.random() < 0.8 else "underline"
        if rng.random() < 0.5:
            tokens = [("slot", style), OPERATOR_SIGNS[op], str(b), "=", str(c)]
            right = a
        else:
            tokens = [str(a), OPERATOR_SIGNS[op], ("slot", style), "=", str(c)]
            right = b
    else:
        sides = []
        if rng.random() < 0.3:  # one side an expression: "7 × 8 ○ 54"
            op = Kind(int(rng.integers(0, 4)))
            a, b, value = _operation(op, level, rng)
            expression = [str(a), OPERATOR_SIGNS[op], str(b)]
            other = value if rng.random() < 0.25 else max(0, value + int(rng.integers(-9, 10)))
            sides = [(expression, value), ([str(other)], other)]
            if rng.random() < 0.5:
                sides.reverse()
        else:
            a = int(rng.integers(0, (20, 100, 1000)[level] + 1))
            b = a if rng.random() < 0.15 else int(rng.integers(0, (20, 100, 1000)[level] + 1))
            sides = [([str(a)], a), ([str(b)], b)]
        (left, lv), (right_side, rv) = sides
        tokens = left + [("circle",)] + right_side
        relation = ">" if lv > rv else "<" if lv < rv else "="
        wrong_relation = str(rng.choice([r for r in "<>=" if r != relation]))
        answer = wrong_relation if rng.random() < wrong_rate else relation
        return Problem(kind, tokens, answer, relation, answered)
    answer = str(_wrong(right, rng)) if rng.random() < wrong_rate else str(right)
    return Problem(kind, tokens, answer, str(right), answered)


# ---------------------------------------------------------------------------------------
# Drawing on the page


class _Canvas:
    """The flat page (before the camera); ink multiplies the paper.

    For each problem, the leftmost and rightmost ink pixel (coverage >= LABEL_ALPHA)
    of every row is kept: they include every vertex of the ink's convex hull, and a
    homography takes its extremes at hull vertices, so warping these few points
    gives the same box as warping the whole label map. With keep_masks the full
    ink masks are kept too, to rebuild the label map for tests.
    """

    def __init__(self, width: int, height: int, paper_bgr, keep_masks: bool = False):
        row = np.empty((1, width, 3), np.uint8)
        row[:] = paper_bgr
        self.page = np.repeat(row, height, axis=0)     # (H, W, 3), faster than a broadcast fill
        self.ink_points: dict[int, list[np.ndarray]] = {}
        self.ink_masks: list[tuple[int, int, int, np.ndarray]] | None = [] if keep_masks else None
        self.width, self.height = width, height

    def paint(self, ink: Glyph, x: float, y: float, colour, opacity: float, label: int = 0,
              clip=None):
        """Multiply `ink` (pen origin at x, baseline y) into the page; label its ink pixels."""
        if ink.mask.size == 0:
            return
        h, w = ink.mask.shape
        left, top = int(round(x)) + ink.left, int(round(y)) + ink.top
        cx0, cy0, cx1, cy1 = clip if clip is not None else (0, 0, self.width, self.height)
        x0, y0 = max(left, cx0, 0), max(top, cy0, 0)
        x1, y1 = min(left + w, cx1, self.width), min(top + h, cy1, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        mask = ink.mask[y0 - top:y1 - top, x0 - left:x1 - left]
        region = self.page[y0:y1, x0:x1]
        table = _transmission_table(tuple(int(c) for c in colour), float(opacity))
        # cv2.LUT on a 3-channel copy is several times faster than numpy's table[mask].
        transmission = cv2.LUT(cv2.merge([mask, mask, mask]), table)
        cv2.multiply(region, transmission, dst=region, scale=1.0 / 255.0)
        if label:
            ink = mask >= LABEL_ALPHA * 255.0 / opacity                               # (h, w)
            rows = np.flatnonzero(ink.any(axis=1))
            if rows.size == 0:
                return
            inked_rows = ink[rows]
            first = inked_rows.argmax(axis=1)
            last = inked_rows.shape[1] - 1 - inked_rows[:, ::-1].argmax(axis=1)
            points = np.empty((2 * rows.size, 2), np.float32)                       # (K, 2) x, y
            points[:rows.size, 0], points[rows.size:, 0] = first + x0, last + x0
            points[:rows.size, 1] = points[rows.size:, 1] = rows + y0
            self.ink_points.setdefault(label, []).append(points)
            if self.ink_masks is not None:
                self.ink_masks.append((label, x0, y0, ink))

    def label_map(self) -> np.ndarray:
        """(H, W) uint16: problem i's ink pixels hold i + 1 (needs keep_masks)."""
        if self.ink_masks is None:
            raise ValueError("label_map() needs a canvas made with keep_masks=True")
        labels = np.zeros((self.height, self.width), np.uint16)
        for label, x0, y0, ink in self.ink_masks:
            h, w = ink.shape
            labels[y0:y0 + h, x0:x0 + w][ink] = label
        return labels


@functools.lru_cache(maxsize=1024)
def _transmission_table(colour: tuple, opacity: float) -> np.ndarray:
    """(256, 1, 3) uint8: how much light each coverage value of this ink lets through, x255."""
    coverage = np.arange(256, dtype=np.float32)[:, None] / 255.0 * opacity
    absorb = 1.0 - np.asarray(colour, np.float32)[None, :] / 255.0
    return np.rint(255.0 * (1.0 - coverage * absorb)).astype(np.uint8).reshape(256, 1, 3)


def _text_glyph(face, text: str, tracking: float = 0.0) -> Glyph:
    placed, x = [], 0.0
    for char in text:
        glyph = face.glyph(char)
        placed.append((glyph, x, 0.0))
        x += glyph.advance + tracking
    return compose(placed)


def _bar(length: float, thickness: float, top: float) -> Glyph:
    """A printed line (underline, answer line) of `length` px whose top is `top` px below the baseline."""
    t = max(1, int(round(thickness)))
    return Glyph(np.full((t, max(1, int(round(length)))), 255, np.uint8), 0, int(round(top)),
                 float(length))


@dataclasses.dataclass(frozen=True)
class Pupil:
    """How one pupil writes: the page's answers all come from the same hand and pen."""
    spec: tuple
    colour: tuple
    opacity: float
    size_ratio: float     # handwritten digit height / printed digit height
    slant: float          # shear, x shift per px of height
    jitter: float         # baseline wobble, in digit heights
    rotate: float         # per-glyph rotation spread, degrees
    grow: int             # pen width: dilation in px
    grain: bool           # pencil: patchy strokes
    # realism feature mnist_digits (db/synth_realism.py): one MNIST sample per
    # digit, the pen width as a fraction of the digit height, where the answer
    # goes after "=" (gap in digit heights) and how far its foot drops below
    # the print's baseline (in its own heights); None: a handwriting font
    digits: tuple | None = None
    stroke_ratio: float = 0.0
    gap: tuple = (0.1, 0.4)
    drop: tuple = (-0.2, 0.05)


def _sample_pupil(rng, fonts, digit_px_hint: float) -> Pupil:
    if fonts.handwriting:
        spec = ("ttf", fonts.handwriting[int(rng.integers(len(fonts.handwriting)))])
    else:
        spec = ("hershey", synth_fonts.HERSHEY_HANDWRITING[int(rng.integers(2))],
                float(rng.uniform(0.05, 0.11)))
    pen = rng.choice(["black", "blue", "pencil"], p=[0.35, 0.4, 0.25])
    if pen == "black":
        colour, opacity = tuple(int(v) for v in rng.integers(15, 50, 3)), float(rng.uniform(0.85, 1.0))
    elif pen == "blue":
        colour = (int(rng.integers(130, 200)), int(rng.integers(40, 100)), int(rng.integers(10, 50)))
        opacity = float(rng.uniform(0.8, 1.0))
    else:
        grey = int(rng.integers(45, 95))
        colour, opacity = (grey, grey, grey + 5), float(rng.uniform(0.7, 0.9))
    grow_choices = [0, 0, 1] if digit_px_hint < 14 else [0, 1, 1, 2]
    return Pupil(spec=spec, colour=colour, opacity=opacity,
                 size_ratio=float(rng.uniform(0.9, 1.3)),
                 slant=float(rng.uniform(-0.1, 0.35)),
                 jitter=float(rng.uniform(0.02, 0.08)),
                 rotate=float(rng.uniform(0.0, 8.0)),
                 grow=int(rng.choice(grow_choices)),
                 grain=pen == "pencil")


def _child_pupil(pupil: Pupil, rng, pool) -> Pupil:
    """The pupil of realism feature mnist_digits: MNIST digits, written as
    large, thin or faint as children write them (db/synth_realism.py)."""
    # No fainter pencil than grey 50-100, and no stroke under 0.07 of a digit's
    # height: with grey 100-150 at 45-75 % and strokes from 0.05, a share of the
    # answers all but vanished once a page was shrunk and photographed, yet
    # stayed in the boxes and the texts (the recognizer then read 71 % of the
    # validation answers; BENCHMARKS.md, realism-ablation notes).
    pen = rng.choice(["black", "blue", "pencil"], p=[0.25, 0.35, 0.4])
    if pen == "black":
        colour, opacity = tuple(int(v) for v in rng.integers(15, 60, 3)), float(rng.uniform(0.8, 1.0))
    elif pen == "blue":
        colour = (int(rng.integers(120, 210)), int(rng.integers(40, 120)), int(rng.integers(10, 70)))
        opacity = float(rng.uniform(0.7, 1.0))
    else:
        grey = int(rng.integers(50, 100))
        colour = (grey, grey, grey + 5)
        opacity = float(rng.uniform(0.65, 0.9))
    return dataclasses.replace(
        pupil, digits=synth_handwriting.choose_digits(pool, rng),
        stroke_ratio=float(math.exp(rng.uniform(math.log(0.07), math.log(0.16)))),
        size_ratio=float(math.exp(rng.uniform(math.log(0.9), math.log(1.8)))),
        colour=colour, opacity=opacity, grain=pen == "pencil",
        slant=float(rng.uniform(-0.15, 0.35)), rotate=float(rng.uniform(0.0, 10.0)),
        jitter=float(rng.uniform(0.02, 0.1)), grow=0,
        gap=(float(rng.uniform(-0.15, 0.3)), float(rng.uniform(0.3, 0.9))),
        drop=(float(rng.uniform(-0.1, 0.15)), float(rng.uniform(0.15, 0.35))))


def _pupil_face(pupil: Pupil, digit_px: float):
    face = face_for(pupil.spec, digit_px)
    if pupil.digits is None:
        return face
    return synth_handwriting.mnist_face(face, pupil.digits, face.digit_height,
                                        round(pupil.stroke_ratio, 3))


def _rotated(glyph: Glyph, degrees: float) -> Glyph:
    if glyph.mask.size == 0 or abs(degrees) < 0.5:
        return glyph
    h, w = glyph.mask.shape
    pad = int(math.ceil(0.5 * max(h, w) * abs(math.sin(math.radians(degrees))))) + 1
    padded = cv2.copyMakeBorder(glyph.mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    centre = (padded.shape[1] / 2.0, padded.shape[0] / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    mask = cv2.warpAffine(padded, matrix, (padded.shape[1], padded.shape[0]), flags=cv2.INTER_LINEAR)
    return Glyph(mask, glyph.left - pad, glyph.top - pad, glyph.advance)


_ROTATED_CACHE: dict = {}
_ROTATION_STEP = 2.0  # degrees: rotated glyphs are cached at this resolution


def _rotated_glyph(face, char: str, degrees: float) -> Glyph:
    """face.glyph(char) turned by about `degrees` (cached: handwriting turns many glyphs)."""
    step = int(round(max(-12.0, min(12.0, degrees)) / _ROTATION_STEP))
    if step == 0:
        return face.glyph(char)
    key = (face.key, char, step)
    glyph = _ROTATED_CACHE.get(key)
    if glyph is None:
        if len(_ROTATED_CACHE) > 200_000:  # bound the memory of very long runs
            _ROTATED_CACHE.clear()
        glyph = _ROTATED_CACHE[key] = _rotated(face.glyph(char), step * _ROTATION_STEP)
    return glyph


def _sheared(glyph: Glyph, slant: float) -> Glyph:
    """Lean the ink right by `slant` px per px of height above the baseline."""
    if glyph.mask.size == 0 or abs(slant) < 0.02:
        return glyph
    h, w = glyph.mask.shape
    shift_top, shift_bottom = -slant * glyph.top, -slant * (glyph.top + h)
    new_left = int(math.floor(glyph.left + min(shift_top, shift_bottom)))
    new_w = w + int(math.ceil(abs(slant) * h)) + 2
    matrix = np.float32([[1, -slant, glyph.left + shift_top - new_left], [0, 1, 0]])
    mask = cv2.warpAffine(glyph.mask, matrix, (new_w, h), flags=cv2.INTER_LINEAR)
    return Glyph(mask, new_left, glyph.top, glyph.advance)


def _handwrite(text: str, pupil: Pupil, digit_px: float, rng) -> Glyph:
    face = _pupil_face(pupil, digit_px)
    placed, x = [], 0.0
    for char in text:
        glyph = _rotated_glyph(face, char, rng.normal(0.0, pupil.rotate))
        placed.append((glyph, x, rng.normal(0.0, pupil.jitter) * face.digit_height))
        x += glyph.advance * float(rng.uniform(0.9, 1.1))
    ink = _sheared(compose(placed, pad=pupil.grow + 1), pupil.slant + rng.normal(0.0, 0.04))
    mask = ink.mask
    if pupil.grow:
        size = pupil.grow + 1
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    if pupil.grain:
        mask = (mask * rng.uniform(0.7, 1.0, mask.shape)).astype(np.uint8)
    return Glyph(mask, ink.left, ink.top, ink.advance)


def _red_mark(kind: str, size: float, thickness: int, rng) -> Glyph:
    """A teacher's tick or cross, pen origin at its lower-left."""
    s = size
    if kind == "tick":
        strokes = [[(0.0, -0.45 * s), (0.3 * s, 0.0), (0.95 * s, -1.0 * s)]]
    else:
        strokes = [[(0.0, -0.9 * s), (0.8 * s, 0.0)], [(0.8 * s, -0.95 * s), (0.05 * s, 0.0)]]
    strokes = [[(x + rng.normal(0, 0.05 * s), y + rng.normal(0, 0.05 * s)) for x, y in st]
               for st in strokes]
    pad = thickness + 2
    xs = [p[0] for st in strokes for p in st]
    ys = [p[1] for st in strokes for p in st]
    x0, y0 = min(xs) - pad, min(ys) - pad
    w, h = int(math.ceil(max(xs) - x0 + pad)), int(math.ceil(max(ys) - y0 + pad))
    canvas = np.zeros((h, w), np.uint8)
    for stroke in strokes:
        points = np.int32([[(x - x0) * 4, (y - y0) * 4] for x, y in stroke])
        cv2.polylines(canvas, [points], False, 255, thickness, cv2.LINE_AA, shift=2)
    return Glyph(canvas, int(math.floor(x0)), int(math.floor(y0)), float(w))


# ---------------------------------------------------------------------------------------
# Layout


_TITLES_CJK = ("口算练习", "口算题卡", "20以内加减法口算", "100以内加减法口算", "表内乘法口算",
               "表内除法口算", "口算天天练", "数学口算每日一练", "比大小 填一填", "混合运算口算")
_TITLES_LATIN = ("Oral Arithmetic", "Mental Math Practice", "Daily Math Drill", "Arithmetic Sheet",
                 "Quick Sums", "Times Tables")
_FIELDS_CJK = ("姓名：", "班级：", "日期：", "用时：", "得分：")
_FIELDS_LATIN = ("Name:", "Class:", "Date:", "Time:", "Score:")
_PUPIL_NAMES = ("Li Ming", "Wang Fang", "Zhang Wei", "Liu Yang", "Chen Jing", "Zhao Lei", "Xu Li")


def _printable(face, text: str) -> bool:
    return all(face.has(c) or c in synth_fonts.PRIMITIVE_SIGNS for c in text)


@dataclasses.dataclass(frozen=True)
class _Blanks:
    """How a page prints its blanks and compare circles (realism feature
    workbook_print): fill blanks and answer places as boxes, the circle of a
    compare problem larger or drawn by hand."""
    box_fill: bool = False       # a fill problem's blank: a printed box, not parentheses
    box_answer: bool = False     # the answer's place after "=": a printed box
    circle_scale: float = 1.0
    drawn_circle: bool = False
    seed: int = 0


def _page_blanks(rng) -> _Blanks:
    """A page's blanks and circles under realism feature workbook_print."""
    drawn = rng.random() < 0.25
    return _Blanks(box_fill=rng.random() < 0.35, box_answer=rng.random() < 0.1,
                   circle_scale=float(rng.uniform(1.0, 1.6)) if rng.random() < 0.4 else 1.0,
                   drawn_circle=drawn, seed=int(rng.integers(2 ** 31)))


def _box_glyph(width: float, d: float, stroke: float) -> Glyph:
    """A printed box for a blank, `width` px wide, from 1.15 d above the baseline to 0.2 d below."""
    t = max(1, int(round(stroke)))
    w, h = max(3, int(round(width))), max(3, int(round(1.35 * d)))
    mask = np.zeros((h, w), np.uint8)
    cv2.rectangle(mask, (0, 0), (w - 1, h - 1), 255, t)
    return Glyph(mask, 0, int(round(-1.15 * d)), float(width))


def _drawn_circle(d: float, scale: float, stroke: float, seed: int) -> Glyph:
    """A compare circle drawn by hand: an uneven loop, not quite closed."""
    rng = np.random.default_rng(seed)
    radius = 0.62 * d * scale
    s = 4
    angles = np.linspace(0, 2 * math.pi * rng.uniform(1.02, 1.12), 48)
    wobble = 1 + 0.06 * np.sin(angles * rng.integers(2, 5) + rng.uniform(0, 6.3))
    ry = radius * rng.uniform(0.85, 1.0)
    xs, ys = radius * wobble * np.cos(angles), ry * wobble * np.sin(angles)
    pad = stroke + 2
    size = int(math.ceil(2 * radius * 1.1 + 2 * pad))
    canvas = np.zeros((size * s, size * s), np.uint8)
    points = np.int32(np.stack([(xs + size / 2) * s, (ys + size / 2) * s], axis=1))
    cv2.polylines(canvas, [points], False, 255, max(1, int(round(stroke * s))), cv2.LINE_AA)
    mask = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return Glyph(mask, 0, int(round(-0.5 * d - size / 2)), float(size + 0.15 * d))


def _problem_layout(problem: Problem, face, space: float, slot_width: float,
                    blanks: _Blanks | None = None):
    """Place a problem's printed tokens from pen x 0 on baseline 0.

    Returns (placed glyphs, answer anchor, end x) where the anchor says where the
    handwritten answer goes: ("after", x) to the right of x, or ("centre", x, y, size)
    centred on a point (inside parentheses, a box or the compare circle) of a space
    `size` px tall. `blanks`: how the page prints blanks and circles (None: as always).
    """
    d = face.digit_height
    blanks = blanks or _Blanks()
    placed, x, anchor = [], 0.0, None
    for n, token in enumerate(problem.tokens):
        if n:
            x += space
        if isinstance(token, str):
            for char in token:
                if char == "≈" and not face.has(char):   # no font's glyph: two waves
                    glyph = synth_problems.approx_sign(d, face.stroke)
                else:
                    glyph = face.glyph(char)
                placed.append((glyph, x, 0.0))
                x += glyph.advance
        elif token[0] == "unit":   # 米, 厘米, 元: from a CJK font at the print's size
            unit_face = face_for(("ttf", token[2]), d)
            for char in token[1]:
                glyph = unit_face.glyph(char)
                placed.append((glyph, x - 0.6 * space, 0.0))
                x += glyph.advance
            x -= 0.6 * space
        elif token[0] == "circle":
            circle = face.glyph("○")
            if circle.mask.shape[0] < d:  # some fonts' circle is a bullet: too small to write in
                circle = synth_fonts.primitive_sign("○", d, face.stroke)
            if blanks.drawn_circle:
                circle = _drawn_circle(d, blanks.circle_scale, max(1.0, face.stroke), blanks.seed)
            elif blanks.circle_scale != 1.0:
                circle = synth_fonts.primitive_sign("○", round(d * blanks.circle_scale),
                                                    face.stroke)
                circle = dataclasses.replace(circle, top=int(round(
                    -0.5 * d - circle.mask.shape[0] / 2)))
            placed.append((circle, x, 0.0))
            centre_y = circle.top + circle.mask.shape[0] / 2.0
            anchor = ("centre", x + circle.left + circle.mask.shape[1] / 2.0, centre_y,
                      circle.mask.shape[0])
            x += circle.advance
        else:
            style = token[1]
            inside = n + 1 < len(problem.tokens)   # a fill problem's blank, not the answer's place
            if (blanks.box_fill and inside and style in ("paren", "underline")) or \
                    (blanks.box_answer and not inside):
                style = "box"
            if style == "box":
                box = _box_glyph(slot_width + 0.3 * d, d, max(1.0, 0.8 * face.stroke))
                placed.append((box, x, 0.0))
                anchor = ("centre", x + box.advance / 2.0, -0.45 * d, d)
                x += box.advance
            elif style == "paren":
                opening, closing = face.glyph("("), face.glyph(")")
                placed.append((opening, x, 0.0))
                x += opening.advance
                anchor = ("centre", x + slot_width / 2.0, -0.5 * d, d)
                x += slot_width
                placed.append((closing, x, 0.0))
                x += closing.advance
            elif style == "underline":
                placed.append((_bar(slot_width, max(1.0, 0.7 * face.stroke), 0.2 * d), x, 0.0))
                anchor = ("after", x + 0.1 * d)
                x += slot_width
            else:  # free: nothing printed, the answer follows the "="
                anchor = ("after", x)
                x += slot_width
    return placed, anchor, x


def _problem_em_width(problem: Problem, face, space_em: float, slot_em: float,
                      blanks: _Blanks | None = None) -> float:
    d = face.digit_height
    answer_chars = len(problem.right_answer) + (1 if not problem.correct else 0)
    _, _, width = _problem_layout(problem, face, space_em * d, slot_em * d * max(answer_chars, 1),
                                  blanks)
    return width / d


def _choose_grid(n: int, em_width: float, grid_w: float, grid_h: float, size: PageSize,
                 max_digit: float, rng):
    """Pick (columns, digit height) among the column counts that print legibly; None if none does."""
    options = []
    for columns in range(1, 6):
        rows = math.ceil(n / columns)
        digit = min(grid_h / rows / 2.3, grid_w / columns * 0.92 / em_width, max_digit)
        if digit >= size.min_digit:
            options.append((columns, digit))
    if not options:
        return None
    return options[int(rng.integers(len(options)))]


# ---------------------------------------------------------------------------------------
# The page


def render_page(seed: int, split: str, index: int, small: bool = False, fonts=None,
                num_problems: int | None = None, clutter: bool = True, degrade: bool = True,
                keep_debug: bool = False, size: PageSize | None = None,
                realism: Realism | None = None, style_name: str = "main",
                content: synth_problems.Content | None = None) -> SynthPage:
    """Draw page `index` of `split` for `seed`.

    fonts: a synth_fonts.FontCatalog (None: discover the installed fonts).
    size: the page's size ranges (None: FULL_SIZE, or SMALL_SIZE with `small`).
    realism: what of real workbook photos the page imitates (db/synth_realism.py;
    None: everything); style_name: the style ("main", "holdout") whose share of
    the MNIST digits the pupils write with.
    content: the shares of the problem kinds beyond a op b (db/synth_problems.py;
    None: the default mix, synth_problems.PRESETS["mix"]; "basic" shares: none).
    num_problems: force the problem count (tests: e.g. a page above 128 problems).
    clutter=False leaves out everything that is not a problem (title, lines, marks,
    stains); degrade=False skips lighting, blur and noise (the camera warp stays).

    Each step draws from the page's one generator, in this order: changing
    the order, or what a step draws, changes every page of a seed
    (tests/test_synth_golden.py).
    """
    if fonts is None:
        fonts = synth_fonts.discover_fonts()
    rng = page_rng(seed, split, index)
    if size is None:
        size = SMALL_SIZE if small else FULL_SIZE

    realism = Realism() if realism is None else realism
    sheet = _draw_sheet(rng, size, small, num_problems)
    style = _draw_print_style(rng, fonts, sheet.scan)
    content = synth_problems.PRESETS["mix"] if content is None else content
    problems = _draw_problems(rng, sheet.problems, style, content,
                              feature_rng(seed, split, index, "content"), fonts.cjk)
    layout = _draw_layout(rng, sheet, size, clutter)
    if realism.workbook_print:
        style = dataclasses.replace(style, blanks=_page_blanks(
            feature_rng(seed, split, index, "workbook_print")))
    workbook = None
    if realism.workbook_clutter and clutter and not small:
        workbook = _plan_workbook(feature_rng(seed, split, index, "workbook_clutter"), layout,
                                  fonts)
        layout = workbook.layout
    grid = _draw_grid(rng, problems, style, layout, size, f"page {split} {index}",
                      workbook.number_em if workbook else 0.0)
    photo_rng = (feature_rng(seed, split, index, "photography")
                 if realism.photography and degrade and not sheet.scan and not small else None)
    if photo_rng is not None:
        style = _faded(style, photo_rng)
    if realism.faint_ink and not small:
        style = _faint(style, feature_rng(seed, split, index, "faint_ink"))
    canvas = _Canvas(sheet.width, sheet.height, style.paper, keep_masks=keep_debug)
    pupil = _sample_pupil(rng, fonts, grid.digit)
    pool = synth_handwriting.digit_pool(style_name) if realism.mnist_digits else None
    hand_rng = feature_rng(seed, split, index, "mnist_digits")
    if pool is not None:
        pupil = _child_pupil(pupil, hand_rng, pool)
    graded, red = _print_problems(canvas, rng, problems, style, grid, pupil, clutter, hand_rng,
                                  workbook)
    if clutter:
        _draw_clutter(canvas, rng, fonts, style, pupil, red, layout, grid, graded, index)
    if workbook is not None:
        _draw_workbook(canvas, workbook, style, grid, pupil, red)
    if photo_rng is not None and photo_rng.random() < 0.2:
        _draw_ruled_paper(canvas, photo_rng, grid)
    return _photograph(canvas, rng, problems, layout, sheet.scan, degrade, keep_debug, photo_rng)


@dataclasses.dataclass(frozen=True)
class _Sheet:
    problems: int       # how many problems to draw (fewer are printed when they do not fit)
    width: int
    height: int
    scan: bool          # a flat-bed scan rather than a photo


@dataclasses.dataclass(frozen=True)
class _PrintStyle:
    spec: tuple         # the printed font, for synth_fonts.face_for
    colour: tuple       # BGR ink
    opacity: float
    paper: tuple        # BGR paper, tinted by the camera's colour cast
    space_em: float     # room between tokens, in digit heights
    answer_style: str   # "free", "underline" or "paren"
    level: int          # numbers within 20, 100 or 1000
    unanswered_rate: float
    wrong_rate: float
    blanks: _Blanks = _Blanks()   # realism feature workbook_print
    fade_spread: float = 0.0      # realism feature faint_ink: problems fade this much each
    fade_seed: int = 0


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Margins, header and footer; the grid gets the room between them."""
    width: int
    height: int
    margin_x: float
    margin_top: float
    margin_bottom: float
    max_digit: float    # largest printed digit height
    has_title: bool
    title_digit: float
    title_baseline: float
    has_fields: bool
    fields_digit: float
    fields_baseline: float
    has_footer: bool
    footer_digit: float
    grid_x0: float
    grid_y0: float
    grid_x1: float
    grid_y1: float


@dataclasses.dataclass(frozen=True)
class _Grid:
    """Where the problems go: `columns` x `rows` cells from (x0, y0), and their print."""
    x0: float
    y0: float
    x1: float
    columns: int
    rows: int
    cell_w: float
    row_h: float
    column_major: bool
    digit: float        # the digit height chosen for the cells
    face: object        # the printed face, fitted so that every problem fits its cell
    layouts: list       # each problem's _problem_layout in that face

    @property
    def y1(self) -> float:
        return self.y0 + self.rows * self.row_h


def _draw_sheet(rng, size: PageSize, small: bool, num_problems: int | None) -> _Sheet:
    """Problem count and page size."""
    if num_problems is not None:
        n = int(num_problems)
        if n < 1:
            raise ValueError(f"num_problems must be >= 1, got {num_problems}")
    elif not small and rng.random() < CROWDED_RATE:
        n = int(rng.integers(CROWDED_PROBLEMS[0], CROWDED_PROBLEMS[1] + 1))
    else:
        n = int(rng.integers(size.problems[0], size.problems[1] + 1))
    low = size.width[0] if (small or n <= size.problems[1]) else CROWDED_MIN_WIDTH
    # Log-uniform: as many small pages as big ones in ratio terms (and cheaper to draw).
    width = int(round(math.exp(rng.uniform(math.log(low), math.log(size.width[1])))))
    scan = rng.random() < 0.2
    height = int(round(width * (1.414 if scan else rng.uniform(1.3, 1.45))))
    return _Sheet(n, width, height, scan)


def _draw_print_style(rng, fonts, scan: bool) -> _PrintStyle:
    """The printed font and ink, the paper, and how the problems are set."""
    if fonts.printed:
        spec = ("ttf", fonts.printed[int(rng.integers(len(fonts.printed)))])
    else:
        spec = ("hershey", synth_fonts.HERSHEY_PRINTED[int(rng.integers(4))],
                float(rng.uniform(0.06, 0.12)))
    ink_grey = int(rng.integers(10, 60))
    colour = (ink_grey, ink_grey, ink_grey + int(rng.integers(0, 15)))
    opacity = float(rng.uniform(0.85, 1.0))
    # The camera's white balance (a colour cast) tints the paper, and through it every ink.
    cast = rng.uniform(0.97, 1.0, 3) if scan else rng.uniform(0.85, 1.0, 3)
    paper = tuple(int(v) for v in rng.integers(232, 256, 3) * (cast / cast.max()))
    space_em = float(rng.uniform(0.25, 0.6))
    answer_style = str(rng.choice(["free", "underline", "paren"], p=[0.5, 0.3, 0.2]))
    level = int(rng.choice(3, p=[0.35, 0.45, 0.2]))
    unanswered_rate = float(rng.beta(1.0, 9.0))
    wrong_rate = float(rng.uniform(0.0, 0.08))
    return _PrintStyle(spec, colour, opacity, paper, space_em, answer_style, level,
                       unanswered_rate, wrong_rate)


def _draw_problems(rng, count: int, style: _PrintStyle, content=None, content_rng=None,
                   cjk_fonts=()) -> list[Problem]:
    """The problems; category weights vary per page (themed sheets) but are balanced on average.

    With `content` (db/synth_problems.py Content) and its own generator
    `content_rng`, each problem is then replaced, with its kind's share, by
    a problem of that kind (decimals, remainders, estimates, several
    operators, brackets, units; units need `cjk_fonts`); the page's own
    generator draws what it drew without them."""
    weights = rng.dirichlet(np.full(len(Kind), 1.5))
    kinds = rng.choice(len(Kind), size=count, p=weights)
    problems = [_make_problem(Kind(int(k)), style.level, style.answer_style,
                              rng.random() >= style.unanswered_rate, style.wrong_rate, rng)
                for k in kinds]
    if content is None or content_rng is None:
        return problems
    for i, problem in enumerate(problems):
        kind = synth_problems.choose_kind(content, content_rng)
        if kind is None:
            continue
        wrong = bool(content_rng.random() < style.wrong_rate)
        drawn = synth_problems.draw(kind, style.level, content_rng, style.answer_style, wrong,
                                    cjk_fonts)
        problems[i] = Problem(Kind[drawn.category.upper()], list(drawn.tokens), drawn.handwritten,
                              drawn.right, problem.answered)
    return problems


def _draw_layout(rng, sheet: _Sheet, size: PageSize, clutter: bool) -> _Layout:
    """Header and footer take their room first; the grid gets the rest."""
    width, height = sheet.width, sheet.height
    margin_x = width * rng.uniform(0.05, 0.09)
    margin_top = width * rng.uniform(0.04, 0.08)
    margin_bottom = width * rng.uniform(0.04, 0.08)
    max_digit = max(width * rng.uniform(*size.max_digit_frac), size.min_digit)
    title_digit = max(size.min_digit + 1, width * rng.uniform(0.022, 0.035))
    has_title = clutter and rng.random() < 0.85
    has_fields = clutter and rng.random() < 0.75
    has_footer = clutter and rng.random() < 0.6
    fields_digit = max(size.min_digit, title_digit * rng.uniform(0.55, 0.8))
    footer_digit = max(size.min_digit, width * rng.uniform(0.012, 0.018))
    y = margin_top
    title_baseline = y + title_digit * 1.4
    if has_title:
        y += title_digit * 2.2
    fields_baseline = y + fields_digit * 1.3
    if has_fields:
        y += fields_digit * 2.4
    y += (title_digit * rng.uniform(0.3, 1.0)) if (has_title or has_fields) else 0.0
    grid_y1 = height - margin_bottom - (footer_digit * 2.5 if has_footer else 0.0)
    return _Layout(width, height, margin_x, margin_top, margin_bottom, max_digit,
                   has_title, title_digit, title_baseline, has_fields, fields_digit,
                   fields_baseline, has_footer, footer_digit,
                   grid_x0=margin_x, grid_y0=y, grid_x1=width - margin_x, grid_y1=grid_y1)


def _draw_grid(rng, problems: list[Problem], style: _PrintStyle, layout: _Layout,
               size: PageSize, page: str, number_em: float = 0.0) -> _Grid:
    """Columns and print size that fit the widest problem (and `number_em`
    digit heights before it for its number); drops problems from the end of
    `problems` (in place) while none fits."""
    grid_w, grid_h = layout.grid_x1 - layout.grid_x0, layout.grid_y1 - layout.grid_y0
    reference_face = face_for(style.spec, 40)
    slot_em = float(rng.uniform(0.75, 1.0))
    em_width = max(_problem_em_width(p, reference_face, style.space_em, slot_em, style.blanks)
                   for p in problems) + number_em
    choice = _choose_grid(len(problems), em_width, grid_w, grid_h, size, layout.max_digit, rng)
    while choice is None:  # too many problems for this page: drop from the end
        if len(problems) == 1:
            raise ValueError(f"{page}: {layout.width} px is too narrow for even one problem")
        problems.pop()
        choice = _choose_grid(len(problems), em_width, grid_w, grid_h, size, layout.max_digit,
                              rng)
    columns, digit = choice
    rows = math.ceil(len(problems) / columns)
    cell_w = grid_w / columns
    row_h = min(grid_h / rows, digit * rng.uniform(2.3, 4.0))
    column_major = rng.random() < 0.3
    face, layouts = _fit_face(problems, style, slot_em, digit, cell_w - number_em * digit)
    return _Grid(layout.grid_x0, layout.grid_y0, layout.grid_x1, columns, rows, cell_w, row_h,
                 column_major, digit, face, layouts)


def _fit_face(problems: list[Problem], style: _PrintStyle, slot_em: float, digit: float,
              cell_w: float):
    """The printed face at `digit`, made smaller until every problem fits its
    cell; with each problem's layout in it."""
    face = face_for(style.spec, digit)
    requested = digit
    for _ in range(64):  # rounding of the font size may widen a problem by a pixel or two
        layouts = [_problem_layout(p, face, style.space_em * face.digit_height,
                                   slot_em * face.digit_height * max(len(p.right_answer), 1),
                                   style.blanks)
                   for p in problems]
        if max(layout[2] for layout in layouts) <= cell_w - 4 or requested <= 4:
            break
        # ask for less than what we got: a point size may round back to the same digits
        requested = min(requested, face.digit_height) - 1
        face = face_for(style.spec, requested)
    return face, layouts


def _print_problems(canvas: _Canvas, rng, problems: list[Problem], style: _PrintStyle,
                    grid: _Grid, pupil: Pupil, clutter: bool, hand_rng=None, workbook=None):
    """Print each problem in its cell, the pupil's answer and the teacher's
    marks; returns (graded, the teacher's red). `hand_rng` places an MNIST
    pupil's answers (the page's other draws stay as without that feature);
    `workbook` (_Workbook) numbers the problems, outside their boxes."""
    d = grid.face.digit_height
    graded = clutter and rng.random() < 0.4
    red = (int(rng.integers(20, 60)), int(rng.integers(20, 60)), int(rng.integers(180, 230)))
    for i, problem in enumerate(problems):
        if grid.column_major:
            row, col = i % grid.rows, i // grid.rows
        else:
            row, col = i // grid.columns, i % grid.columns
        cx0, cy0 = grid.x0 + col * grid.cell_w, grid.y0 + row * grid.row_h
        clip = (int(math.ceil(cx0)) + 1, int(math.ceil(cy0)) + 1,
                int(math.floor(cx0 + grid.cell_w)) - 1, int(math.floor(cy0 + grid.row_h)) - 1)
        placed, anchor, end_x = grid.layouts[i]
        number = workbook.number_glyph(i, grid.face) if workbook is not None else None
        number_w = number.advance if number is not None else 0.0
        slack = max(0.0, clip[2] - clip[0] - end_x - number_w - 2)
        origin_x = clip[0] + 1 + rng.uniform(0.0, min(slack, 0.15 * grid.cell_w))
        baseline = (cy0 + grid.row_h / 2.0 + d / 2.0) + rng.normal(0.0, 0.06) * d
        label = i + 1
        if number is not None:  # "①", "3." or "(3)" before the problem: not part of it
            canvas.paint(number, origin_x, baseline, style.colour, style.opacity, 0, clip)
            origin_x += number_w
        opacity = style.opacity
        if style.fade_spread:   # this problem printed or lit fainter than the others
            opacity *= 1.0 - style.fade_spread * float(np.random.default_rng(
                [style.fade_seed, i]).random())
        canvas.paint(compose(placed), origin_x, baseline, style.colour, opacity, label, clip)
        answer_right = origin_x + end_x
        if problem.answered:
            written_right = _write_answer(canvas, problem, anchor, pupil, d, origin_x, baseline,
                                          label, clip, rng, hand_rng)
            answer_right = max(answer_right - 0.5 * d, written_right)
        if graded and problem.answered and rng.random() < 0.8:
            mark_size = d * rng.uniform(0.9, 1.6)
            mark = _red_mark("tick" if problem.correct else "cross", mark_size,
                             max(1, int(round(d * rng.uniform(0.08, 0.15)))), rng)
            canvas.paint(mark, answer_right + rng.uniform(-0.6, 0.4) * d,
                         baseline + rng.uniform(-0.1, 0.3) * d, red, rng.uniform(0.75, 0.95))
    return graded, red


def _photograph(canvas: _Canvas, rng, problems: list[Problem], layout: _Layout, scan: bool,
                degrade: bool, keep_debug: bool, photo_rng=None) -> SynthPage:
    """The camera: a slight rotation and perspective, then light, blur and
    noise; each problem's box from its ink after the warp. `photo_rng`
    (realism feature photography) takes the picture as a phone does."""
    width, height = layout.width, layout.height
    content = (layout.margin_x * 0.5, layout.margin_top * 0.5, width - layout.margin_x * 0.5,
               height - layout.margin_bottom * 0.5)
    homography = _camera(rng, width, height, content, scan)
    background = (tuple(int(v) for v in rng.integers(225, 250, 3)) if scan
                  else tuple(int(v) for v in rng.integers(30, 170, 3)))
    if photo_rng is not None and photo_rng.random() < 0.35:  # held at an angle
        homography = _camera(photo_rng, width, height, content, scan, tilt=True)
    if scan:  # a flat-bed scan has no perspective: the cheaper affine warp is exact
        warped = cv2.warpAffine(canvas.page, homography[:2] / homography[2, 2], (width, height),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=background)
    elif photo_rng is not None:  # the desk around the sheet has a texture
        warped = cv2.warpPerspective(canvas.page, homography, (width, height),
                                     dst=_desk(photo_rng, width, height, background),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    else:
        warped = cv2.warpPerspective(canvas.page, homography, (width, height),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=background)
    boxes, classes, texts, printed, answers, solutions = [], [], [], [], [], []
    warped_boxes = _warped_boxes(canvas.ink_points, len(problems), homography, width, height)
    for problem, box in zip(problems, warped_boxes):
        if box is None:  # never expected: a problem without ink, or its ink left the picture
            continue
        boxes.append(box)
        classes.append(int(problem.kind))
        texts.append(problem.text())
        printed.append(problem.printed())
        answers.append(problem.written())
        solutions.append(problem.right_answer)
    image = _degrade(warped, rng, scan) if degrade else warped
    if photo_rng is not None:
        image = _phone_light(image, photo_rng, homography, layout)
    quality = int(rng.integers(70, 96)) if scan else int(rng.integers(55, 93))
    labels = paper_mask = None
    if keep_debug:
        labels = cv2.warpPerspective(canvas.label_map(), homography, (width, height),
                                     flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=0)
        ones = np.full((height, width), 255, np.uint8)
        paper_mask = cv2.warpPerspective(ones, homography, (width, height), flags=cv2.INTER_NEAREST,
                                         borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return SynthPage(image=image,
                     boxes=np.asarray(boxes, np.int32).reshape(-1, 4),
                     classes=np.asarray(classes, np.int64),
                     texts=tuple(texts), jpeg_quality=quality,
                     clean=warped if keep_debug else None,
                     labels=labels,
                     paper=paper_mask,
                     printed=tuple(printed), answers=tuple(answers), solutions=tuple(solutions))


def _write_answer(canvas: _Canvas, problem: Problem, anchor, pupil: Pupil, d: int, origin_x: float,
                  baseline: float, label: int, clip, rng, hand_rng=None) -> float:
    """Handwrite the answer at its anchor; returns the right edge of the written ink."""
    if anchor[0] == "centre" and problem.kind == Kind.COMPARE:
        digit = anchor[3] * rng.uniform(0.5, 0.75)
    else:
        digit = d * pupil.size_ratio * rng.uniform(0.93, 1.07)
    child = pupil.digits is not None and hand_rng is not None
    for _ in range(4):
        ink = _handwrite(problem.answer, pupil, digit, rng)
        h, w = ink.mask.shape
        if anchor[0] == "after":
            x = origin_x + anchor[1] + rng.uniform(0.1, 0.4) * d
            y = baseline + rng.uniform(-0.2, 0.05) * d
            if child:  # as a child writes: close to the "=" or far, the foot below the line
                x = origin_x + anchor[1] + hand_rng.uniform(*pupil.gap) * d
                y = baseline + hand_rng.uniform(*pupil.drop) * max(h, d)
            left = x + ink.left
        else:
            left = origin_x + anchor[1] - w / 2.0 + rng.normal(0.0, 0.05) * d
            x = left - ink.left
            # centre the ink's middle row on the anchor
            y = baseline + anchor[2] - (ink.top + h / 2.0) + rng.normal(0.0, 0.05) * d
        overflow = left + w - (clip[2] - 1)
        if overflow <= 0:
            break
        if anchor[0] == "after":
            # tuck it closer to the "=" first, then shrink the writing
            x -= min(overflow, 0.3 * d)
            left -= min(overflow, 0.3 * d)
            if left + w <= clip[2] - 1:
                break
        digit *= 0.85
    canvas.paint(ink, x, y, pupil.colour, pupil.opacity, label, clip)
    return min(left + w, clip[2])


def _draw_clutter(canvas: _Canvas, rng, fonts, style: _PrintStyle, pupil: Pupil, red,
                  layout: _Layout, grid: _Grid, graded: bool, index: int):
    """Everything on the sheet that is not a problem: none of it enters the label map."""
    cjk_spec = ("ttf", fonts.cjk[int(rng.integers(len(fonts.cjk)))]) if fonts.cjk else None

    def text_face(digit):
        """The face for header text, and whether it is Chinese."""
        if cjk_spec is not None:
            return face_for(cjk_spec, digit), True
        return face_for(style.spec, digit), False

    if layout.has_title:
        _draw_title(canvas, rng, style, layout, text_face)
    if layout.has_fields:
        _draw_fields(canvas, rng, style, layout, text_face, pupil, red)
    if layout.has_footer:
        _draw_page_number(canvas, rng, style, layout, index)
    _draw_form_lines(canvas, rng, grid)
    if graded and rng.random() < 0.6:
        _draw_score(canvas, rng, fonts, layout, grid, pupil, red)
    _draw_stains(canvas, rng)


def _draw_title(canvas: _Canvas, rng, style: _PrintStyle, layout: _Layout, text_face):
    width, margin_x = canvas.width, layout.margin_x
    face, chinese = text_face(layout.title_digit)
    titles = _TITLES_CJK if chinese else _TITLES_LATIN
    title = titles[int(rng.integers(len(titles)))]
    if not _printable(face, title):
        face, title = face_for(style.spec, layout.title_digit), _TITLES_LATIN[0]
    ink = _text_glyph(face, title)
    if ink.advance > width - 2 * margin_x:
        ink = _fit(ink, (width - 2 * margin_x) / ink.advance)
    x = (width - ink.advance) / 2.0 if rng.random() < 0.7 else margin_x
    canvas.paint(ink, x, layout.title_baseline, style.colour, style.opacity)


def _draw_fields(canvas: _Canvas, rng, style: _PrintStyle, layout: _Layout, text_face,
                 pupil: Pupil, red):
    """Name, class, date, time and score fields, some filled in by the pupil."""
    margin_x = layout.margin_x
    face, chinese = text_face(layout.fields_digit)
    names = _FIELDS_CJK if chinese else _FIELDS_LATIN
    count = int(rng.integers(2, len(names) + 1))
    chosen = sorted(rng.choice(len(names), size=count, replace=False))
    available = canvas.width - 2 * margin_x
    slot = available / count
    baseline = layout.fields_baseline
    d = face.digit_height
    for k, which in enumerate(chosen):
        x = margin_x + k * slot
        label_ink = _text_glyph(face, names[which])
        if label_ink.advance > slot * 0.5:
            label_ink = _fit(label_ink, slot * 0.5 / label_ink.advance)
        canvas.paint(label_ink, x, baseline, style.colour, style.opacity)
        line_x = x + label_ink.advance + 0.2 * d
        line_len = slot - label_ink.advance - 0.8 * d
        if line_len > d:
            canvas.paint(_bar(line_len, max(1.0, 0.08 * d), 0.25 * d), line_x, baseline,
                         style.colour, style.opacity)
            # The pupil fills some fields in: handwriting that is not a problem.
            if rng.random() < 0.6:
                content = {0: _PUPIL_NAMES[int(rng.integers(len(_PUPIL_NAMES)))],
                           1: f"{int(rng.integers(1, 7))}.{int(rng.integers(1, 10))}",
                           2: f"{int(rng.integers(1, 13))}.{int(rng.integers(1, 29))}",
                           3: f"{int(rng.integers(2, 15))}:{int(rng.integers(10, 60))}",
                           4: str(int(rng.integers(60, 101)))}[int(which)]
                writer = pupil
                colour, opacity = pupil.colour, pupil.opacity
                if which == 4:
                    colour, opacity = red, 0.9
                if _printable(face_for(writer.spec, d), content):
                    ink = _handwrite(content, writer, d * writer.size_ratio, rng)
                    if ink.mask.shape[1] > line_len:
                        ink = _fit(ink, line_len / ink.mask.shape[1])
                    canvas.paint(ink, line_x + 0.2 * d - ink.left, baseline, colour, opacity)


def _draw_page_number(canvas: _Canvas, rng, style: _PrintStyle, layout: _Layout, index: int):
    face = face_for(style.spec, layout.footer_digit)
    number = int(index) % 20 + 1
    text = [f"— {number} —", f"{number}", f"- {number} -"][int(rng.integers(3))]
    if not _printable(face, text):
        text = str(number)
    ink = _text_glyph(face, text)
    canvas.paint(ink, (canvas.width - ink.advance) / 2.0, canvas.height - layout.margin_bottom,
                 style.colour, style.opacity)


def _draw_form_lines(canvas: _Canvas, rng, grid: _Grid):
    """Lines of the form: a frame around the grid or the cells' own table lines."""
    width, height = canvas.width, canvas.height
    gx0, gy0, gx1, gy1 = grid.x0, grid.y0, grid.x1, grid.y1
    line_colour = tuple(int(v) for v in rng.integers(60, 160, 3))
    form = rng.random()
    if form < 0.15:
        for c in range(grid.columns + 1):
            x = int(round(gx0 + c * grid.cell_w))
            canvas.paint(_bar(1, gy1 - gy0, 0), min(x, width - 1), gy0, line_colour, 0.9)
        for r in range(grid.rows + 1):
            y = int(round(gy0 + r * grid.row_h))
            canvas.paint(_bar(gx1 - gx0, 1, 0), gx0, min(y, height - 1), line_colour, 0.9)
    elif form < 0.35:
        pad = 4
        for y in (gy0 - pad, gy1 + pad):
            canvas.paint(_bar(gx1 - gx0 + 2 * pad, 1, 0), gx0 - pad, y, line_colour, 0.9)
        for x in (gx0 - pad, gx1 + pad):
            canvas.paint(_bar(1, gy1 - gy0 + 2 * pad, 0), x, gy0 - pad, line_colour, 0.9)


def _draw_score(canvas: _Canvas, rng, fonts, layout: _Layout, grid: _Grid, pupil: Pupil, red):
    """The teacher's score, big and red, near the top."""
    score_digit = canvas.width * rng.uniform(0.03, 0.05)
    hand = fonts.handwriting
    spec = (("ttf", hand[int(rng.integers(len(hand)))]) if hand
            else ("hershey", synth_fonts.HERSHEY_HANDWRITING[0], 0.1))
    teacher = dataclasses.replace(pupil, spec=spec, grain=False, grow=1)
    ink = _handwrite(str(int(rng.integers(80, 101))), teacher, score_digit, rng)
    canvas.paint(ink, canvas.width - layout.margin_x - ink.mask.shape[1] - score_digit,
                 grid.y0 * 0.5 + score_digit * 0.5, red, 0.9)


def _draw_stains(canvas: _Canvas, rng):
    """Coffee rings and smudges, multiplied over whatever is there."""
    width, height = canvas.width, canvas.height
    for _ in range(int(rng.choice([0, 0, 0, 1, 1, 2, 3]))):
        radius = width * rng.uniform(0.03, 0.12)
        size = int(radius * 2.6)
        # Drawn at a quarter of the size and enlarged: a stain has no sharp detail to lose.
        small_size, small_radius = max(4, size // 4), radius / 4.0
        mask = np.zeros((small_size, small_size), np.uint8)
        centre = (small_size // 2, small_size // 2)
        axes = (max(1, int(small_radius)), max(1, int(small_radius * rng.uniform(0.6, 1.0))))
        angle = float(rng.uniform(0, 180))
        if rng.random() < 0.5:
            cv2.ellipse(mask, centre, axes, angle, 0, 360, 255, max(1, int(small_radius * 0.15)))
        else:
            cv2.ellipse(mask, centre, axes, angle, 0, 360, 255, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.6, small_radius * 0.15))
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR)
        colour = (int(rng.integers(90, 170)), int(rng.integers(130, 200)), int(rng.integers(160, 230)))
        stain = Glyph(mask, 0, 0, float(size))
        canvas.paint(stain, rng.uniform(-0.5, 1.0) * (width - size), rng.uniform(0, height - size),
                     colour, float(rng.uniform(0.15, 0.45)))


# ---------------------------------------------------------------------------------------
# Workbook clutter (realism feature workbook_clutter): what printed workbooks
# carry around their problems, never an object. Real photos showed each
# boxed as a problem: "第48页" badges, "我会批 ( )分( )秒 对( )题" score
# blocks (parentheses, sometimes filled in), section headings, problem numbers.

_CHAPTERS = ("1 位置", "2 表内除法（一）", "3 测量", "4 万以内的加法和减法（二）", "5 倍的认识",
             "6 多位数乘一位数", "5 简易方程", "7 小数的加法和减法", "四则运算", "口算天天练")
_SECTIONS = ("一、直接写得数。", "二、比一比，在○里填上“>”“<”或“=”。", "三、在（  ）里填上合适的数。",
             "四、算一算。", "一、口算。", "二、想一想，填一填。", "我会算：", "看谁算得又对又快！")
_NUMBERINGS = ("circled", "dot", "paren")


@dataclasses.dataclass(frozen=True)
class _Workbook:
    """What workbook clutter a page carries, and the room it takes."""
    layout: _Layout        # the page's layout with the bands above and below the grid taken
    cjk: tuple | None      # the Chinese face's spec (None: none installed, no Chinese text)
    page_number: int
    badges: bool           # "第48页" over each column
    chapter: str | None    # "5 倍的认识" in the top margin
    section: str | None    # a section heading above the grid
    score_block: bool      # "我会批 ( )分( )秒 对( )题" under each column
    numbering: str | None  # "circled" ①, "dot" 3., "paren" (3), before each problem
    text_digit: float
    top_band: tuple        # (y0, y1) of the band above the grid
    bottom_band: tuple     # (y0, y1) of the band below it
    seed: int              # of the drawing details

    @property
    def number_em(self) -> float:
        """Room for a problem's number, in digit heights."""
        return {"circled": 1.6, "dot": 2.0, "paren": 2.4}.get(self.numbering, 0.0)

    def number_glyph(self, i: int, face) -> Glyph | None:
        """Problem i's number in `face` (circled digits in the Chinese face)."""
        if self.numbering is None:
            return None
        n = i % 40 + 1
        if self.numbering == "circled" and self.cjk is not None and n <= 20:
            cjk = face_for(self.cjk, face.digit_height)
            glyph = _text_glyph(cjk, chr(0x2460 + n - 1))
        else:
            text = f"{n}." if self.numbering == "dot" else f"({n})"
            glyph = _text_glyph(face, text)
        return dataclasses.replace(glyph, advance=glyph.advance + 0.4 * face.digit_height)


def _plan_workbook(rng, layout: _Layout, fonts) -> _Workbook:
    cjk = ("ttf", fonts.cjk[int(rng.integers(len(fonts.cjk)))]) if fonts.cjk else None
    text_digit = max(9.0, layout.width * rng.uniform(0.014, 0.024))
    badges = cjk is not None and rng.random() < 0.5
    section = str(rng.choice(_SECTIONS)) if cjk is not None and rng.random() < 0.35 else None
    score_block = cjk is not None and rng.random() < 0.5
    chapter = str(rng.choice(_CHAPTERS)) if cjk is not None and rng.random() < 0.4 else None
    numbering = (str(rng.choice(_NUMBERINGS, p=[0.5, 0.3, 0.2])) if rng.random() < 0.35
                 else None)
    top_lines = int(badges) + int(section is not None)
    top = layout.grid_y0
    top_end = top + top_lines * 2.3 * text_digit
    bottom_end = layout.grid_y1
    bottom = bottom_end - (3.0 * 2.0 * text_digit if score_block else 0.0)
    if bottom - top_end < 0.4 * (layout.grid_y1 - layout.grid_y0):  # keep most of the grid
        badges = section = None
        score_block = False
        top_end, bottom = top, bottom_end
    room = dataclasses.replace(layout, grid_y0=top_end, grid_y1=bottom)
    return _Workbook(room, cjk, int(rng.integers(2, 150)), bool(badges), chapter, section,
                     bool(score_block), numbering, float(text_digit), (top, top_end),
                     (bottom, bottom_end), int(rng.integers(2 ** 31)))


def _draw_workbook(canvas: _Canvas, workbook: _Workbook, style: _PrintStyle, grid: _Grid,
                   pupil: Pupil, red):
    """Badges, chapter, section heading and score blocks (numbers: _print_problems)."""
    rng = np.random.default_rng(workbook.seed)
    if workbook.cjk is None:
        return
    d = workbook.text_digit
    face = face_for(workbook.cjk, d)
    colour, opacity = style.colour, style.opacity
    columns = [(grid.x0 + c * grid.cell_w, grid.x0 + (c + 1) * grid.cell_w)
               for c in range(grid.columns)]
    y = workbook.top_band[0] + 1.6 * d
    if workbook.section is not None:
        ink = _text_glyph(face, workbook.section)
        ink = _fit(ink, (grid.x1 - grid.x0) / max(ink.advance, 1.0))
        canvas.paint(ink, grid.x0, y, colour, opacity)
        y += 2.3 * d
    if workbook.badges:
        for k, (x0, x1) in enumerate(columns):
            _draw_badge(canvas, rng, face, f"第{workbook.page_number + k}页",
                        x0 + rng.uniform(0.05, 0.3) * (x1 - x0), y, colour, opacity)
    if workbook.chapter is not None:
        small = face_for(workbook.cjk, 0.9 * d)
        ink = _text_glyph(small, workbook.chapter)
        x = (canvas.width - workbook.layout.margin_x - ink.advance if rng.random() < 0.6
             else workbook.layout.margin_x)
        canvas.paint(ink, x, max(1.2 * d, workbook.layout.margin_top * 0.75), colour, opacity)
    if workbook.score_block:
        for x0, _ in columns:
            _draw_score_block(canvas, rng, face, x0 + rng.uniform(0.0, 0.1) * grid.cell_w,
                              workbook.bottom_band[0] + 1.5 * d, d, colour, opacity, pupil, red)


def _draw_badge(canvas: _Canvas, rng, face, text: str, x: float, baseline: float, colour,
                opacity: float):
    """A page badge: a pencil, then "第48页", boxed."""
    d = face.digit_height
    if rng.random() < 0.6:  # the pencil drawn before it
        length, thick = 2.2 * d, max(2, int(0.35 * d))
        pencil = np.zeros((int(1.6 * d) + thick, int(length) + thick), np.uint8)
        cv2.line(pencil, (thick, pencil.shape[0] - thick), (pencil.shape[1] - thick, thick),
                 int(rng.integers(120, 230)), thick, cv2.LINE_AA)
        canvas.paint(Glyph(pencil, 0, -pencil.shape[0], float(pencil.shape[1])), x,
                     baseline + 0.2 * d, colour, opacity * 0.8)
        x += pencil.shape[1] + 0.2 * d
    ink = _text_glyph(face, text)
    canvas.paint(ink, x, baseline, colour, opacity)
    if rng.random() < 0.7:
        pad = 0.25 * d
        w, h = int(ink.advance + 2 * pad), int(1.5 * d)
        frame = np.zeros((h + 2, w + 2), np.uint8)
        cv2.rectangle(frame, (1, 1), (w, h), 255, max(1, int(0.1 * d)), cv2.LINE_AA)
        canvas.paint(Glyph(frame, 0, 0, float(w)), x - pad, baseline - 1.2 * d, colour, opacity)


def _draw_score_block(canvas: _Canvas, rng, face, x: float, baseline: float, d: float, colour,
                      opacity: float, pupil: Pupil, red):
    """"我会批" and "（ ）分（ ）秒 对（ ）题", the blanks sometimes filled in by hand."""
    canvas.paint(_text_glyph(face, "我会批"), x, baseline, colour, opacity)
    lines = [["（", "分（", "秒"], ["对（", "题"]]
    if rng.random() < 0.5:
        lines = [lines[0] + ["  对（", "题"]]
    for row, parts in enumerate(lines, start=1):
        pen_x, y = x, baseline + row * 1.9 * d
        for k, part in enumerate(parts):
            ink = _text_glyph(face, part)
            canvas.paint(ink, pen_x, y, colour, opacity)
            pen_x += ink.advance
            if part.endswith("（"):
                blank = d * rng.uniform(1.2, 2.2)
                if rng.random() < 0.35:  # the pupil (or the teacher, in red) fills it in
                    writer_colour = red if rng.random() < 0.3 else pupil.colour
                    hand = _handwrite(str(int(rng.integers(1, 60))), pupil, d, rng)
                    canvas.paint(hand, pen_x + 0.2 * d - hand.left, y, writer_colour,
                                 pupil.opacity)
                pen_x += blank
                closing = _text_glyph(face, "）")
                canvas.paint(closing, pen_x, y, colour, opacity)
                pen_x += closing.advance


def _warped_boxes(ink_points: dict, count: int, homography, width: int, height: int) -> list:
    """Box (x1, y1, x2, y2) of each problem's ink after the camera warp, None where it has none.

    x2/y2 are exclusive. cv2.warpPerspective gives output pixel q the input pixel
    nearest to H^-1(q), so input pixel p lands on round(H(p)): the pixels a
    nearest-neighbour warp of the label map marks, up to a pixel where H stretches.
    """
    labels = [label for label in range(1, count + 1) if ink_points.get(label)]
    boxes = [None] * count
    if not labels:
        return boxes
    chunks = [np.concatenate(ink_points[label]) for label in labels]
    starts = np.cumsum([0] + [len(chunk) for chunk in chunks[:-1]])
    points = np.concatenate(chunks).reshape(-1, 1, 2)                           # (K, 1, 2)
    moved = np.rint(cv2.perspectiveTransform(points, homography).reshape(-1, 2))  # (K, 2)
    lows = np.maximum(np.minimum.reduceat(moved, starts, axis=0), 0)
    highs = np.minimum(np.maximum.reduceat(moved, starts, axis=0) + 1, (width, height))
    for label, (x1, y1), (x2, y2) in zip(labels, lows.tolist(), highs.tolist()):
        if x2 > x1 and y2 > y1:
            boxes[label - 1] = (int(x1), int(y1), int(x2), int(y2))
    return boxes


def _fit(glyph: Glyph, scale: float) -> Glyph:
    """Shrink rendered ink to `scale` (a long title or a name on a short line)."""
    if scale >= 1.0 or glyph.mask.size == 0:
        return glyph
    h, w = glyph.mask.shape
    new_w, new_h = max(1, int(w * scale)), max(1, int(h * scale))
    mask = cv2.resize(glyph.mask, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return Glyph(mask, int(glyph.left * scale), int(glyph.top * scale), glyph.advance * scale)


def _camera(rng, width: int, height: int, content, scan: bool, tilt: bool = False) -> np.ndarray:
    """Homography of a hand-held photo (or a slightly skewed scan) that keeps `content` in view;
    `tilt`: a phone held at an angle (realism feature photography), so that the
    print near one edge is up to a third larger than near the other."""
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    centre = np.float32([width / 2.0, height / 2.0])
    spread, limit, corners = (1.5, 3.5, 0.07) if tilt else (0.4 if scan else 1.0, 2.5, 0.02)
    angle = math.radians(rng.normal(0.0, spread))
    angle = max(-math.radians(limit), min(math.radians(limit), angle))
    rotation = np.float32([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    jitter = rng.uniform(-1, 1, (4, 2)).astype(np.float32) * (0.0 if scan else corners) * width
    scale = 1.0 if scan else rng.uniform(0.94, 1.0)
    shift = rng.uniform(-1, 1, 2).astype(np.float32) * (0.0 if scan else 0.01) * width
    cx0, cy0, cx1, cy1 = content
    content_corners = np.float32([[[cx0, cy0]], [[cx1, cy0]], [[cx1, cy1]], [[cx0, cy1]]])
    for _ in range(30):  # shrink until the printed area stays inside the picture
        target = centre + scale * (source - centre) @ rotation.T + jitter + shift
        homography = cv2.getPerspectiveTransform(source, target.astype(np.float32))
        moved = cv2.perspectiveTransform(content_corners, homography).reshape(-1, 2)
        if (moved.min() >= 2 and moved[:, 0].max() <= width - 3 and moved[:, 1].max() <= height - 3):
            break
        scale *= 0.98
        shift *= 0.8
    return homography


# ---------------------------------------------------------------------------------------
# Photography (realism feature photography): what phone photos of workbooks
# add to a page: faded print, ruled paper, a textured desk, the hard shadow of
# the phone or a hand, focus that falls off across the page, fingertips at the
# edges.


def _faded(style: _PrintStyle, rng) -> _PrintStyle:
    """A page printed faint, or photographed in poor light (a third of them)."""
    if rng.random() >= 0.3:
        return style
    grey = int(rng.integers(70, 140))
    return dataclasses.replace(style, colour=(grey, grey, grey + int(rng.integers(0, 12))),
                               opacity=float(rng.uniform(0.6, 0.9)))


def _faint(style: _PrintStyle, rng) -> _PrintStyle:
    """Realism feature faint_ink: a quarter of the pages printed in grey ink
    of little contrast, and on a quarter the problems faded unevenly, each
    by up to 60 %, as washed-out copies and photos of real crops are."""
    if rng.random() < 0.25:
        grey = int(rng.integers(110, 190))
        style = dataclasses.replace(style, colour=(grey, grey, grey + int(rng.integers(0, 10))),
                                    opacity=float(rng.uniform(0.55, 0.9)))
    if rng.random() < 0.25:
        style = dataclasses.replace(style, fade_spread=float(rng.uniform(0.2, 0.6)),
                                    fade_seed=int(rng.integers(2 ** 31)))
    return style


def _draw_ruled_paper(canvas: _Canvas, rng, grid: _Grid):
    """Light lines across the sheet: ruled, or squared (never a problem's ink)."""
    colour = (int(rng.integers(180, 235)), int(rng.integers(150, 210)), int(rng.integers(120, 200)))
    step = max(6.0, grid.row_h * rng.uniform(0.35, 1.0))
    opacity = float(rng.uniform(0.25, 0.6))
    y = float(rng.uniform(0, step))
    while y < canvas.height:
        canvas.paint(_bar(canvas.width, 1, 0), 0, y, colour, opacity)
        y += step
    if rng.random() < 0.5:
        x = float(rng.uniform(0, step))
        while x < canvas.width:
            canvas.paint(_bar(1, canvas.height, 0), x, 0, colour, opacity)
            x += step


def _desk(rng, width: int, height: int, colour) -> np.ndarray:
    """(H, W, 3) uint8: a table top around the sheet, wood-grained or mottled."""
    small = rng.normal(0.0, 1.0, (max(2, height // 16), max(2, width // 16))).astype(np.float32)
    if rng.random() < 0.5:  # grain along one direction
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=6.0, sigmaY=0.6)
    texture = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    texture = 1.0 + rng.uniform(0.05, 0.25) * texture / max(float(np.abs(texture).max()), 1e-6)
    desk = np.asarray(colour, np.float32)[None, None, :] * texture[:, :, None]
    return np.clip(desk, 0, 255).astype(np.uint8)


def _phone_light(image: np.ndarray, rng, homography, layout: _Layout) -> np.ndarray:
    """A hard-edged shadow, focus falling off across the page, fingertips in the margins."""
    height, width = image.shape[:2]
    if rng.random() < 0.3:  # the phone's or a hand's shadow: a polygon with a sharp edge
        corners = np.int32([[rng.uniform(-0.2, 1.2) * width, rng.uniform(-0.2, 1.2) * height]
                            for _ in range(4)])
        edge = cv2.convexHull(corners)
        shade = np.zeros((height, width), np.uint8)
        cv2.fillPoly(shade, [edge], 255, cv2.LINE_AA)
        shade = cv2.GaussianBlur(shade, (0, 0), float(rng.uniform(1.0, 6.0)))
        depth = float(rng.uniform(0.25, 0.55))
        gain = 1.0 - depth * shade.astype(np.float32) / 255.0
        image = (image.astype(np.float32) * gain[:, :, None]).astype(np.uint8)
    if rng.random() < 0.35:  # out of focus towards one side
        sigma = float(rng.uniform(0.8, 2.2))
        blurred = cv2.GaussianBlur(image, (0, 0), sigma)
        direction = rng.uniform(0.0, 2.0 * math.pi)
        yy, xx = np.mgrid[0:height:8, 0:width:8].astype(np.float32)
        ramp = math.cos(direction) * xx / width + math.sin(direction) * yy / height
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        weight = cv2.resize(np.clip(ramp * 1.6 - 0.4, 0, 1), (width, height))[:, :, None]
        image = (image * (1 - weight) + blurred * weight).astype(np.uint8)
    for _ in range(int(rng.choice([0, 0, 0, 1, 2]))):  # fingertips holding the sheet down
        side = int(rng.integers(4))
        margin = (layout.margin_x if side in (0, 1) else layout.margin_top) * 0.8
        radius = max(8.0, margin * rng.uniform(0.8, 1.6))
        along = rng.uniform(0.1, 0.9)
        point = {0: (0.0, along * height), 1: (width, along * height),
                 2: (along * width, 0.0), 3: (along * width, height)}[side]
        # pushed in from that edge by about the margin: tips reach the paper, not the print
        inward = {0: (1, 0), 1: (-1, 0), 2: (0, 1), 3: (0, -1)}[side]
        centre = (int(point[0] + inward[0] * margin * 0.4), int(point[1] + inward[1] * margin * 0.4))
        skin = np.asarray((rng.integers(120, 180), rng.integers(150, 200), rng.integers(190, 240)),
                          np.float32)
        finger = np.zeros((height, width), np.uint8)
        axes = (int(radius * (1.6 if side < 2 else 0.8)), int(radius * (0.8 if side < 2 else 1.6)))
        cv2.ellipse(finger, centre, axes, float(rng.uniform(-20, 20)), 0, 360, 255, -1,
                    cv2.LINE_AA)
        alpha = cv2.GaussianBlur(finger, (0, 0), 1.5).astype(np.float32)[:, :, None] / 255.0
        image = (image * (1 - alpha) + skin[None, None, :] * alpha).astype(np.uint8)
    return image


LIGHT_UNIT = 235.0  # gain value meaning "unchanged": lets the light brighten a little too


def _degrade(image: np.ndarray, rng, scan: bool) -> np.ndarray:
    """Blur, then uneven light and sensor noise as one gain map: a few full-size passes."""
    height, width = image.shape[:2]
    sigma = rng.uniform(0.0, 0.6) if scan else rng.uniform(0.0, 1.2)
    if sigma >= 0.3:
        kernel = 3 if sigma < 0.8 else 5
        image = cv2.GaussianBlur(image, (kernel, kernel), sigma)
    grid_h = 12
    grid_w = max(2, int(round(grid_h * width / height)))
    field = rng.uniform(0.9 if scan else 0.8, 1.0, (grid_h, grid_w)).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), 2.0)
    yy, xx = np.mgrid[0:grid_h, 0:grid_w].astype(np.float32)
    direction = rng.uniform(0.0, 2.0 * math.pi)
    ramp = math.cos(direction) * xx / grid_w + math.sin(direction) * yy / grid_h
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    field *= 1.0 - (0.05 if scan else rng.uniform(0.0, 0.3)) * ramp
    if not scan and rng.random() < 0.3:  # the shadow of the phone or a hand
        edge = rng.uniform(0.2, 0.8)
        softness = rng.uniform(0.05, 0.2)
        shade = 1.0 / (1.0 + np.exp(-(ramp - edge) / softness))
        field *= 1.0 - rng.uniform(0.15, 0.4) * shade
    brightness = rng.uniform(0.97, 1.06)
    gain = cv2.resize(field * (brightness * LIGHT_UNIT), (width, height),
                      interpolation=cv2.INTER_LINEAR)                               # (H, W) float32
    noise_std = rng.uniform(1.0, 3.0) if scan else rng.uniform(2.0, 7.0)
    # Half-resolution noise, upsampled: cheaper, and as correlated as a demosaiced sensor's.
    # Uniform rather than Gaussian: a third of the cost, and no one can tell after JPEG.
    noise = rng.random((height // 2 + 1, width // 2 + 1), dtype=np.float32)
    noise = (noise - 0.5) * (noise_std * 3.46 * 1.3)
    gain = cv2.add(gain, cv2.resize(noise, (width, height), interpolation=cv2.INTER_LINEAR))
    gain = cv2.convertScaleAbs(gain)                    # uint8, rounded and saturated
    image = cv2.multiply(image, cv2.merge([gain, gain, gain]), scale=1.0 / LIGHT_UNIT)
    if scan and rng.random() < 0.5:
        image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return image
