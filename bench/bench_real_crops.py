"""How well real photographed problems are read (issue 24): each crop of a
folder of real crops read as one problem, as grade.py reads a detected box,
against its label; and, in the same run, rapidocr's PP-OCR reading the whole
crop as one line, the peer the issue measures against.

    python -m bench.bench_real_crops                          # ../shared/real/crops-dev
    python -m bench.bench_real_crops --crops other/folder --reader CRNN-tiny
    python -m bench.bench_real_crops --no-peer                # without rapidocr

The crops (`images/NAME.jpg` and `labels.txt`, lines `NAME.jpg,LABEL`) are
real pictures, for measuring only (shared/real/README.md): they are read
from where they lie, never copied into the project, and nothing here is
chosen by them. When the folder is not there the benchmark says so and
measures nothing.

A label is one line of the crop's text, with codes for what ASCII lacks:
`d` ÷, `x` ×, `Y` ≈, `%` a remainder's dots, `-` the minus sign; a compare
problem holds its sign where the circle is (`53-6<49`), and `(N)` after an
operator is a filled blank (`7d(1)=7`). `label_parts` turns it into the side
file's two texts (docs/ks-format.md): `53−6○49` and `<`, `7÷( )=7` and `1`,
otherwise the printed part up to the last `=` or `≈` and the answer after
it (`62+4=` and `66`; `433÷11=` and nothing). A decision is right when
grading our reading gives what grading the label gives (reader/arithmetic.py:
right, wrong, unanswered or unreadable).

Rows: what grade.py reads (the recognizer, with PP-OCR's second opinion
where grade.py uses one: reader/engine.py), the recognizer alone, PP-OCR
alone through our decoding, and rapidocr as it reads a line (`RapidOCR()(img,
use_det=False, use_cls=False, use_rec=True)`, its text compared with the
label's after the same notation: ASCII stand-ins, full-width signs and
spaces folded). rapidocr is an optional extra of this benchmark
(`pip install --no-deps -r requirements-ocr.txt`, with the packages its own
code imports); without it that row says so. Goals (issue 24): printed part
>= 90 %, answer >= 85 %, decisions >= 90 %, the whole problem exact at
least 10 points above rapidocr's.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

import numpy as np

from bench.report import markdown_table, write_section

DEFAULT_CROPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                             "shared", "real", "crops-dev")
GOALS = {"printed": 0.90, "answer": 0.85, "decision": 0.90}
PEER_MARGIN = 0.10

_CODES = str.maketrans({"d": "÷", "x": "×", "Y": "≈", "-": "−"})
_FILLED = re.compile(r"(?:(?<=^)|(?<=[+−×÷]))\((\d+(?:\.\d+)?)\)")


def label_parts(label: str) -> tuple[str, str]:
    """(printed, answer) of a crop's label, in the side file's notation."""
    text = label.strip().translate(_CODES).replace("%", "……").replace(" ", "")
    relations = re.findall(r"[<>]", text)
    if len(relations) == 1 and "=" not in text and "≈" not in text:
        at = text.index(relations[0])
        return text[:at] + "○" + text[at + 1:], relations[0]
    filled = list(_FILLED.finditer(text))
    if len(filled) == 1:
        match = filled[0]
        return text[:match.start()] + "( )" + text[match.end():], match.group(1)
    signs = [k for k, c in enumerate(text) if c in "=≈"]
    if not signs:
        return text, ""
    return text[:signs[-1] + 1], text[signs[-1] + 1:]


_PEER_FOLD = str.maketrans({"（": "(", "）": ")", "x": "×", "X": "×", "-": "−", "－": "−", "~": "≈",
                            "～": "≈", "＋": "+", "＝": "=", "＜": "<", "＞": ">", "：": "÷"})


def peer_text(text: str) -> str:
    """rapidocr's line in the labels' notation: ASCII and full-width forms folded, no spaces."""
    return text.translate(_PEER_FOLD).replace(" ", "").replace("...", "……")


def whole_text(printed: str, answer: str) -> str:
    """The whole problem as one line, the answer in its place."""
    if "○" in printed:
        return printed.replace("○", answer or "○")
    if "( )" in printed:
        return printed.replace("( )", f"({answer})")
    return printed + answer


def read_crops(folder: str) -> list[tuple[str, str, str]]:
    """[(image path, printed, answer)] of a crop folder's labels.txt."""
    items = []
    with open(os.path.join(folder, "labels.txt"), encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            name, sep, label = line.strip().partition(",")
            if not sep:
                raise SystemExit(f"{folder}/labels.txt:{number}: not NAME.jpg,LABEL")
            items.append((os.path.join(folder, "images", name), *label_parts(label)))
    return items


def score(rows) -> dict:
    """rows: (printed read, answer read, printed true, answer true) -> shares."""
    from reader.arithmetic import grade

    n = len(rows)
    printed = sum(p == tp for p, _, tp, _ in rows)
    answer = sum(a == ta for _, a, _, ta in rows)
    both = sum(p == tp and a == ta for p, a, tp, ta in rows)
    decision = sum(grade(p or "", a or "").decision == grade(tp, ta).decision
                   for p, a, tp, ta in rows)
    return {"n": n, "printed": printed / n, "answer": answer / n, "both": both / n,
            "decision": decision / n}


def percent(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", default=DEFAULT_CROPS,
                        help="folder of real crops: images/ and labels.txt (default "
                             "../shared/real/crops-dev)")
    parser.add_argument("--reader", default="CRNN-tiny", help="recognizer config")
    parser.add_argument("--reader-iter", default="latest")
    parser.add_argument("--no-peer", action="store_true", help="leave rapidocr out")
    parser.add_argument("--section", default="real-crops", help="BENCHMARKS.md section name")
    args = parser.parse_args(argv)

    folder = os.path.normpath(args.crops)
    if not os.path.isfile(os.path.join(folder, "labels.txt")):
        print(f"bench_real_crops: no real crops at {folder} (images/ and labels.txt): nothing "
              f"measured, BENCHMARKS.md left as it is", file=sys.stderr)
        return 0
    import cv2
    import torch

    from reader.config import load_reader_config
    from reader.engine import load_reader
    from reader.grading import grade_boxes

    items = read_crops(folder)
    images = [cv2.imread(path, cv2.IMREAD_COLOR) for path, _, _ in items]
    missing = [path for (path, _, _), image in zip(items, images) if image is None]
    if missing:
        raise SystemExit(f"bench_real_crops: cannot read {', '.join(missing)}")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = load_reader_config(args.reader)
    iteration = args.reader_iter if args.reader_iter == "latest" else int(args.reader_iter)
    results, timings = {}, {}
    for name, second in (("grade.py's reading", "auto"), ("the recognizer alone", "none"),
                         ("PP-OCR alone, our decoding", "only")):
        reader = load_reader(cfg, iteration, second_reader=second)
        if second == "only" and reader.line_reader is None:
            results[name] = None
            continue
        rows, started = [], time.perf_counter()
        for image, (_, printed, answer) in zip(images, items):
            h, w = image.shape[:2]
            graded, = grade_boxes(reader, image, np.array([[0.0, 0.0, w, h]]))
            rows.append((graded.printed, graded.answer, printed, answer))
        timings[name] = (time.perf_counter() - started) / len(items)
        results[name] = (score(rows), rows)
        if second == "auto":
            used = reader.line_reader is not None
            trained_iteration = reader.iteration
    peer = None if args.no_peer else _peer(images, items)

    table = []
    for name, result in results.items():
        if result is None:
            table.append([name, "-", "-", "-", "-", "PP-OCR not installed", "-"])
            continue
        s, _ = result
        table.append([name, percent(s["printed"]), percent(s["answer"]), percent(s["both"]),
                      percent(s["decision"]), f"{1000 * timings[name]:.0f}", ""])
    if peer is None:
        table.append(["rapidocr 1.4.4, the crop as one line", "-", "-", "-", "-",
                      "-", "not measured: " + ("--no-peer" if args.no_peer else _PEER_MISSING)])
    else:
        table.append(["rapidocr 1.4.4, the crop as one line", "-", "-", percent(peer["both"]), "-",
                      f"{1000 * peer['seconds']:.0f}", ""])
    ours, _ = results["grade.py's reading"]
    goals = [f"printed part >= {100 * GOALS['printed']:.0f} %: "
             f"{'reached' if ours['printed'] >= GOALS['printed'] else 'not reached'}",
             f"answers >= {100 * GOALS['answer']:.0f} %: "
             f"{'reached' if ours['answer'] >= GOALS['answer'] else 'not reached'}",
             f"decisions >= {100 * GOALS['decision']:.0f} %: "
             f"{'reached' if ours['decision'] >= GOALS['decision'] else 'not reached'}"]
    if peer is not None:
        margin = ours["both"] - peer["both"]
        goals.append(f"whole problem {100 * margin:+.1f} points against rapidocr (>= +10: "
                     f"{'reached' if margin >= PEER_MARGIN - 1e-9 else 'not reached'})")
    misread = [f"`{whole_text(tp, ta)}` read `{whole_text(p or '', a or '')}`"
               for p, a, tp, ta in results["grade.py's reading"][1] if (p, a) != (tp, ta)]
    title = (f"{len(items)} photographed problems of `{os.path.basename(folder)}`, recognizer "
             f"{cfg.name} (iteration {trained_iteration})")
    header = ["reader", "printed part exact", "answer exact", "whole problem exact",
              "decision right", "ms / crop", ""]
    if not used:
        title += (", without PP-OCR" if cfg.reader.second_reader == "none"
                  else ", PP-OCR not installed")
    body = f"""### Real crops: {title}

Each crop read as one problem, its whole picture the box, as grade.py reads a
detected box (reader/grading.py grade_boxes), against its label
(bench/bench_real_crops.py label_parts: the printed part, and the answer
after the last `=`/`≈`, in the circle, or in a filled blank). Whole problem:
both parts exact; decision: grading the reading gives what grading the label
gives. rapidocr's text is compared with the label's as one line. ms per crop
on this machine, one crop at a time (grade.py reads a page's boxes in batches).

{markdown_table(header, table)}

Goals of issue 24 on these crops: {'; '.join(goals)}.

Misread by grade.py's reading ({len(misread)}): {', '.join(misread) or 'none'}.
"""
    print(write_section(args.section, body))
    return 0


_PEER_MISSING = ("rapidocr is not installed (pip install --no-deps -r requirements-ocr.txt; "
                 "its own code needs pyclipper, shapely, six, PyYAML)")


def _peer(images, items) -> dict | None:
    """rapidocr reading each crop as one line, as the issue measured it; None when missing."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return None
    ocr = RapidOCR()
    both, started = 0, time.perf_counter()
    for image, (_, printed, answer) in zip(images, items):
        result, _ = ocr(image, use_det=False, use_cls=False, use_rec=True)
        text = peer_text(result[0][0]) if result else ""
        both += text == whole_text(printed, answer)
    return {"both": both / len(items), "seconds": (time.perf_counter() - started) / len(items)}


if __name__ == "__main__":
    sys.exit(main())
