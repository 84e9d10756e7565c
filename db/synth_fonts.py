"""Glyphs for the synthetic 口算 pages of db/synth.py (format: docs/ks-format.md).

Three sources, best first:

- TrueType/OpenType fonts found under the system font folders (Pillow's
  `ImageFont.truetype`), sorted into printed faces (DejaVu, Liberation,
  FreeFont, CJK fonts such as WenQuanYi), handwriting-like faces (dkg, Breip,
  Kristi, sjfonts, Humor Sans, Rufscript, Comic Neue) and CJK faces for titles;
- OpenCV's Hershey stroke fonts when no TrueType face of a kind is installed
  (the script faces stand in for handwriting);
- line and circle primitives for the four math signs − × ÷ ○ whenever a face
  lacks the glyph, so that a missing glyph never shows up as a tofu box.

A face is asked for by *digit height* (pixels from the baseline to the top of
an "8"), not by point size: fonts differ wildly in how big their digits are
for one point size, and the page layout thinks in digit heights. Rendered
glyphs are cached per face, so a page costs a few numpy slices per glyph.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
# The Debian packages of the fonts below (scripts/setup.sh installs them).
FONT_PACKAGES = ("fonts-dejavu-core", "fonts-liberation2", "fonts-freefont-ttf",
                 "fonts-dkg-handwriting", "fonts-breip", "fonts-kristi", "fonts-sjfonts",
                 "fonts-humor-sans", "fonts-rufscript", "fonts-comic-neue", "fonts-wqy-microhei")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")

# Families are recognised by file name; everything else under the font folders is ignored
# so that symbol, emoji or decorative fonts never end up printing a worksheet.
_PRINTED_NAMES = re.compile(r"dejavu(sans|serif)|liberation(sans|serif|mono)|free(sans|serif|mono)"
                            r"|notosans-|notoserif-")
_PRINTED_EXCLUDE = re.compile(r"italic|oblique|math|cjk")
_HANDWRITING_NAMES = re.compile(r"dkg|breip|kristi|delphine|stevehand|humor|rufscript|comicneue")
_CJK_NAMES = re.compile(r"wqy|cjk|droidsansfallback|uming|ukai|sarasa")

# What a face of each kind must be able to draw (the math signs have primitives).
PRINTED_REQUIRED = "0123456789+=()"
HANDWRITING_REQUIRED = "0123456789<>="
CJK_REQUIRED = "口算练习"

# Signs drawn with primitives when a face has no glyph for them.
PRIMITIVE_SIGNS = "−×÷○"

# A code point no font maps: fonts answer it with their .notdef ("tofu") glyph.
_SURELY_MISSING = "\U0010FFFD"

HERSHEY_PRINTED = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX,
                   cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)
HERSHEY_HANDWRITING = (cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX)


@dataclasses.dataclass(frozen=True)
class FontCatalog:
    """Font files usable for each role, each tuple sorted so that choices are reproducible."""
    printed: tuple[str, ...] = ()
    handwriting: tuple[str, ...] = ()
    cjk: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line saying what was found and what falls back to Hershey strokes."""
        def part(paths, role, fallback):
            if paths:
                families = sorted({os.path.basename(os.path.dirname(p)) for p in paths})
                return f"{len(paths)} {role} ({', '.join(families)})"
            return f"no {role}: {fallback}"
        return "; ".join([
            part(self.printed, "printed", "OpenCV Hershey fonts"),
            part(self.handwriting, "handwriting", "OpenCV Hershey script fonts"),
            part(self.cjk, "CJK", "Latin titles"),
        ])

    @property
    def complete(self) -> bool:
        return bool(self.printed and self.handwriting and self.cjk)


def discover_fonts(font_dirs=None) -> FontCatalog:
    """Find the installed fonts for each role, keeping only those that draw what the role needs.

    font_dirs: folders searched recursively (default FONT_DIRS).
    """
    found = []
    for root_dir in (FONT_DIRS if font_dirs is None else font_dirs):
        for folder, _, names in os.walk(root_dir):
            found.extend(os.path.join(folder, n) for n in names if n.lower().endswith(FONT_SUFFIXES))
    printed, handwriting, cjk = [], [], []
    for path in sorted(set(found)):
        name = os.path.basename(path).lower().replace(" ", "")
        if _CJK_NAMES.search(name):
            if _has_all(path, CJK_REQUIRED):
                cjk.append(path)
                # Chinese worksheets print their digits in the same CJK face as the text.
                if _has_all(path, PRINTED_REQUIRED):
                    printed.append(path)
        elif _HANDWRITING_NAMES.search(name):
            if _has_all(path, HANDWRITING_REQUIRED):
                handwriting.append(path)
        elif _PRINTED_NAMES.search(name) and not _PRINTED_EXCLUDE.search(name):
            if _has_all(path, PRINTED_REQUIRED):
                printed.append(path)
    return FontCatalog(tuple(printed), tuple(handwriting), tuple(cjk))


