"""The ks annotation format: reader, writer and the check command.

The format is specified in ks-format.md (docs/ks-format.md;
summarised here): one file per split, `<data_dir>/ks_<split>.txt`, UTF-8
(a byte-order mark and CRLF line ends are accepted), one image a line:

    <image path> <box> <box> ...        box: x1,y1,x2,y2,c

fields separated by runs of spaces or tabs; coordinates in pixels of the
stored image (origin top-left, x2/y2 the right/bottom edge), integers or
decimals; c the 0-based category, 0 <= c < db.categories. A path is absolute
or relative to the folder holding the txt file, may be Chinese (any UTF-8),
and cannot contain spaces. A path with no boxes is an image without objects.
Blank lines and lines whose first non-blank character is `#` are ignored.

Every problem is found in one pass and reported as `file:line: reason`, all
of them in one `AnnotationError`: a box with the wrong number of fields, a
non-number, NaN or infinity, x2 <= x1 or y2 <= y1, a category out of range,
an image listed twice, an image that does not exist or cannot be read, an
image of more than db.max_image_pixels pixels, a box entirely outside its
image, a line that is not UTF-8. A line that repeats an image is checked
like any other (its boxes against the image too), so fixing the repetition
brings no new error. A box partly outside its image is clipped to it, with a
warning naming file:line.

Loading (`load_ks_db`) reads each image's header (its size) with Pillow: fast,
and enough to catch a missing or non-image file. The check command decodes
every image fully with OpenCV, which also catches truncated and corrupt files:

    python -m db.ks data/ks/ks_train.txt [--categories N] [--config NAME] [--max-image-pixels N]

It prints the number of images, the objects per category, the most objects
on one image, and every problem; exit status 1 when there is any error, 2
when the file cannot be checked (exit_codes.py).
Loading and the check command share one parser (`inspect_ks_file`), whose
lines go through `parse_ks_line`, the one ks line parser (demo.py reads the
image paths of a ks file with it, `ks_image_paths`); `format_ks_line` is the
one writer (db.convert and the synthetic generator write with it).

Unannotated splits: a file that contains no box at all (for example a user's
ks_test.txt listing only images) is read as a split without annotations,
`has_annotations=False`: it can be tested on but not evaluated. A file with
at least one box is annotated, and its images without boxes are images
without objects. So is a file holding the comment line `# annotated`: its
pages were looked at and hold no objects, so test.py evaluates it (every
detection is a false positive) instead of writing results only. The two
cases read the same otherwise, so the file has to say which it is.

Image ids are 1-based in file order; category ids are c + 1.
"""

from __future__ import annotations

import argparse
import math
import operator
import os
import re
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from .detection import DetectionDB
from .errors import AnnotationError, ImageReadError, ImageTooLargeError, Problem, plural, split_keys
from .image_io import image_size, read_image
from .records import ImageRecord, clip_to_image

KS_FILE = "ks_{split}.txt"

_LINE_BREAK = re.compile(rb"\r\n|\n|\r")
_UTF8_BOM = b"\xef\xbb\xbf"
# "# annotated": a file without boxes is annotated pages without objects,
# not an image list (see the module docstring)
ANNOTATED_MARK = "# annotated"
_ANNOTATED_MARK = re.compile(r"#\s*annotated\b", re.IGNORECASE)
_BOX_FIELDS = ("x1", "y1", "x2", "y2", "c")
_DROP_NUMBER_CHARACTERS = str.maketrans("", "", "0123456789.,+-eE")
_count_commas = operator.methodcaller("count", ",")


@dataclass
class KSLine:
    """One image line of a ks file, as parsed and checked."""

    line: int                 # 1-based line number
    written_path: str         # as in the file
    path: str                 # absolute
    boxes: list = field(default_factory=list)       # [x1, y1, x2, y2] floats
    classes: list = field(default_factory=list)     # 0-based ints
    box_texts: list = field(default_factory=list)   # (position on the line, text)
    width: int | None = None  # known once the image was read
    height: int | None = None
    repeat_of: int | None = None  # the line that listed this image first


