"""PP-OCR as grade.py's second opinion (reader/ppocr.py, reader/decoding.py
second_opinion, reader/grading.py): a line's text split into a problem's
parts, the search of a line's readings under CTC, where the second opinion
is asked; and the real-crop benchmark's labels. PP-OCR itself only where
rapidocr-onnxruntime is installed (scripts/setup.sh installs it)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_real_crops import label_parts, peer_text, whole_text
from reader.ppocr import LINE_SYMBOLS, beam_texts, line_readings, line_texts, model_path, split_line
from reader.text import Alphabet

LINE = Alphabet(LINE_SYMBOLS)


@pytest.mark.parametrize("text, parts", [
    ("62+4=66", ("62+4=", "66")),
    ("62+4=", ("62+4=", "")),
    ("0.35+0.45=0.8", ("0.35+0.45=", "0.8")),
    ("17÷5=3……2", ("17÷5=", "3……2")),
    ("17÷5=3...2", ("17÷5=", "3……2")),
    ("17÷5=3…2", ("17÷5=", "3……2")),
    ("447÷5≈90", ("447÷5≈", "90")),
    ("7+(10+5)=22", ("7+(10+5)=", "22")),
    ("7÷(1)=7", ("7÷( )=7", "1")),           # a number alone in brackets: a filled blank
    ("()+5=7", ("( )+5=7", "")),
    ("82×8=(656)", ("82×8=", "656")),        # the answer's place printed as brackets
    ("82×8=()", ("82×8=", "")),
    ("17÷5=(3……2)", ("17÷5=", "3……2")),
    ("53−6<49", ("53−6○49", "<")),
    ("3分米>3厘米", ("3分米○3厘米", ">")),
    ("7○3", ("7○3", "")),
    ("93−4647", None),                       # no sign: no problem
    ("62+4=6+6", None),                      # an answer that is no number
    ("", None),
])
def test_a_lines_text_splits_into_a_problems_parts(text, parts):
    assert split_line(text) == parts


def test_the_parts_read_as_a_line_in_each_way_they_may():
    assert line_texts("62+4=", "66") == ["62+4=66", "62+4=(66)"]
    assert line_texts("7÷( )=7", "1") == ["7÷(1)=7", "7÷1=7"]
    assert line_texts("53−6○49", "<") == ["53−6<49"]
    assert line_texts("53−6○49", "") == ["53−6○49", "53−649"]
    assert line_texts("17÷5=", "3……2") == ["17÷5=3……2", "17÷5=(3……2)", "17÷5=3…2",
                                           "17÷5=(3…2)"]


def spell(text: str, unsure: dict | None = None) -> np.ndarray:
    """(T, C) log-probabilities that spell `text`, a blank between symbols;
    `unsure` {position: {symbol or "": probability}} for uncertain columns."""
    columns = [{"": 1.0}]
    for k, char in enumerate(text):
        columns += [(unsure or {}).get(k, {char: 1.0}), {"": 1.0}]
    out = np.full((len(columns), LINE.classes), 1e-9)
    for t, column in enumerate(columns):
        for char, p in column.items():
            out[t, 0 if char == "" else LINE.index[char]] = p
    return np.log(out / out.sum(axis=1, keepdims=True))


def test_the_beam_finds_the_likely_texts_in_order():
    log_probs = spell("38", {1: {"8": 0.6, "3": 0.4}})
    texts = beam_texts(log_probs, LINE)
    assert texts[:2] == ["38", "33"]


def test_a_line_is_read_as_a_problem_and_a_close_right_answer_wins():
    # "12+7=18" clearly read, 19 nearly as likely: pupils are mostly right
    log_probs = spell("12+7=18", {6: {"8": 0.6, "9": 0.4}})
    score, printed, answer = line_readings(log_probs, LINE, prior=4.0)[0]
    assert (printed, answer) == ("12+7=", "19")
    # without the prior, as read
    assert line_readings(log_probs, LINE, prior=0.0)[0][1:] == ("12+7=", "18")


def test_an_equals_sign_the_answer_hides_is_put_back_where_the_arithmetic_confirms_it():
    # "93−4647": the pupil's 47 touches the "=", which is not read at all
    log_probs = spell("93−4647")
    assert line_readings(log_probs, LINE, prior=4.0)[0][1:] == ("93−46=", "47")
    # the "=" read as a minus, "0.8" most likely as "08": one symbol from the right answer
    log_probs = spell("0.35+0.45−0.8", {11: {".": 0.1, "": 0.9}})
    assert beam_texts(log_probs, LINE)[0] == "0.35+0.45−08"
    assert line_readings(log_probs, LINE, prior=4.0)[0][1:] == ("0.35+0.45=", "0.8")
    # a text no "=" makes a problem of stays as read, no problem
    assert line_readings(spell("583−30"), LINE, prior=4.0)[0][1:] == ("583−30", "")


def test_another_readers_readings_are_weighed_with_the_lines():
    log_probs = spell("15−8=7")          # an underline blank filled in reads as a result
    ranked = line_readings(log_probs, LINE, prior=4.0, extra=[("15−( )=7", "8")])
    pairs = [r[1:] for r in ranked]
    assert ("15−8=", "7") in pairs and ("15−( )=7", "8") in pairs
    scores = {r[1:]: r[0] for r in ranked}
    assert scores[("15−8=", "7")] == pytest.approx(scores[("15−( )=7", "8")])


@pytest.mark.parametrize("label, parts", [
    ("62+4=66", ("62+4=", "66")),
    ("447d5Y", ("447÷5≈", "")),
    ("319d4Y80", ("319÷4≈", "80")),
    ("18d3+9=15", ("18÷3+9=", "15")),
    ("7+(10+5)=22", ("7+(10+5)=", "22")),
    ("7d(1)=7", ("7÷( )=7", "1")),
    ("53-6<49", ("53−6○49", "<")),
    ("17d5=3%2", ("17÷5=", "3……2")),
    ("433d11=", ("433÷11=", "")),
    ("583-30", ("583−30", "")),
    ("0.25x0.4=0.1?", ("0.25×0.4=", "0.1?")),
])
def test_the_real_crops_labels_become_the_side_files_texts(label, parts):
    assert label_parts(label) == parts


def test_the_peers_line_is_compared_in_the_labels_notation():
    assert peer_text("20 x3 =60") == "20×3=60"
    assert peer_text("7÷（1）=7") == whole_text("7÷( )=7", "1")
    assert peer_text("447÷5~") == whole_text("447÷5≈", "")
    assert whole_text("53−6○49", "<") == "53−6<49"


class _FakeLineReader:
    """Reads every crop as the same line."""

    def __init__(self, text):
        self.alphabet, self.text, self.asked = LINE, text, 0

    def read(self, patches):
        self.asked += len(patches)
        return [spell(self.text) for _ in patches]


def test_the_second_opinion_is_asked_only_where_the_recognizer_is_not_sure(monkeypatch):
    from reader import grading
    from reader.engine import Reading

    readings = {0: Reading("12+7=", "19", 0.99, 0.99),    # settled: right and sure
                1: Reading("12+7=", "19", 0.99, 0.5),     # right, but the answer unsure
                2: Reading("12+7=", "18", 0.99, 0.99)}    # read wrong

    class FakeReader:
        printed_alphabet = Alphabet("0123456789+−×÷=○() ")
        answer_alphabet = Alphabet("0123456789<>=")
        right_answer_prior = 4.0
        second_opinion = "where unsure"

        class weighing:
            settled_confidence, second_reader_share = 0.9, 0.5
            line_margin_x, line_margin_y = 0.25, 0.1

        line_reader = _FakeLineReader("12+7=19")

        def read_boxes(self, image, boxes):
            return [readings[int(b[0]) // 10] for b in boxes]

    reader = FakeReader()
    image = np.full((40, 200, 3), 255, np.uint8)
    boxes = np.array([[0, 5, 30, 30], [10, 5, 40, 30], [20, 5, 50, 30]], float)
    graded = grading.grade_boxes(reader, image, boxes)
    assert [g.second_opinion for g in graded] == [False, True, True]
    assert reader.line_reader.asked == 2
    assert [g.answer for g in graded] == ["19", "19", "19"]


needs_ppocr = pytest.mark.skipif(model_path() is None, reason="rapidocr-onnxruntime not installed")


@needs_ppocr
def test_ppocr_reads_a_printed_line():
    import cv2

    from reader.ppocr import LineReader

    image = np.full((48, 260, 3), 255, np.uint8)
    cv2.putText(image, "62+4=66", (8, 36), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2, cv2.LINE_AA)
    reader = LineReader.load()
    log_probs, = reader.read([image])
    assert log_probs.shape[1] == len(LINE_SYMBOLS) + 1
    assert line_readings(log_probs, reader.alphabet, prior=4.0)[0][1:] == ("62+4=", "66")


def test_the_real_crop_benchmark_says_plainly_when_there_are_no_crops(tmp_path, capsys, monkeypatch):
    from bench import bench_real_crops, report

    monkeypatch.setattr(report, "BENCHMARKS_MD", str(tmp_path / "BENCHMARKS.md"))
    assert bench_real_crops.main(["--crops", str(tmp_path / "nowhere")]) == 0
    assert "no real crops at" in capsys.readouterr().err
    assert not (tmp_path / "BENCHMARKS.md").exists()
