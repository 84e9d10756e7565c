"""A second reader: PP-OCR's text-line recognizer (PP-OCRv4, Apache-2.0), as
rapidocr-onnxruntime ships it inside its wheel, run with onnxruntime, and
read in the language of 口算 problems.

    line = LineReader.load()                  # None when it is not installed
    scores = line.read([patch, ...])          # per crop (T, len(LINE_SYMBOLS) + 1) log-probabilities
    options = line_readings(scores[0])        # [(printed, answer, log-likelihood)], best first

PP-OCR reads a whole line, print and handwriting alike, in 6,623 characters
of Chinese and Latin text. It never saw a 口算 page, yet reads real
photographed problems far better than a recognizer trained on synthetic ones
(BENCHMARKS.md, real-crops). Its characters are folded into the few a
problem is written in (LINE_SYMBOLS; `ALIASES` says which of its characters
count as which: `x` and `X` as ×, `（` as `(`, `O` as 0), so a line is
scored under CTC over these alone, and everything else it might see (a
tick, a smudge read as 号) weighs nothing.

A line has no print and handwriting apart; its text is split as a problem's
parts are (`split_line`): after the last `=` or `≈` comes the answer
(`62+4=66`), a number alone in brackets is a filled blank (`7÷(1)=7`), a
`<` or `>` (or `=` in a circle) between two sides is a compare answer, and
`……` or `...` between two numbers a remainder (`17÷5=3……2`); brackets right
after the last sign are the answer's place (`82×8=(656)`).

Installed with `pip install --no-deps -r requirements-ocr.txt` (scripts/setup.sh
does it where it can); only the model file and onnxruntime are used, not
rapidocr's own code (which wants opencv-python beside our headless OpenCV).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re

import cv2
import numpy as np

from .arithmetic import REMAINDER, NotAProblem, number_of, parse
from .text import Alphabet

MODEL = "ch_PP-OCRv4_rec_infer.onnx"
INPUT_HEIGHT = 48         # PP-OCR's recognition input, px
MIN_WIDTH = 4 * INPUT_HEIGHT
MAX_WIDTH = 24 * INPUT_HEIGHT
UNITS_CHARACTERS = "千米分厘毫元角小时秒吨克公斤"
# What a line of a problem is written in: the characters of the side file's
# printed and answer texts, and the remainder's dots.
LINE_SYMBOLS = "0123456789.+−×÷=()≈<>…○" + UNITS_CHARACTERS

# PP-OCR's characters that stand for one of LINE_SYMBOLS: the same sign in
# another code point (full-width forms, a dash for the minus), or a shape
# a child's digit is easily taken for.
ALIASES = {
    "0": "0０OoD〇", "1": "1１lI|丨/", "2": "2２Zz", "3": "3３", "4": "4４", "5": "5５Ss",
    "6": "6６b", "7": "7７", "8": "8８B", "9": "9９gq",
    ".": ".．。·、,，", "+": "+＋十", "−": "-－—–―一", "×": "×xX✕*乂", "÷": "÷",
    "=": "=＝二", "(": "(（", ")": ")）", "≈": "≈~～∽", "<": "<＜〈く", ">": ">＞〉",
    "…": "…", "○": "○◯",
}
ALIASES.update({c: c for c in UNITS_CHARACTERS})

UNCERTAIN = 0.9        # a column whose best symbol has less probability than this may be misread
MOST_UNCERTAIN = 7     # at most 2**7 best-path variants are scored per line


def model_path() -> str | None:
    """The PP-OCR recognition model inside rapidocr-onnxruntime's wheel, None
    when the package (or onnxruntime) is not installed. The package is not
    imported: its own code needs packages this project does not."""
    try:
        spec = importlib.util.find_spec("rapidocr_onnxruntime")
        has_runtime = importlib.util.find_spec("onnxruntime") is not None
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations or not has_runtime:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", MODEL)
    return path if os.path.isfile(path) else None


MISSING = ("PP-OCR is not installed: `.venv/bin/pip install --no-deps -r requirements-ocr.txt` "
           "(rapidocr-onnxruntime, with onnxruntime from requirements-onnx.txt)")


class LineReader:
    """PP-OCR's recognizer over LINE_SYMBOLS. One thread, one crop a call: on
    two cores, 80 synthetic problem crops took 15 ms each so, 20 ms in
    batches of 4 or 16, 27-35 ms with two threads (beside a training run)."""

    def __init__(self, path: str, threads: int = 1, batch: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        characters = self.session.get_modelmeta().custom_metadata_map.get("character")
        if not characters:
            raise ValueError(f"{path} carries no character list: not PP-OCR's recognizer")
        # class 0 is CTC's blank, then the model's characters, then a space (PaddleOCR's layout)
        classes = ["<blank>"] + characters.splitlines() + [" "]
        index = {c: i for i, c in enumerate(classes)}
        self.columns = [[index[c] for c in ALIASES[s] if c in index] for s in LINE_SYMBOLS]
        self.blank_columns = [0, len(classes) - 1]   # a space is no symbol: read as a gap
        self.alphabet = Alphabet(LINE_SYMBOLS)
        self.batch = batch
        self.path = path

    @classmethod
    def load(cls, threads: int = 1) -> "LineReader | None":
        path = model_path()
        return None if path is None else cls(path, threads)

    def read(self, patches: list[np.ndarray]) -> list[np.ndarray]:
        """BGR crops of problems -> per crop (T, len(LINE_SYMBOLS) + 1) log-probabilities
        (column 0 the blank), T the crop's width at 48 px high / 8."""
        inputs = [_input(p) for p in patches]
        order = np.argsort([x.shape[2] for x in inputs], kind="stable")
        out = [None] * len(inputs)
        for start in range(0, len(order), self.batch):
            chunk = order[start:start + self.batch]
            width = max(inputs[i].shape[2] for i in chunk)
            batch = np.zeros((len(chunk), 3, INPUT_HEIGHT, width), np.float32)
            for row, i in enumerate(chunk):
                batch[row, :, :, :inputs[i].shape[2]] = inputs[i]
            probs = self.session.run(None, {self.input_name: batch})[0]          # (B, T, classes)
            for row, i in enumerate(chunk):
                steps = max(1, math.ceil(probs.shape[1] * inputs[i].shape[2] / width))
                out[i] = self._fold(probs[row, :steps])
        return out

    def _fold(self, probs: np.ndarray) -> np.ndarray:
        """(T, classes) probabilities -> (T, 1 + symbols) log-probabilities of LINE_SYMBOLS."""
        folded = np.empty((probs.shape[0], len(self.columns) + 1), np.float32)
        folded[:, 0] = probs[:, self.blank_columns].sum(axis=1)
        for k, columns in enumerate(self.columns):
            folded[:, k + 1] = probs[:, columns].sum(axis=1)
        return np.log(np.maximum(folded, 1e-12))