@dataclass
class KSReport:
    """What one pass over a ks file found: lines, errors, warnings."""

    source: str
    categories: int
    lines: list[KSLine]
    errors: list[Problem]
    warnings: list[Problem]
    marked_annotated: bool = False  # holds the line "# annotated"

    @property
    def num_objects(self) -> int:
        return sum(len(line.classes) for line in self.lines)

    @property
    def has_annotations(self) -> bool:
        """Annotated: at least one box, or marked so; else an image list."""
        return self.num_objects > 0 or self.marked_annotated

    def objects_per_category(self) -> np.ndarray:
        """(categories,) int64: boxes of each category (the valid ones)."""
        classes = [c for line in self.lines for c in line.classes]
        return np.bincount(np.array(classes, dtype=np.int64), minlength=self.categories)

    def densest_line(self) -> KSLine | None:
        """The line with the most boxes (the first, on ties)."""
        return max(self.lines, key=lambda line: len(line.classes), default=None)

    def records(self) -> list[ImageRecord]:
        """One record per image line, image ids 1-based in file order.

        Only meaningful without errors (every image was read)."""
        if self.errors:
            raise AnnotationError(self.source, self.errors)
        return [ImageRecord(image_id=index, path=line.path, width=line.width,
                            height=line.height, boxes=np.array(line.boxes, np.float32),
                            classes=np.array(line.classes, np.int64), source_line=line.line)
                for index, line in enumerate(self.lines, 1)]


# ----------------------------------------------------------------------
# parsing: text only
# ----------------------------------------------------------------------