def _has_all(path: str, chars: str) -> bool:
    try:
        return all(truetype_has_glyph(path, c) for c in chars)
    except OSError:  # a broken or unreadable font file: not usable, not fatal
        return False


@functools.lru_cache(maxsize=None)
def _reference_font(path: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, 48, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=None)
def truetype_has_glyph(path: str, char: str) -> bool:
    """True when the font maps `char` to a real glyph (not its empty or .notdef glyph)."""
    if char == " ":
        return True
    font = _reference_font(path)
    mask = font.getmask(char)
    if mask.size[0] * mask.size[1] == 0 or mask.getbbox() is None:
        return False
    notdef = font.getmask(_SURELY_MISSING)
    return not (mask.size == notdef.size and bytes(mask) == bytes(notdef))


@dataclasses.dataclass(frozen=True)
class Glyph:
    """Coverage mask of one drawn character (or string), placed relative to a pen position."""
    mask: np.ndarray   # (h, w) uint8 coverage, 255 = full ink
    left: int          # mask column 0, relative to the pen x
    top: int           # mask row 0, relative to the baseline (negative: above it)
    advance: float     # pen movement after drawing


class Face:
    """A font at one digit height; `glyph(char)` is cached and never returns a tofu box."""

    def __init__(self, key, digit_height: int, stroke: float):
        self.key = key
        self.digit_height = digit_height
        self.stroke = stroke  # typical stem width in px, for primitives drawn beside this face
        self._glyphs: dict[str, Glyph] = {}

    def has(self, char: str) -> bool:
        raise NotImplementedError

    def _render(self, char: str) -> Glyph:
        raise NotImplementedError

    def glyph(self, char: str) -> Glyph:
        cached = self._glyphs.get(char)
        if cached is None:
            if self.has(char):
                cached = self._render(char)
            elif char in PRIMITIVE_SIGNS:
                cached = primitive_sign(char, self.digit_height, self.stroke)
            else:
                raise ValueError(f"font {self.key}: no glyph for {char!r} and no primitive to draw it")
            self._glyphs[char] = cached
        return cached


class TrueTypeFace(Face):
    def __init__(self, path: str, digit_height: int):
        reference = _reference_font(path)
        ref_height = -reference.getbbox("8", anchor="ls")[1]
        size = max(4, int(round(48 * digit_height / max(ref_height, 1))))
        self.font = ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
        actual_height = -self.font.getbbox("8", anchor="ls")[1]
        # A hyphen's thickness is a good measure of the face's stem width.
        hyphen = self.font.getmask("-")
        rows = np.asarray(hyphen, dtype=np.uint8).reshape(hyphen.size[1], hyphen.size[0])
        stroke = float((rows.max(axis=1, initial=0) >= 128).sum()) or 0.09 * actual_height
        super().__init__(("ttf", path, size), max(actual_height, 1), float(max(stroke, 1.0)))
        self.path = path

    def has(self, char: str) -> bool:
        return truetype_has_glyph(self.path, char)

    def _render(self, char: str) -> Glyph:
        x0, y0, x1, y1 = self.font.getbbox(char, anchor="ls")
        advance = float(self.font.getlength(char))
        if x1 <= x0 or y1 <= y0:
            return Glyph(np.zeros((0, 0), np.uint8), 0, 0, advance)
        image = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(image).text((-x0, -y0), char, font=self.font, fill=255, anchor="ls")
        return Glyph(np.asarray(image, dtype=np.uint8), x0, y0, advance)


