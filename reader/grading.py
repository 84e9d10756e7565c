"""Grading a page: the detector's boxes, read by the recognizer, marked by the
arithmetic (reader/arithmetic.py); the JSON and the picture grade.py writes,
and the comparison with ks_<split>_text.jsonl that bench/bench_grading.py
reports.

    problems = grade_boxes(reader, image, select_boxes(detections, 0.3))
    page_json(path, image, problems)          # what <out>/<stem>.json holds
    draw_grades(image, problems)              # a tick or a cross per problem, the score on top
    compare_with_truth(problems, page_text)   # per ground-truth problem found: exact or not

Detections are (N, 6) rows x1, y1, x2, y2, score, class, possibly one place
under several categories (CenterNet-tiny reports a box once per category it
considers): `select_boxes` keeps the best row per place (test/boxes.py
`one_per_place`, as the debug pictures draw them) and then drops a box that
lies mostly inside a better one (a piece of a problem found beside the
whole).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from test.boxes import SAME_PLACE_IOU, match_greedy, one_per_place, share_inside
from test.boxes import iou as box_iou

from .arithmetic import DECISIONS, RIGHT, UNANSWERED, UNREADABLE, WRONG, grade
from .crops import EmptyCrop, box_patch
from .decoding import best_reading, log_likelihoods, second_opinion
from .text import canonical_printed

# The defaults of db.grade_inside_share and db.grade_truth_iou, for callers
# without a config: a box whose area lies this much inside a better-scoring
# kept box is a piece of it; a found box is a ground-truth problem's when they
# overlap this much.
INSIDE_BETTER = 0.6
TRUTH_IOU = 0.5

_COLOURS = {RIGHT: (40, 160, 40), WRONG: (30, 30, 220), UNANSWERED: (0, 150, 230),
            UNREADABLE: (200, 60, 200)}   # BGR


@dataclass(frozen=True)
class GradedProblem:
    box: list                 # x1, y1, x2, y2 in image pixels
    score: float | None       # the detector's score (None for given boxes)
    category: int | None      # the detector's category index
    printed: str | None       # what the recognizer read (None: nothing could be read)
    answer: str | None        # and graded: the best paths, or readings near them (decoding.py)
    printed_confidence: float | None
    answer_confidence: float | None
    decision: str             # right, wrong, unanswered or unreadable
    kind: str | None          # result, fill or compare
    expected: str | None      # the right answer, when the printed part says it
    reason: str | None        # why unreadable
    printed_read: str | None = None  # the heads' best paths, before weighing (reader/decoding.py)
    answer_read: str | None = None
    second_opinion: bool = False     # PP-OCR was asked too (reader/ppocr.py)


def select_boxes(detections, threshold: float, same_place_iou: float = SAME_PLACE_IOU,
                 inside_better: float = INSIDE_BETTER) -> np.ndarray:
    """The (K, 6) detections to grade: scoring >= threshold, one per place
    (test/boxes.py one_per_place, at same_place_iou), best first, none with
    `inside_better` or more of its area inside a better one."""
    rows = one_per_place(np.asarray(detections, np.float64).reshape(-1, 6), threshold,
                         same_place_iou)
    kept = []
    for i in range(len(rows)):
        if not kept or share_inside(rows[i:i + 1, :4], rows[kept, :4]).max() < inside_better:
            kept.append(i)
    return rows[kept]


def reading_order(boxes: np.ndarray) -> np.ndarray:
    """Indices of (N, 4+) boxes by rows, top to bottom, then left to right."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    boxes = np.asarray(boxes, np.float64).reshape(len(boxes), -1)
    centres = (boxes[:, 1] + boxes[:, 3]) / 2.0
    tolerance = 0.5 * float(np.median(boxes[:, 3] - boxes[:, 1]))
    by_y = np.argsort(centres, kind="stable")
    rows, row, top = [], [], None
    for i in by_y:
        if top is not None and centres[i] - top > tolerance:
            rows.append(row)
            row = []
        if not row:
            top = centres[i]
        row.append(i)
    rows.append(row)
    return np.array([i for r in rows for i in sorted(r, key=lambda k: boxes[k, 0])], np.int64)