def parse_ks_text(source: str, data: bytes,
                  categories: int) -> tuple[list[KSLine], list[Problem], bool]:
    """Parse the bytes of a ks file: the image lines (a repeated image's
    too, marked `repeat_of`), the text problems, and whether the file holds
    the line "# annotated".

    `source` is the file's path: relative image paths resolve against its
    folder, and problems name it. Each line goes through `parse_ks_line`.
    """
    folder = os.path.dirname(os.path.abspath(source))
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    lines: list[KSLine] = []
    problems: list[Problem] = []
    first_seen: dict[str, int] = {}
    marked_annotated = False

    for number, raw in enumerate(_LINE_BREAK.split(data), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(Problem(source, number, f"not UTF-8 (byte 0x{raw[e.start]:02x} at "
                                                    f"byte {e.start + 1} of the line): save the "
                                                    f"file as UTF-8"))
            continue
        entry, line_problems = parse_ks_line(text, categories, number, folder)
        if entry is None:
            marked_annotated = marked_annotated or is_annotated_mark(text)
        else:
            key = os.path.normcase(entry.path)
            entry.repeat_of = first_seen.get(key)
            if entry.repeat_of is not None:
                line_problems.insert(0, f"image {_show(entry.written_path)} is listed again "
                                        f"(first on line {entry.repeat_of}): put all its boxes "
                                        f"on one line")
            first_seen.setdefault(key, number)
            lines.append(entry)  # repeats too: their boxes are checked against the image
        problems += [Problem(source, number, message) for message in line_problems]
    return lines, problems, marked_annotated


def parse_ks_line(text: str, categories: int | None, number: int = 0,
                  folder: str = "") -> tuple[KSLine | None, list[str]]:
    """One line of a ks file (decoded, without its line end): the image line
    it holds (its path resolved against `folder`), or None for a blank line,
    a comment, or a line that starts with a box; and the line's problems,
    worded to follow `file:line: `.

    `categories`: db.categories; None takes any whole number >= 0 as a
    category (a caller that reads only the image paths)."""
    # A byte-order mark can also sit mid-file where files were concatenated.
    text = text.lstrip("\ufeff").strip(" \t")
    if not text or text.startswith("#"):
        return None, []
    categories = sys.maxsize if categories is None else categories
    fields = [f for f in text.replace("\t", " ").split(" ") if f]
    written_path = fields[0]
    if "," in written_path and _parse_box(written_path, categories)[1] is None:
        return None, [f"the line starts with a box ({_quoted(written_path)}), not an image path"]
    entry = KSLine(number, written_path, os.path.normpath(os.path.join(folder, written_path)))
    problems: list[str] = []
    good = _parse_good_line(fields[1:], categories)
    if good is not None:
        entry.boxes = good[:, :4].tolist()
        entry.classes = good[:, 4].astype(np.int64).tolist()
        entry.box_texts = list(enumerate(fields[1:], 1))
    else:
        _parse_boxes_one_by_one(entry, fields[1:], categories, problems.append)
    return entry, problems


def is_annotated_mark(text: str) -> bool:
    """Whether a line is the comment "# annotated" (see the module docstring)."""
    return bool(_ANNOTATED_MARK.match(text.lstrip("\ufeff").strip(" \t")))


def ks_image_paths(path: str, categories: int | None = None) -> list[str]:
    """The image of each line of a ks file, absolute, in file order (a
    repeated image as often as it is listed); the boxes are parsed but their
    problems ignored (demo.py --images). ValueError when a line holds no
    image path (not UTF-8, or starting with a box), or the file no image."""
    with open(path, "rb") as f:
        data = f.read()
    lines, problems, _ = parse_ks_text(path, data, categories)
    with_image = {line.line for line in lines}
    unreadable = [str(p) for p in problems if p.line not in with_image]
    if unreadable:
        raise ValueError("; ".join(unreadable))
    if not lines:
        raise ValueError(f"{path}: " + ("the file is empty" if not data else "no image lines"))
    return [line.path for line in lines]


def _parse_boxes_one_by_one(entry: KSLine, tokens: list[str], categories: int, problem):
    for position, token in enumerate(tokens, 1):
        if token.startswith("#"):
            problem("'#' starts a comment only at the beginning of a line; "
                    "move the comment to a line of its own")
            return
        box, error = _parse_box(token, categories)
        if error is not None:
            problem(f"box {position} {_quoted(token)}: {error}")
            continue
        entry.boxes.append(box[:4])
        entry.classes.append(int(box[4]))
        entry.box_texts.append((position, token))


def _parse_good_line(tokens: list[str], categories: int) -> np.ndarray | None:
    """The boxes of a line without mistakes, (len(tokens), 5) float64; None when
    anything is off (the box-by-box parser then words each reason).

    Files hold hundreds of thousands of boxes: checking a line at once keeps
    loading several times faster than box by box."""
    if not tokens:
        return np.zeros((0, 5))
    if set(map(_count_commas, tokens)) != {4}:
        return None
    joined = ",".join(tokens)
    if joined.translate(_DROP_NUMBER_CHARACTERS):  # letters (nan, inf), "_", ...
        return None
    try:
        values = np.array(list(map(float, joined.split(",")))).reshape(-1, 5)
    except ValueError:
        return None
    x1, y1, x2, y2, c = values.T
    if (np.isfinite(values).all() and (x2 > x1).all() and (y2 > y1).all()
            and (c == np.floor(c)).all() and (c >= 0).all() and (c < categories).all()):
        return values
    return None


def _parse_box(token: str, categories: int):
    """`x1,y1,x2,y2,c` -> ([x1, y1, x2, y2, c], None), or (None, reason)."""
    parts = token.split(",")
    # Fast path for a good box (files hold hundreds of thousands); any doubt
    # goes to the checks below, which word the reason.
    if len(parts) == 5 and "_" not in token and token.isascii():
        try:
            values = [float(part) for part in parts]
        except ValueError:
            pass
        else:
            x1, y1, x2, y2, c = values
            if (math.isfinite(x1 + y1 + x2 + y2) and x2 > x1 and y2 > y1
                    and c.is_integer() and 0 <= c < categories):
                return values, None
    reason = _box_problem(parts, categories)
    if reason:
        return None, reason
    return [float(part) for part in parts], None  # good, beyond the fast path's sum check


def _box_problem(parts: list[str], categories: int) -> str:
    """Why `parts` (a box split at commas) is not a good box; "" if it is one."""
    if len(parts) != len(_BOX_FIELDS):
        hint = " (full-width commas? use ASCII ',')" if any("，" in p for p in parts) else ""
        return (f"has {len(parts)} field{'s' if len(parts) != 1 else ''}; a box is "
                f"x1,y1,x2,y2,c (5 numbers, commas, no spaces){hint}")
    values, reasons = [], []
    for name, part in zip(_BOX_FIELDS, parts):
        value = _number(part)
        if value is None:
            hint = "" if part.isascii() else " (write digits as ASCII 0-9)"
            reasons.append(f"{name} {_quoted(part)} is not a number{hint}")
        elif not math.isfinite(value):
            reasons.append(f"{name} is {part}: coordinates and categories must be finite numbers")
        values.append(value)
    if reasons:
        return "; ".join(reasons)
    x1, y1, x2, y2, c = values
    if x2 <= x1:
        reasons.append(f"x2 ({parts[2]}) <= x1 ({parts[0]})")
    if y2 <= y1:
        reasons.append(f"y2 ({parts[3]}) <= y1 ({parts[1]})")
    if reasons:
        reasons[-1] += " (a box is x1,y1,x2,y2 with x2/y2 the right/bottom edge, not a width/height)"
    if not c.is_integer():
        reasons.append(f"category {_quoted(parts[4])} is not a whole number")
    elif not 0 <= c < categories:
        # as written: a float of 20 nines prints as 1 followed by 20 zeros
        reasons.append(f"category {parts[4]} is out of range: db.categories is {categories}, "
                       f"so 0..{categories - 1}")
    return "; ".join(reasons)


def _number(text: str) -> float | None:
    # float() also takes "1_000" and full-width or other non-ASCII digits; a
    # ks number is plain ASCII decimal notation.
    if not text or "_" in text or not text.isascii():
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _quoted(text: str) -> str:
    """Text of the file in double quotes, or escaped as Python writes it when
    it holds control characters (a NUL byte would reach the terminal)."""
    return f'"{text}"' if text.isprintable() else repr(text)


def _show(text: str) -> str:
    """A path for a message: as is, or quoted when it holds invisible characters."""
    return text if text.isprintable() else repr(text)


# ----------------------------------------------------------------------
# checks against the images
# ----------------------------------------------------------------------

def _probe(path: str, decode: bool, max_pixels: int | None):
    """(width, height) or the ImageReadError; `decode` reads every pixel.

    The size rule comes first, from the header, so that an image too large
    to use is never decoded."""
    try:
        width, height = image_size(path, max_pixels)
        if decode:
            height, width = read_image(path).shape[:2]
        return width, height
    except ImageReadError as e:
        return e


def check_images(source: str, lines: list[KSLine], decode: bool = False,
                 progress: bool = False,
                 max_pixels: int | None = None) -> tuple[list[Problem], list[Problem]]:
    """Read each line's image (header, or every pixel with `decode`) and
    check its boxes against its size: (errors, warnings).

    Sets each line's width and height, clips boxes partly outside the image
    (a warning) and drops boxes entirely outside it (an error). An image of
    more than `max_pixels` pixels (default: db.max_image_pixels's default)
    is an error."""
    errors, warnings = [], []
    paths = list(dict.fromkeys(line.path for line in lines))  # a repeated image is read once
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda p: _probe(p, decode, max_pixels), paths)
        if progress:
            from tqdm import tqdm
            results = tqdm(results, total=len(paths), desc="reading images", unit="image",
                           file=sys.stderr)
        size_of = dict(zip(paths, results))

    for line in lines:
        size = size_of[line.path]
        if isinstance(size, ImageReadError):
            shown = _show(line.written_path)
            if isinstance(size, ImageTooLargeError):
                errors.append(Problem(source, line.line, f"image {shown} is too large: {size.reason}"))
            elif not os.path.lexists(line.path):  # a link in a loop exists, and says so
                where = "" if line.written_path == line.path else f" (looked for {line.path})"
                errors.append(Problem(source, line.line, f"image {shown} does not exist{where}"))
            else:
                errors.append(Problem(source, line.line, f"image {shown} cannot be read: {size.reason}"))
            continue
        line.width, line.height = size
        _fit_boxes(source, line, errors, warnings)
    return errors, warnings


