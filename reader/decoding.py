"""Choosing what a crop reads when the best path alone leaves the problem
unreadable or the answer wrong: a few readings near the best path, scored
exactly under CTC, weighed with what is known about 口算 pages.

    printed, answer = best_reading(reading, printed_alphabet, answer_alphabet, prior=3.0)

What is known: a printed part is a problem (reader/arithmetic.py parses it),
and pupils are mostly right (the synthetic pages have 0-8 % wrong answers).
So among the printed readings near the best path (`nbest`), the ones that are
problems are preferred; and for each, the answer is the answer head's best
path, or the problem's right answer when the crop makes it at most `prior`
nats less likely than the best path. The pair with the highest
log P(printed) + log P(answer) (+ prior for a right answer, the best path's
answer included when it is right for that printed reading) wins. A reader
who knows the sum reads a smudged digit that way; it is the choice that is
most often correct when most answers are right, and a clearly written wrong
answer stays wrong (it reads more than `prior` nats better than the right one).

Scores are log-likelihoods under CTC summed over every alignment
(nn.functional.ctc_loss), not the best path's probability.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from .arithmetic import RIGHT, NotAProblem, grade, parse
from .text import Alphabet

UNCERTAIN = 0.9      # a column whose best class has less probability than this may be misread
MOST_UNCERTAIN = 6   # at most 2**6 best-path variants are scored per head


def log_likelihoods(log_probs: np.ndarray, texts: list[str], alphabet: Alphabet) -> np.ndarray:
    """log P(text | crop) of each text under CTC, from one crop's (T, C)
    log-probabilities; -inf for a text the alphabet cannot write."""
    scores = np.full(len(texts), -np.inf)
    known = [i for i, t in enumerate(texts) if not alphabet.unknown(t)]
    if not known:
        return scores
    steps = log_probs.shape[0]
    batch = torch.as_tensor(np.ascontiguousarray(log_probs), dtype=torch.float32)
    batch = batch[:, None, :].expand(steps, len(known), batch.shape[1])        # (T, K, C)
    encoded = [alphabet.encode(texts[i]) for i in known]
    targets = torch.tensor([k for e in encoded for k in e], dtype=torch.long)
    nll = torch.nn.functional.ctc_loss(
        batch, targets, torch.full((len(known),), steps, dtype=torch.long),
        torch.tensor([len(e) for e in encoded], dtype=torch.long), reduction="none",
        zero_infinity=False)
    scores[known] = -nll.numpy()
    return scores


def nbest(log_probs: np.ndarray, alphabet: Alphabet) -> list[tuple[str, float]]:
    """Readings near the best path, best first, each with its log-likelihood:
    the best path with any of its most uncertain columns (best class under
    UNCERTAIN) switched to their second class (a character misread, dropped
    or added)."""
    log_probs = np.asarray(log_probs, np.float32)
    order = np.argsort(-log_probs, axis=1)
    best, second = order[:, 0], order[:, 1]
    confidence = np.exp(log_probs[np.arange(len(best)), best])
    uncertain = [t for t in np.argsort(confidence)[:MOST_UNCERTAIN] if confidence[t] < UNCERTAIN]
    texts = {}
    for switch in itertools.product((False, True), repeat=len(uncertain)):
        path = best.copy()
        for t, on in zip(uncertain, switch):
            if on:
                path[t] = second[t]
        texts.setdefault(alphabet.decode_path(path), None)
    texts = list(texts)
    scores = log_likelihoods(log_probs, texts, alphabet)
    ranked = sorted(zip(texts, scores.tolist()), key=lambda pair: -pair[1])
    return [(t, s) for t, s in ranked if s > -np.inf]


def best_reading(reading, printed_alphabet: Alphabet, answer_alphabet: Alphabet,
                 prior: float) -> tuple[str, str]:
    """(printed, answer) to grade, as the module docstring says; the best paths
    as they are when `reading` carries no log-probabilities."""
    if reading.printed_log_probs is None or reading.answer_log_probs is None:
        return reading.printed, reading.answer
    printed_options = nbest(reading.printed_log_probs, printed_alphabet)
    if not any(text == reading.printed for text, _ in printed_options):
        printed_options.append((reading.printed, float(log_likelihoods(
            reading.printed_log_probs, [reading.printed], printed_alphabet)[0])))
    answer_read = float(log_likelihoods(reading.answer_log_probs, [reading.answer],
                                        answer_alphabet)[0])
    problems = []
    for text, score in printed_options:
        try:
            problems.append((text, score, parse(text).expected()))
        except (NotAProblem, ArithmeticError):
            continue
    if not problems:   # nothing near the best path is a problem: it stays unreadable
        return reading.printed, reading.answer
    expected = sorted({e for _, _, e in problems if e is not None and e != reading.answer})
    right = dict(zip(expected, log_likelihoods(reading.answer_log_probs, expected,
                                               answer_alphabet).tolist())) if expected else {}
    best = None
    for text, score, e in problems:
        # the answer as read, itself right for this printed reading or not
        options = [(score + answer_read + (prior if grade(text, reading.answer).decision == RIGHT
                                           else 0.0), reading.answer)]
        if prior > 0 and e in right:
            options.append((score + right[e] + prior, e))
        for total, answer in options:
            if best is None or total > best[0]:
                best = (total, text, answer)
    return best[1], best[2]


def second_opinion(reading, line_log_probs: np.ndarray, line_alphabet: Alphabet,
                   printed_alphabet: Alphabet, answer_alphabet: Alphabet, prior: float,
                   share: float, offered: list[tuple[str, str]]) -> tuple[str, str] | None:
    """(printed, answer) where PP-OCR's reading of the line (reader/ppocr.py) is
    asked too, None when neither reader reads a problem there.

    The readings weighed: PP-OCR's (line_readings: its beam's problems and
    their right answers) and those `offered` by the recognizer. Each is
    scored by a mixture of the two readers, `share` PP-OCR's:
    log(share x P_PP-OCR(line) + (1 - share) x P(printed) P(answer)), the
    recognizer's two heads, plus `prior` for a right answer. A mixture, not a
    product: a reader that sees nothing it knows (the recognizer on real ink,
    PP-OCR on some synthetic fonts) gives every reading little probability and
    so leaves the choice to the other; a reading the recognizer's alphabets
    cannot write has probability 0 under it."""
    from .ppocr import line_readings

    ranked = line_readings(line_log_probs, line_alphabet, prior, extra=offered, full=True)
    if not ranked:
        return None
    if share < 1 and reading.printed_log_probs is not None and reading.answer_log_probs is not None:
        printed_texts = sorted({r[1] for r in ranked})
        answers = sorted({r[2] for r in ranked})
        printed_scores = dict(zip(printed_texts, log_likelihoods(
            reading.printed_log_probs, printed_texts, printed_alphabet).tolist()))
        answer_scores = dict(zip(answers, log_likelihoods(
            reading.answer_log_probs, answers, answer_alphabet).tolist()))
        with np.errstate(divide="ignore"):
            ours, theirs = np.log(1.0 - share), np.log(share)
        ranked = [(float(np.logaddexp(theirs + line, ours + printed_scores[p] + answer_scores[a]))
                   + (prior if right else 0.0), p, a)
                  for _, p, a, line, right in ranked]
    best = max(ranked, key=lambda r: r[0])
    return best[1], best[2]