def grade_boxes(reader, image: np.ndarray, detections,
                right_answer_prior: float | None = None) -> list[GradedProblem]:
    """Read and grade each box of `detections`: (N, 6) rows as select_boxes gives
    them, or (N, 4) boxes; in reading order.

    Where the best paths leave the problem unreadable or the answer wrong, the
    readings near them are weighed (reader/decoding.py best_reading) with
    right_answer_prior nats (default: the reader's reader.right_answer_prior)."""
    if right_answer_prior is None:
        right_answer_prior = getattr(reader, "right_answer_prior", 0.0)
    detections = np.asarray(detections, np.float64)
    detections = detections.reshape(len(detections), -1) if detections.size else np.zeros((0, 4))
    detections = detections[reading_order(detections)]
    readings = reader.read_boxes(image, detections[:, :4])
    chosen = []
    for reading in readings:
        if isinstance(reading, EmptyCrop):
            chosen.append(None)
            continue
        printed, answer = reading.printed, reading.answer
        if grade(printed, answer).decision in (WRONG, UNREADABLE):
            printed, answer = best_reading(reading, getattr(reader, "printed_alphabet", None),
                                           getattr(reader, "answer_alphabet", None),
                                           right_answer_prior)
        chosen.append((canonical_printed(printed), answer))
    asked = _second_opinions(reader, image, detections, readings, chosen, right_answer_prior)
    graded = []
    for k, (row, reading) in enumerate(zip(detections, readings)):
        score = float(row[4]) if len(row) > 4 else None
        category = int(row[5]) if len(row) > 5 else None
        box = [round(float(v), 2) for v in row[:4]]
        if isinstance(reading, EmptyCrop):
            graded.append(GradedProblem(box, score, category, None, None, None, None, UNREADABLE,
                                        None, None, str(reading)))
            continue
        printed, answer = asked.get(k) or chosen[k]
        verdict = grade(printed, answer)
        graded.append(GradedProblem(box, score, category, canonical_printed(printed), answer,
                                    round(reading.printed_confidence, 4),
                                    round(reading.answer_confidence, 4), verdict.decision,
                                    verdict.kind, verdict.expected, verdict.reason,
                                    canonical_printed(reading.printed), reading.answer,
                                    k in asked))
    return graded


def settled(reading, printed: str, answer: str, confidence: float, printed_alphabet=None,
            answer_alphabet=None) -> bool:
    """Whether the recognizer's reading needs no second opinion: a problem read
    as answered rightly (the arithmetic confirms it) or as left unanswered,
    that the crop makes at least `confidence` probable: P(printed) x
    P(answer) under the two heads' CTC, summed over every alignment (the best
    path alone, a product over every column, is far less probable: its median
    on the synthetic validation pages is 0.53). On 20 synthetic validation
    pages, asking PP-OCR about the unanswered ones too changed one of 173
    readings, for the worse, and took 42 % of its time. Without
    log-probabilities or alphabets: both best paths at least `confidence`
    probable."""
    if grade(printed, answer).decision not in (RIGHT, UNANSWERED):
        return False
    if (reading.printed_log_probs is None or reading.answer_log_probs is None
            or printed_alphabet is None or answer_alphabet is None):
        return reading.printed_confidence >= confidence and reading.answer_confidence >= confidence
    likelihood = (log_likelihoods(reading.printed_log_probs, [printed], printed_alphabet)[0]
                  + log_likelihoods(reading.answer_log_probs, [answer], answer_alphabet)[0])
    return bool(likelihood >= np.log(max(confidence, 1e-12)))