def _fit_boxes(source, line, errors, warnings):
    width, height = line.width, line.height
    kept_boxes, kept_classes, kept_texts = [], [], []
    for box, cls, (position, text) in zip(line.boxes, line.classes, line.box_texts):
        box, clipped = clip_to_image(box, width, height)
        if box is None:
            errors.append(Problem(source, line.line, f"box {position} {_quoted(text)} lies "
                                                     f"entirely outside its image ({width}x{height})"))
            continue
        if clipped:
            warnings.append(Problem(source, line.line, f"box {position} {_quoted(text)} extends "
                                                       f"past its image ({width}x{height}): clipped to "
                                                       f"{','.join(format_ks_number(v) for v in box)}"))
        kept_boxes.append(box)
        kept_classes.append(cls)
        kept_texts.append((position, text))
    line.boxes, line.classes, line.box_texts = kept_boxes, kept_classes, kept_texts


# ----------------------------------------------------------------------
# the whole file
# ----------------------------------------------------------------------

def inspect_ks_file(path: str, categories: int, decode: bool = False,
                    progress: bool = False, max_pixels: int | None = None) -> KSReport:
    """Parse a ks file and check it against its images, collecting every problem.

    Raises only when the file itself cannot be read; every problem of its
    content is in the report. `decode=True` decodes every image (the check
    command); otherwise only headers are read (loading). `max_pixels`:
    db.max_image_pixels (default: its schema default)."""
    path = os.path.abspath(path)
    with open(path, "rb") as f:
        data = f.read()
    lines, errors, marked_annotated = parse_ks_text(path, data, categories)
    image_errors, warnings = check_images(path, lines, decode=decode, progress=progress,
                                          max_pixels=max_pixels)
    errors += image_errors
    lines = [line for line in lines if line.repeat_of is None]  # one record per image
    if not lines and not errors:
        errors.append(Problem(path, 0, "lists no images"))
    errors.sort(key=lambda p: p.line)  # stable: a line's problems stay in order
    return KSReport(path, categories, lines, errors, warnings, marked_annotated)