class HersheyFace(Face):
    """An OpenCV stroke font: ASCII only, so the math signs always come from primitives."""

    def __init__(self, font_face: int, digit_height: int, thickness: int):
        (_, ref_height), _ = cv2.getTextSize("8", font_face, 1.0, 1)
        self.scale = digit_height / ref_height
        self.font_face = font_face
        self.thickness = max(1, int(thickness))
        super().__init__(("hershey", font_face, digit_height, self.thickness), digit_height,
                         float(self.thickness))

    def has(self, char: str) -> bool:
        return 32 <= ord(char) < 127

    def _render(self, char: str) -> Glyph:
        (width, height), descent = cv2.getTextSize(char, self.font_face, self.scale, self.thickness)
        if char == " ":
            return Glyph(np.zeros((0, 0), np.uint8), 0, 0, float(width))
        pad = self.thickness + height // 2 + 2  # strokes may leave getTextSize's box
        canvas = np.zeros((height + descent + 2 * pad, width + 2 * pad), np.uint8)
        cv2.putText(canvas, char, (pad, pad + height), self.font_face, self.scale, 255,
                    self.thickness, cv2.LINE_AA)
        rows = np.flatnonzero(canvas.any(axis=1))
        cols = np.flatnonzero(canvas.any(axis=0))
        if rows.size == 0:
            return Glyph(np.zeros((0, 0), np.uint8), 0, 0, float(width))
        mask = canvas[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy()
        return Glyph(mask, int(cols[0]) - pad, int(rows[0]) - (pad + height), float(width))


_SUPERSAMPLE = 4


def primitive_sign(char: str, digit_height: int, stroke: float) -> Glyph:
    """Draw − × ÷ ○ with lines and circles, sized to sit beside digits of `digit_height` px."""
    return _primitive_sign(char, int(digit_height), round(float(stroke) * 2.0) / 2.0)


@functools.lru_cache(maxsize=4096)
def _primitive_sign(char: str, digit_height: int, stroke: float) -> Glyph:
    s = _SUPERSAMPLE
    d = float(digit_height)
    thick = max(1, int(round(stroke * s)))
    axis = 0.5 * d  # the math axis: signs are centred half a digit above the baseline
    if char == "○":
        radius = 0.62 * d
        width = 2 * radius + stroke
    else:
        half = 0.32 * d
        width = 2 * half + stroke
    pad = stroke + 1
    box_w = int(np.ceil(width + 2 * pad))
    box_h = int(np.ceil((2 * 0.62 * d if char == "○" else 0.8 * d) + 2 * pad + stroke))
    canvas = np.zeros((box_h * s, box_w * s), np.uint8)
    cx, cy = box_w * s / 2, box_h * s / 2

    def pt(x, y):
        return int(round(cx + x * s)), int(round(cy + y * s))

    if char == "−":
        cv2.line(canvas, pt(-half, 0), pt(half, 0), 255, thick, cv2.LINE_AA)
    elif char == "×":
        r = 0.8 * half
        cv2.line(canvas, pt(-r, -r), pt(r, r), 255, thick, cv2.LINE_AA)
        cv2.line(canvas, pt(-r, r), pt(r, -r), 255, thick, cv2.LINE_AA)
    elif char == "÷":
        cv2.line(canvas, pt(-half, 0), pt(half, 0), 255, thick, cv2.LINE_AA)
        dot = max(thick * 0.75, 0.09 * d * s)
        for dy in (-0.33 * d, 0.33 * d):
            cv2.circle(canvas, pt(0, dy), int(round(dot)), 255, -1, cv2.LINE_AA)
    elif char == "○":
        cv2.circle(canvas, pt(0, 0), int(round(radius * s)), 255, max(1, int(round(0.8 * thick))),
                   cv2.LINE_AA)
    else:
        raise ValueError(f"no primitive for {char!r}; primitives exist for {PRIMITIVE_SIGNS}")
    mask = cv2.resize(canvas, (box_w, box_h), interpolation=cv2.INTER_AREA)
    advance = width + 0.15 * d
    left = int(round(advance / 2 - box_w / 2))
    top = int(round(-axis - box_h / 2))
    return Glyph(mask, left, top, float(advance))


@functools.lru_cache(maxsize=4096)
def truetype_face(path: str, digit_height: int) -> TrueTypeFace:
    return TrueTypeFace(path, digit_height)


@functools.lru_cache(maxsize=4096)
def hershey_face(font_face: int, digit_height: int, thickness: int) -> HersheyFace:
    return HersheyFace(font_face, digit_height, thickness)


def face_for(spec, digit_height: int) -> Face:
    """spec: ("ttf", path) or ("hershey", font_face, thickness_per_digit_px)."""
    digit_height = max(4, int(round(digit_height)))
    if spec[0] == "ttf":
        return truetype_face(spec[1], digit_height)
    thickness = max(1, int(round(spec[2] * digit_height)))
    return hershey_face(spec[1], digit_height, thickness)


def compose(placed: list[tuple[Glyph, float, float]], pad: int = 0) -> Glyph:
    """Merge glyphs drawn at (pen x, baseline y) offsets into one Glyph (pen origin 0, 0)."""
    boxes = [(int(round(x)) + g.left, int(round(y)) + g.top, g) for g, x, y in placed
             if g.mask.size]
    if not boxes:
        advance = max((x + g.advance for g, x, _ in placed), default=0.0)
        return Glyph(np.zeros((0, 0), np.uint8), 0, 0, float(advance))
    x0 = min(b[0] for b in boxes) - pad
    y0 = min(b[1] for b in boxes) - pad
    x1 = max(b[0] + b[2].mask.shape[1] for b in boxes) + pad
    y1 = max(b[1] + b[2].mask.shape[0] for b in boxes) + pad
    canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for gx, gy, g in boxes:
        h, w = g.mask.shape
        region = canvas[gy - y0:gy - y0 + h, gx - x0:gx - x0 + w]
        np.maximum(region, g.mask, out=region)
    advance = max(x + g.advance for g, x, _ in placed)
    return Glyph(canvas, x0, y0, float(advance))