def _second_opinions(reader, image, detections, readings, chosen, prior) -> dict:
    """{box index: (printed, answer)} for the boxes PP-OCR was asked about."""
    line_reader = getattr(reader, "line_reader", None)
    mode = getattr(reader, "second_opinion", "none")
    if line_reader is None or mode == "none":
        return {}
    settings = reader.weighing
    unsure = [k for k, (reading, pair) in enumerate(zip(readings, chosen))
              if pair is not None and (mode == "always" or not settled(
                  reading, *pair, settings.settled_confidence, reader.printed_alphabet,
                  reader.answer_alphabet))]
    if not unsure:
        return {}
    patches = [box_patch(image, detections[k, :4], settings.line_margin_x, settings.line_margin_y)
               for k in unsure]
    share = 1.0 if mode == "always" else settings.second_reader_share
    asked = {}
    for k, line_log_probs in zip(unsure, line_reader.read(patches)):
        reading = readings[k]
        offered = list(dict.fromkeys([chosen[k], (canonical_printed(reading.printed), reading.answer)]))
        choice = second_opinion(reading, line_log_probs, line_reader.alphabet,
                                reader.printed_alphabet, reader.answer_alphabet, prior, share,
                                offered)
        if choice is not None:
            asked[k] = choice
    return asked


def page_score(problems: list[GradedProblem]) -> dict:
    """{"right": n, "wrong": n, "unanswered": n, "unreadable": n, "problems": n, "score": "r/n"}."""
    return score_of(Counter(p.decision for p in problems))


def score_of(decisions: dict) -> dict:
    """The score dict of decision counts (of a page, or summed over pages)."""
    score = {decision: int(decisions.get(decision, 0)) for decision in DECISIONS}
    score["problems"] = sum(score.values())
    score["score"] = f"{score[RIGHT]}/{score['problems']}"
    return score


def score_line(score: dict) -> str:
    if not score["problems"]:
        return "no problems found"
    return (f"{score['score']} right: {score[WRONG]} wrong, {score[UNANSWERED]} unanswered, "
            f"{score[UNREADABLE]} unreadable")


def page_json(image_path: str, image: np.ndarray, problems: list[GradedProblem], names=None,
              **extra) -> dict:
    """What grade.py writes per page: the image, the score, every problem."""
    entries = []
    for p in problems:
        entry = asdict(p)
        entry["name"] = names[p.category] if names is not None and p.category is not None else None
        entries.append(entry)
    return {"image": image_path, "width": int(image.shape[1]), "height": int(image.shape[0]),
            **extra, "score": page_score(problems), "problems": entries}


# --------------------------------------------------------------------------
# the picture
# --------------------------------------------------------------------------

def _tick(picture, x, y, size, colour, width):
    points = np.array([[x, y - 0.05 * size], [x + 0.3 * size, y + 0.3 * size],
                       [x + 0.85 * size, y - 0.45 * size]], np.float64)
    cv2.polylines(picture, [np.round(points * 4).astype(np.int32)], False, colour, width,
                  cv2.LINE_AA, shift=2)


def _cross(picture, x, y, size, colour, width):
    h = 0.35 * size
    for (ax, ay), (bx, by) in (((x, y - h), (x + 2 * h, y + h)), ((x + 2 * h, y - h), (x, y + h))):
        cv2.line(picture, (int(round(ax * 4)), int(round(ay * 4))),
                 (int(round(bx * 4)), int(round(by * 4))), colour, width, cv2.LINE_AA, shift=2)


def _text(picture, text, x, y, height, colour):
    scale = max(0.3, height / 22.0)
    thickness = max(1, int(round(scale * 1.5)))
    cv2.putText(picture, text, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                thickness, cv2.LINE_AA)