def load_ks(path: str, categories: int, category_names: list[str] | None = None,
            split: str = "", max_pixels: int | None = None) -> DetectionDB:
    """Read a ks file into a DetectionDB; `AnnotationError` listing every problem.

    `max_pixels`: db.max_image_pixels (default: its schema default)."""
    report = inspect_ks_file(path, categories, max_pixels=max_pixels)
    if report.errors:
        raise AnnotationError(report.source, report.errors,
                              hint=f"check again with `python -m db.ks {shlex.quote(report.source)}`")
    names = list(category_names) if category_names else [f"class_{c}" for c in range(categories)]
    db = DetectionDB(report.records(), category_names=names,
                     category_ids=list(range(1, categories + 1)),
                     has_annotations=report.has_annotations, source=report.source,
                     split=split, dataset="KS", warnings=report.warnings)
    db.log_warnings()
    return db


def ks_path(cfg, split: str) -> str:
    return os.path.join(cfg.system.data_dir, KS_FILE.format(split=split))


def load_ks_db(cfg, split: str) -> DetectionDB:
    """The split `split` of the config's ks data: `<data_dir>/ks_<split>.txt`."""
    path = ks_path(cfg, split)
    if not os.path.isfile(path):
        raise FileNotFoundError(_missing_file_message(cfg, split, path))
    return load_ks(path, cfg.db.categories, cfg.db.category_names, split=split,
                   max_pixels=cfg.db.max_image_pixels)


def _missing_file_message(cfg, split, path):
    folder = cfg.system.data_dir
    message = (f"no annotation file {path} for split {split!r}: set system.data_dir "
               f"(now {folder}) to the folder holding ks_<split>.txt, or the split name "
               f"({split_keys(cfg, split)}) in {cfg.path or 'the config'}")
    if os.path.isdir(folder):
        found = sorted(f for f in os.listdir(folder) if f.startswith("ks_") and f.endswith(".txt"))
        message += f"; {folder} holds {', '.join(found)}" if found else f"; {folder} holds no ks_*.txt"
    else:
        message += (f"; {folder} does not exist (generate the synthetic set with "
                    f"`python -m db.synth --out {shlex.quote(folder)}` or point data_dir at your data)")
    return message


# ----------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------

def format_ks_line(image_path: str, boxes, classes) -> str:
    """One ks line (no line end): the path and its boxes, coordinates to 0.01 px."""
    if any(ch in image_path for ch in " \t\r\n"):
        raise ValueError(f"a ks image path cannot contain spaces or line breaks: {image_path!r}")
    fields = [image_path]
    for box, cls in zip(np.asarray(boxes, np.float64).reshape(-1, 4).tolist(),
                        np.asarray(classes).reshape(-1).tolist()):
        fields.append(",".join([format_ks_number(v) for v in box] + [str(int(cls))]))
    return " ".join(fields)