def _input(patch: np.ndarray) -> np.ndarray:
    """A BGR patch as PP-OCR takes it: 48 px high, its aspect ratio kept
    (within MIN_WIDTH..MAX_WIDTH), (x / 255 - 0.5) / 0.5, channels first."""
    h, w = patch.shape[:2]
    width = int(min(MAX_WIDTH, max(MIN_WIDTH // 4, math.ceil(INPUT_HEIGHT * w / max(h, 1)))))
    resized = cv2.resize(patch, (width, INPUT_HEIGHT), interpolation=cv2.INTER_AREA
                         if h > INPUT_HEIGHT else cv2.INTER_LINEAR).astype(np.float32)
    resized = (resized / 255.0 - 0.5) / 0.5
    if width < MIN_WIDTH:   # PP-OCR pads short lines with zeros up to 320 px; a little is enough
        resized = np.concatenate([resized, np.zeros((INPUT_HEIGHT, MIN_WIDTH - width, 3),
                                                    np.float32)], axis=1)
    return resized.transpose(2, 0, 1)


# --------------------------------------------------------------------------
# a line's text <-> a problem's parts

_RELATION = re.compile(r"[<>]")
_FILLED = re.compile(r"(?<![\d.)])\((\d+(?:\.\d+)?)?\)")
_LINE_REMAINDER = re.compile(r"(\d+)(?:…+|\.{2,})(\d+)$")


def split_line(text: str) -> tuple[str, str] | None:
    """(printed, answer) of a line's text, in the side file's notation; None
    when the text is no problem."""
    text = text.replace(" ", "")
    if not text:
        return None
    relations = _RELATION.findall(text)
    if len(relations) == 1 and "=" not in text and "≈" not in text:
        left, right = _RELATION.split(text)
        return _checked(f"{left}○{right}", relations[0])
    if "○" in text and not relations:
        return _checked(text, "")                   # a compare left unanswered
    end = re.fullmatch(r"(.*[=≈])\((\d+(?:\.\d+)?|\d+(?:…+|\.{2,})\d+)?\)", text)
    if end is not None:   # the answer's place after the sign printed as brackets: "=( )"
        text = end.group(1) + (end.group(2) or "")
    filled = list(_FILLED.finditer(text))
    if len(filled) == 1:
        match = filled[0]
        printed = text[:match.start()] + "( )" + text[match.end():]
        return _checked(printed, match.group(1) or "")
    signs = [m.end() for m in re.finditer(r"[=≈]", text)]
    if not signs:
        return None
    printed, answer = text[:signs[-1]], text[signs[-1]:]
    remainder = _LINE_REMAINDER.fullmatch(answer)
    if remainder is not None:
        answer = f"{remainder.group(1)}{REMAINDER}{remainder.group(2)}"
    elif answer and number_of(answer) is None:
        return None
    return _checked(printed, answer)


def line_texts(printed: str, answer: str) -> list[str]:
    """How a problem's parts may read as one line: the answer in its place
    (after the sign, in the blank's brackets or without them, in the circle or,
    unanswered, the circle or nothing); remainders with `……` or `…`."""
    answers = [answer]
    if REMAINDER in answer:
        answers = [answer, answer.replace(REMAINDER, "…")]
    texts = []
    for a in answers:
        if "○" in printed:
            texts += [printed.replace("○", a)] if a else [printed, printed.replace("○", "")]
        elif "( )" in printed:
            texts += [printed.replace("( )", f"({a})")] + ([printed.replace("( )", a)] if a else [])
        else:   # the answer's place printed as nothing, an underline or brackets
            texts += [printed + a, f"{printed}({a})"]
    return list(dict.fromkeys(texts))


def _checked(printed: str, answer: str) -> tuple[str, str] | None:
    try:
        parse(printed)
    except (NotAProblem, ArithmeticError):
        return None
    return printed, answer


# --------------------------------------------------------------------------
# searching a line's readings

BEAM = 16             # prefixes kept per column
KEEP_ABOVE = 1e-3     # symbols under this probability in a column are not tried there


def beam_texts(log_probs: np.ndarray, alphabet: Alphabet, beam: int = BEAM) -> list[str]:
    """The `beam` most likely texts of one crop's (T, C) CTC log-probabilities
    (prefix beam search, Graves 2012 / Hannun et al. 2014), best first; in a
    column only the symbols above KEEP_ABOVE are tried."""
    log_probs = np.asarray(log_probs, np.float64)
    neg = -np.inf
    beams = {(): (0.0, neg)}   # prefix -> (log P ending in blank, log P ending in its last symbol)
    floor = math.log(KEEP_ABOVE)
    for column in log_probs:
        tried = [k for k in np.flatnonzero(column > floor) if k != 0]
        nxt: dict = {}

        def add(prefix, blank, symbol):
            b, s = nxt.get(prefix, (neg, neg))
            nxt[prefix] = (np.logaddexp(b, blank), np.logaddexp(s, symbol))

        for prefix, (b, s) in beams.items():
            total = np.logaddexp(b, s)
            add(prefix, total + column[0], neg)              # a blank
            if prefix:                                        # the last symbol repeated
                add(prefix, neg, s + column[prefix[-1]])
            for k in tried:
                k = int(k)
                if prefix and k == prefix[-1]:                # a repeat needs a blank between
                    add(prefix + (k,), neg, b + column[k])
                else:
                    add(prefix + (k,), neg, total + column[k])
        ranked = sorted(nxt.items(), key=lambda item: -np.logaddexp(*item[1]))
        beams = dict(ranked[:beam])
    return ["".join(alphabet.characters[k - 1] for k in prefix) for prefix in beams]


def _edits(text: str) -> list[tuple[str, str]]:
    """A text that is no problem, with its `=` put back before an answer:
    inserted, or in place of one symbol (a handwritten answer touching the
    sign hides it, or makes it read as a minus). (edited text, what was read
    where the `=` now is: "" for an insertion)."""
    out = []
    for at in range(1, len(text)):
        out.append((text[:at] + "=" + text[at:], ""))
    for at in range(1, len(text) - 1):
        if text[at] != "=":
            out.append((text[:at] + "=" + text[at + 1:], text[at]))
    return out


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether `a` becomes `b` by at most one symbol inserted, dropped or changed."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:k] + long_[k + 1:] == short for k in range(len(long_)))


def line_readings(log_probs: np.ndarray, alphabet: Alphabet, prior: float,
                  extra: list[tuple[str, str]] = (), full: bool = False) -> list[tuple]:
    """(score, printed, answer) of the readings of one line, best first: the
    beam's texts that are problems (or, when none is, the texts with an `=` put
    back before an answer that is, or is one symbol from, the right one,
    beside the best text as read, which is no problem: `_edits`),
    `extra` (printed, answer) pairs (another reader's), and for each problem its
    right answer. Score: log P(line | crop) under CTC, the best of the ways the
    parts may read as a line (line_texts), plus `prior` for a right answer.
    With `full`, each is (score, printed, answer, log P(line | crop), right)."""
    from .arithmetic import RIGHT, grade
    from .decoding import log_likelihoods

    texts = beam_texts(log_probs, alphabet)
    parts = {}
    for text in texts:
        found = split_line(text)
        if found is not None:
            parts.setdefault(found, None)
    restored = {}     # a reading with its `=` put back -> the line as read, without it
    if not parts and texts:
        # An `=` put back where the arithmetic confirms it: the answer read after
        # it is the right one, or one symbol from it (`08` for 0.8). Such a
        # reading is scored as the line was read, without the `=`, and weighed
        # against that line as read, which is no problem.
        for text in texts[:4]:
            for edited, was in _edits(text):
                found = split_line(edited)
                if found is None or "=" not in found[0][-1:]:
                    continue
                try:
                    expected = parse(found[0]).expected()
                except (NotAProblem, ArithmeticError):
                    continue
                if expected is not None and _one_edit_apart(found[1], expected):
                    for answer in dict.fromkeys([found[1], expected]):
                        restored.setdefault((found[0], answer), found[0][:-1] + was + answer)
        if restored:
            restored[(texts[0], "")] = texts[0]
    for pair in extra:
        if _checked(*pair) is not None:
            parts.setdefault(tuple(pair), None)
    for printed, _ in list(parts):
        try:
            expected = parse(printed).expected()
        except (NotAProblem, ArithmeticError):
            continue
        if expected is not None:
            parts.setdefault((printed, expected), None)
    renderings = {pair: line_texts(*pair) for pair in parts}
    for pair, text in restored.items():
        renderings.setdefault(pair, [text])
    if not renderings:
        return []
    unique = sorted({t for texts_ in renderings.values() for t in texts_})
    scores = dict(zip(unique, log_likelihoods(log_probs, unique, alphabet).tolist()))
    ranked = []
    for pair, texts_ in renderings.items():
        score = max(scores[t] for t in texts_)
        if score == -np.inf:
            continue
        right = grade(*pair).decision == RIGHT
        ranked.append((score + (prior if right else 0.0), pair[0], pair[1], score, right))
    ranked.sort(key=lambda r: -r[0])
    return ranked if full else [r[:3] for r in ranked]