def draw_grades(image: np.ndarray, problems: list[GradedProblem]) -> np.ndarray:
    """A copy of the page with a tick (right), a cross and the right answer
    (wrong), a '?' (unanswered, unreadable) beside each problem, its box in
    the decision's colour, and the page's score in a band on top."""
    picture = image.copy()
    if picture.ndim == 2:
        picture = cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR)
    height, width = picture.shape[:2]
    for p in problems:
        x1, y1, x2, y2 = p.box
        size = max(8.0, y2 - y1)
        colour = _COLOURS[p.decision]
        line = max(1, int(round(size / 14)))
        cv2.rectangle(picture, (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2))),
                      colour, max(1, line // 2), cv2.LINE_AA)
        # the mark goes right of the box, or inside it at the page's right edge
        x = x2 + 0.15 * size if x2 + 1.2 * size < width else x2 - 1.0 * size
        y = (y1 + y2) / 2.0
        if p.decision == RIGHT:
            _tick(picture, x, y, size, colour, line + 1)
        elif p.decision == WRONG:
            _cross(picture, x, y, size, colour, line + 1)
            if p.expected is not None:
                _text(picture, p.expected, x + 0.8 * size, y + 0.3 * size, 0.6 * size, colour)
        else:
            _text(picture, "?", x, y + 0.35 * size, 0.8 * size, colour)
    score = page_score(problems)
    band = max(24, int(round(height * 0.03)))
    cv2.rectangle(picture, (0, 0), (width, band), (255, 255, 255), -1)
    _text(picture, score_line(score), 0.3 * band, 0.75 * band, 0.55 * band, (20, 20, 20))
    return picture


# --------------------------------------------------------------------------
# against the ground truth (ks_<split>_text.jsonl)
# --------------------------------------------------------------------------

def match_boxes(found: np.ndarray, truth: np.ndarray, iou: float = TRUTH_IOU) -> list[tuple[int, int]]:
    """One-to-one (found index, truth index) pairs overlapping by IoU >= `iou`,
    the best-overlapping pairs first (test/boxes.py match_greedy; equal
    overlaps: the earlier found box, then the earlier truth box)."""
    found = np.asarray(found, np.float64).reshape(-1, 4)
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    if not len(found) or not len(truth):
        return []
    return match_greedy(box_iou(found, truth), iou)   # (F, T)


def compare_with_truth(problems: list[GradedProblem], page_text, iou: float = TRUTH_IOU) -> dict:
    """Counts for one page: ground-truth problems, those found (IoU >= `iou`,
    match_boxes), and of the found ones how many had the printed part, the
    answer and the decision right."""
    pairs = match_boxes(np.array([p.box for p in problems]).reshape(-1, 4), page_text.boxes, iou)
    counts = Counter(truth=len(page_text.boxes), found=len(pairs), detections=len(problems))
    for f, t in pairs:
        p = problems[f]
        truth_decision = grade(page_text.printed[t], page_text.answers[t]).decision
        counts["printed_exact"] += p.printed == page_text.printed[t]
        counts["answer_exact"] += p.answer == page_text.answers[t]
        # the heads' best paths alone, before reader/decoding.py weighs readings
        counts["printed_read_exact"] += p.printed_read == page_text.printed[t]
        counts["answer_read_exact"] += p.answer_read == page_text.answers[t]
        counts["decision_right"] += p.decision == truth_decision
        counts[f"truth_{truth_decision}"] += 1
        counts[f"truth_{truth_decision}_decided"] += p.decision == truth_decision
    return dict(counts)


def accuracy(counts: dict) -> dict:
    """Totals of compare_with_truth -> the rates bench_grading and grade.py report."""
    found = counts.get("found", 0)
    rate = (lambda n: round(n / found, 4)) if found else (lambda n: None)
    result = {"truth": counts.get("truth", 0), "found": found,
              "recall": round(found / counts["truth"], 4) if counts.get("truth") else None,
              "printed_exact": rate(counts.get("printed_exact", 0)),
              "answer_exact": rate(counts.get("answer_exact", 0)),
              "decision_accuracy": rate(counts.get("decision_right", 0)),
              "printed_read_exact": rate(counts.get("printed_read_exact", 0)),
              "answer_read_exact": rate(counts.get("answer_read_exact", 0)),
              # what marking every found problem right, reading nothing, would score
              "all_right_baseline": rate(counts.get("truth_right", 0))}
    for decision in DECISIONS:
        n = counts.get(f"truth_{decision}", 0)
        if n:
            result[f"decision_accuracy_{decision}"] = round(
                counts.get(f"truth_{decision}_decided", 0) / n, 4)
    return result