def format_ks_number(value: float) -> str:
    """A coordinate as a ks file writes it: to 0.01 px, without trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# ----------------------------------------------------------------------
# the check command
# ----------------------------------------------------------------------

def main(argv=None) -> int:
    from config import ConfigError, load_config
    from exit_codes import PROBLEMS, REFUSED

    parser = argparse.ArgumentParser(
        prog="python -m db.ks",
        description="Check a ks annotation file (ks-format.md): every box, and every image "
                    "fully decoded. Exit status 1 when the file has any error, 2 when it "
                    "cannot be checked (no such file, a bad --config).")
    parser.add_argument("path", help="the ks_<split>.txt file")
    parser.add_argument("--config", default="CenterNet-52", metavar="NAME",
                        help="config giving db.categories and category names (default: %(default)s)")
    parser.add_argument("--categories", type=int, default=None, metavar="N",
                        help="number of categories (default: the config's db.categories)")
    parser.add_argument("--max-image-pixels", type=int, default=None, metavar="N",
                        help="largest image accepted, in pixels (default: the config's "
                             "db.max_image_pixels, the limit train.py, test.py and demo.py apply)")
    args = parser.parse_args(argv)

    try:
        cfg = load_config(args.config, check_data=False)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return REFUSED
    categories = args.categories if args.categories is not None else cfg.db.categories
    if categories < 1:
        parser.error(f"--categories must be >= 1, got {categories}")
    names = (cfg.db.category_names if categories == cfg.db.categories
             else [""] * categories)
    max_pixels = (cfg.db.max_image_pixels if args.max_image_pixels is None
                  else args.max_image_pixels)
    if max_pixels < 1:
        parser.error(f"--max-image-pixels must be >= 1, got {max_pixels}")

    if not os.path.isfile(args.path):
        print(f"error: no such file: {args.path}", file=sys.stderr)
        return REFUSED
    _quiet_opencv()
    report = inspect_ks_file(args.path, categories, decode=True, progress=sys.stderr.isatty(),
                             max_pixels=max_pixels)
    print(summarize(report, names, max_tag_len=(cfg.db.max_tag_len, cfg.name)))
    return PROBLEMS if report.errors else 0


def summarize(report: KSReport, category_names: list[str], max_tag_len=None) -> str:
    """The check command's text: counts, the densest image, every problem.

    `max_tag_len`: (limit, config name): also count the images over the limit."""
    lines = [report.source]
    empty = sum(1 for line in report.lines if not line.classes)
    lines.append(f"  images: {len(report.lines):,} ({empty:,} without objects)")
    if report.lines and not report.has_annotations and not report.errors:
        lines.append(f"  no boxes at all: read as a list of images without annotations (test.py "
                     f"writes results only); if the pages were annotated and hold no objects, "
                     f"add the line \"{ANNOTATED_MARK}\" to the file")
    counted = " (boxes without problems)" if report.errors else ""
    lines.append(f"  objects: {report.num_objects:,}{counted}")
    width = max((len(n) for n in category_names), default=0)
    for c, count in enumerate(report.objects_per_category().tolist()):
        lines.append(f"    {c:>3} {category_names[c]:<{width}} {count:>9,}")
    densest = report.densest_line()
    if densest is not None:
        lines.append(f"  most objects on one image: {len(densest.classes):,} "
                     f"(line {densest.line}: {_show(densest.written_path)})")
    if max_tag_len is not None:
        limit, config_name = max_tag_len
        over = sum(1 for line in report.lines if len(line.classes) > limit)
        if over:
            lines.append(f"  images over db.max_tag_len ({limit} in {config_name}): {over:,}; "
                         f"train.py refuses to start until db.max_tag_len is raised")
    for title, problems in (("error", report.errors), ("warning", report.warnings)):
        if problems:
            lines.append(f"{plural(len(problems), title)}:")
            lines += [f"  {p}" for p in problems]
    if not report.errors:
        lines.append("OK: no errors")
    return "\n".join(lines)


def _quiet_opencv():
    # Our own message names each unreadable file; OpenCV's warnings would repeat it.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


if __name__ == "__main__":
    sys.exit(main())
