"""What the recognizer reads, as data: its two alphabets with CTC's blank,
greedy CTC decoding, and the side file ks_<split>_text.jsonl that holds, box
by box, what each problem reads (docs/ks-format.md, "What each box reads").

    pages = read_text_file("data/ks/ks_val_text.jsonl")   # [PageText], errors with file:line
    alphabet = Alphabet("0123456789<>=")
    alphabet.encode("17") -> [2, 8]; alphabet.decode_path([0, 2, 2, 0, 8, 8]) -> "17"
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import numpy as np
import torch

BLANK = 0  # CTC's blank is class 0 of both heads; character i of an alphabet is class i + 1


class Alphabet:
    """The characters one head reads; class 0 is CTC's blank."""

    def __init__(self, characters: str):
        self.characters = characters
        self.index = {c: i + 1 for i, c in enumerate(characters)}

    @property
    def classes(self) -> int:
        return len(self.characters) + 1

    def unknown(self, text: str) -> str:
        """The characters of `text` this alphabet lacks, each once, in order."""
        return "".join(dict.fromkeys(c for c in text if c not in self.index))

    def encode(self, text: str) -> list[int]:
        missing = self.unknown(text)
        if missing:
            raise ValueError(f"{text!r} holds {missing!r}, not in the alphabet {self.characters!r}")
        return [self.index[c] for c in text]

    def decode_path(self, path) -> str:
        """Best-path CTC decoding: repeats merged, then blanks dropped."""
        out, previous = [], BLANK
        for k in path:
            k = int(k)
            if k != previous and k != BLANK:
                out.append(self.characters[k - 1])
            previous = k
        return "".join(out)


def greedy_decode(log_probs: torch.Tensor, alphabet: Alphabet) -> list[tuple[str, float]]:
    """(T, B, C) log-probabilities -> per crop (text, confidence), confidence the
    probability of the best path (the product over time of each step's best class)."""
    best, path = log_probs.float().max(dim=2)                        # (T, B)
    confidence = best.sum(dim=0).exp().tolist()
    paths = path.t().cpu().numpy()                                    # (B, T)
    return [(alphabet.decode_path(p), float(c)) for p, c in zip(paths, confidence)]


_FILL_BLANK = re.compile(r"\(\s*\)")


def canonical_printed(text: str) -> str:
    """A printed reading in the side file's notation (docs/ks-format.md): a fill
    problem's blank is `( )` however many spaces the reader put between the
    parentheses (an underline filled with handwriting shows no gap to read)."""
    return _FILL_BLANK.sub("( )", text)


def ctc_targets(texts: list[str], alphabet: Alphabet) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated targets and their lengths, as nn.CTCLoss takes them (an
    empty text, an unanswered problem, is a target of length 0)."""
    encoded = [alphabet.encode(t) for t in texts]
    flat = torch.tensor([k for e in encoded for k in e], dtype=torch.long)
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
    return flat, lengths


# --------------------------------------------------------------------------
# ks_<split>_text.jsonl
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class PageText:
    """One line of a side file: an image and what each of its boxes reads."""
    image: str                   # absolute path
    boxes: np.ndarray            # (N, 4) float64 x1, y1, x2, y2
    classes: tuple[int, ...]
    printed: tuple[str, ...]
    answers: tuple[str, ...]
    solutions: tuple[str, ...]   # "" where the file gives none


class TextFileError(ValueError):
    """A side file that cannot be used; the message lists every problem with file:line."""


def text_file(data_dir: str, split: str) -> str:
    return os.path.join(data_dir, f"ks_{split}_text.jsonl")


def read_text_file(path: str, check_images: bool = True) -> list[PageText]:
    """Every line of a ks_<split>_text.jsonl file; all problems reported at once."""
    if not os.path.isfile(path):
        folder = os.path.dirname(path) or "."
        raise TextFileError(
            f"no side file {path}: it is written by the generator beside ks_<split>.txt "
            f"(python -m db.synth --out {folder}); pages generated before it existed are the "
            f"same bytes, so generating again with the same seed adds it")
    folder = os.path.dirname(os.path.abspath(path))
    pages, problems = [], []
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                pages.append(_page(json.loads(line), folder, check_images))
            except json.JSONDecodeError as e:
                problems.append(f"{where}: not JSON: {e.msg}")
            except (KeyError, TypeError, ValueError) as e:
                problems.append(f"{where}: {e}")
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise TextFileError("\n".join(shown))
    return pages


def _page(entry: dict, folder: str, check_images: bool) -> PageText:
    if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
        raise ValueError("each line is an object with 'image' (a path) and 'problems' (a list)")
    image = entry["image"] if os.path.isabs(entry["image"]) else os.path.join(folder, entry["image"])
    if check_images and not os.path.isfile(image):
        raise ValueError(f"image {entry['image']} does not exist")
    problems = entry.get("problems")
    if not isinstance(problems, list):
        raise ValueError("'problems' must be a list")
    boxes, classes, printed, answers, solutions = [], [], [], [], []
    for k, problem in enumerate(problems):
        box = problem.get("box") if isinstance(problem, dict) else None
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            raise ValueError(f"problem {k}: 'box' must be [x1, y1, x2, y2]")
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"problem {k}: box {box} has x2 <= x1 or y2 <= y1")
        for key in ("printed", "answer"):
            if not isinstance(problem.get(key), str):
                raise ValueError(f"problem {k}: {key!r} must be a string")
        boxes.append(box)
        classes.append(int(problem.get("class", -1)))
        printed.append(problem["printed"])
        answers.append(problem["answer"])
        solutions.append(str(problem.get("solution", "")))
    return PageText(image=image, boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
                    classes=tuple(classes), printed=tuple(printed), answers=tuple(answers),
                    solutions=tuple(solutions))
