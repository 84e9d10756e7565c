"""The recognizer's parts (reader/): exact arithmetic and grading of a
reading, the alphabets and CTC decoding, the side file's reader, crops of
boxes (at the page border, empty, outside), the config schema, the CRNN."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from config import ConfigError
from reader.arithmetic import RIGHT, UNANSWERED, UNREADABLE, WRONG, NotAProblem, grade, parse
from reader.config import load_reader_config, reader_config_from_dict
from reader.crops import EmptyCrop, cut_crop, jittered_box, normalize
from reader.engine import Reading
from reader.model import build_reader_network
from reader.text import Alphabet, TextFileError, ctc_targets, greedy_decode, read_text_file

# --------------------------------------------------------------------------
# arithmetic


@pytest.mark.parametrize("printed, answer, decision, expected", [
    ("12+7=", "19", RIGHT, "19"),
    ("12+7=_", "18", WRONG, "19"),
    ("12+7=( )", "19", RIGHT, "19"),
    ("72−18=", "54", RIGHT, "54"),
    ("72-18=", "54", RIGHT, "54"),          # ASCII hyphen for the minus sign
    ("7×8=", "56", RIGHT, "56"),
    ("7x8=", "56", RIGHT, "56"),
    ("56÷8=", "7", RIGHT, "7"),
    ("56/8=", "6", WRONG, "7"),
    ("( )+5=7", "2", RIGHT, "2"),
    ("3+( )=7", "4", RIGHT, "4"),
    ("( )−5=7", "12", RIGHT, "12"),
    ("15−_=7", "8", RIGHT, "8"),
    ("( )×8=56", "7", RIGHT, "7"),
    ("7×_=56", "9", WRONG, "8"),
    ("( )÷8=7", "56", RIGHT, "56"),
    ("56÷( )=7", "8", RIGHT, "8"),
    ("0×( )=0", "5", RIGHT, None),          # any number fills it
    ("35○53", "<", RIGHT, "<"),
    ("7×8○54", ">", RIGHT, ">"),
    ("54○7×8", ">", WRONG, "<"),
    ("6○6", "=", RIGHT, "="),
    ("12+7=", "", UNANSWERED, "19"),
    ("35○53", " ", UNANSWERED, "<"),
    ("12+7=", "007", WRONG, "19"),
    ("12+7=", "019", RIGHT, "19"),          # a leading zero is still the number
])
def test_grading_is_exact(printed, answer, decision, expected):
    verdict = grade(printed, answer)
    assert (verdict.decision, verdict.expected) == (decision, expected)
    assert verdict.reason is None


@pytest.mark.parametrize("printed, answer, reason", [
    ("12+7=", "1>", "the answer '1>' is not a number"),
    ("12+7=", "=", "the answer '=' is not a number"),
    ("35○53", "7", "the answer '7' is not >, < or ="),
    ("2÷3×2=", "1", "no finite decimal"),
    ("3÷0=", "1", "division by zero"),
    ("12+7", "19", "neither"),
    ("12=", "12", "no operator"),
    ("1+2=3", "3", "nothing left to fill in"),
    ("( )+( )=3", "1", "two blanks"),
    ("9○", ">", "each side of ○"),
    ("", "3", "nothing printed"),
    ("12+7=?", "19", "unexpected '?'"),
    ("0×( )=5", "1", "no number times 0"),
])
def test_what_cannot_be_graded_is_unreadable_and_says_why(printed, answer, reason):
    verdict = grade(printed, answer)
    assert verdict.decision == UNREADABLE
    assert reason in verdict.reason


def test_parse_names_the_form():
    assert parse("12+7=").kind == "result"
    assert parse("( )+5=7").kind == "fill"
    assert parse("7○3").kind == "compare"
    with pytest.raises(NotAProblem):
        parse("○○")


def test_the_generators_own_texts_grade_as_the_generator_says(tiny_ks_dir):
    """Every problem of the synthetic pages: the solution is right, the
    pupil's answer is graded right exactly when it equals the solution."""
    pages = read_text_file(f"{tiny_ks_dir}/ks_train_text.jsonl")
    seen = set()
    for page in pages:
        for printed, answer, solution in zip(page.printed, page.answers, page.solutions):
            assert grade(printed, solution).decision == RIGHT
            if parse(printed).kind != "estimate":   # an estimate has several right answers
                assert grade(printed, solution).expected in (solution, None)
            want = UNANSWERED if not answer else RIGHT if answer == solution else WRONG
            assert grade(printed, answer).decision == want
            seen.add(parse(printed).kind)
    assert {"result", "fill", "compare"} <= seen


# --------------------------------------------------------------------------
# alphabets, CTC


def test_alphabet_and_best_path_decoding():
    alphabet = Alphabet("0123456789<>=")
    assert alphabet.encode("17") == [2, 8]
    assert alphabet.decode_path([0, 2, 2, 0, 8, 8, 0]) == "17"
    assert alphabet.decode_path([2, 0, 2]) == "11"           # a blank separates a repeat
    assert alphabet.decode_path([0, 0, 0]) == ""
    with pytest.raises(ValueError, match="'x'"):
        alphabet.encode("1x")
    log_probs = torch.full((5, 1, alphabet.classes), -20.0)
    for t, k in enumerate([2, 2, 0, 8, 0]):
        log_probs[t, 0, k] = 0.0
    (text, confidence), = greedy_decode(log_probs, alphabet)
    assert text == "17" and confidence > 0.99
    targets, lengths = ctc_targets(["17", "", "5"], alphabet)
    assert targets.tolist() == [2, 8, 6] and lengths.tolist() == [2, 0, 1]


def test_side_file_errors_are_listed_with_file_and_line(tmp_path):
    path = tmp_path / "ks_val_text.jsonl"
    good = {"image": "a.jpg", "problems": [{"box": [1, 2, 30, 12], "printed": "1+1=", "answer": "2"}]}
    (tmp_path / "a.jpg").write_bytes(b"x")
    lines = [json.dumps(good), "{not json", json.dumps({"image": "b.jpg", "problems": []}),
             json.dumps({"image": "a.jpg", "problems": [{"box": [5, 2, 3, 12], "printed": "1",
                                                         "answer": "1"}]}),
             json.dumps({"image": "a.jpg", "problems": [{"box": [1, 2, 3, 12], "printed": 1,
                                                         "answer": "1"}]})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TextFileError) as error:
        read_text_file(str(path))
    message = str(error.value)
    assert f"{path}:2: not JSON" in message
    assert f"{path}:3: image b.jpg does not exist" in message
    assert f"{path}:4: problem 0: box [5, 2, 3, 12] has x2 <= x1" in message
    assert f"{path}:5: problem 0: 'printed' must be a string" in message
    with pytest.raises(TextFileError, match="python -m db.synth"):
        read_text_file(str(tmp_path / "ks_train_text.jsonl"))
    path.write_text(json.dumps(good) + "\n", encoding="utf-8")
    page, = read_text_file(str(path))
    assert page.boxes.tolist() == [[1, 2, 30, 12]] and page.answers == ("2",)


# --------------------------------------------------------------------------
# crops

SETTINGS = reader_config_from_dict({"reader": {"crop_height": 16, "crop_width": 64,
                                               "channels": [4, 8], "hidden": 8}}, "test").reader


def page_with_a_bar():
    """A grey page with a black stroke at rows 24-25, columns 10-49: the ink of
    a problem whose box is [10, 20, 50, 30]."""
    image = np.full((60, 80, 3), 200, np.uint8)
    image[24:26, 10:50] = 0
    return image


def test_a_crop_keeps_the_aspect_ratio_and_pads_with_paper():
    crop = cut_crop(page_with_a_bar(), [10, 20, 50, 30], SETTINGS)
    assert crop.shape == (16, 64, 3) and crop.dtype == np.uint8
    # box 40 x 10 plus 0.4 box heights a side and 0.15 above and below:
    # columns 6-54, rows 18-32 (14 rows) -> 16 rows, 55 columns; the stroke
    # spans columns 4-44 of the region -> about 5-50 of the crop
    dark = np.flatnonzero((crop < 100).all(axis=2).any(axis=0))
    assert 3 <= dark[0] <= 6 and 48 <= dark[-1] <= 52
    assert (crop[:, 56:] == 200).all()          # padding: the crop's paper colour


def test_a_box_at_the_page_border_is_read_with_the_edge_repeated():
    image = page_with_a_bar()
    image[:, 70:] = 0
    crop = cut_crop(image, [60, 50, 80, 60], SETTINGS)   # touches the right and bottom edges
    assert crop.shape == (16, 64, 3)
    crop = cut_crop(image, [-5, -3, 30, 12], SETTINGS)   # partly outside the picture
    assert crop.shape == (16, 64, 3)


@pytest.mark.parametrize("box, says", [
    ([10, 10, 10, 30], "nothing to read"),
    ([10, 30, 40, 20], "nothing to read"),
    ([10, 10, 12, 30], "nothing to read"),        # 2 px wide, under reader.min_box_size
    ([100, 10, 140, 30], "lies outside"),
    ([-50, 10, -1, 30], "lies outside"),
    ([float("nan"), 10, 40, 30], "not a number"),
])
def test_an_empty_box_cannot_be_cut_and_says_why(box, says):
    with pytest.raises(EmptyCrop, match=says):
        cut_crop(page_with_a_bar(), box, SETTINGS)


def test_an_empty_picture_or_a_grey_one_is_handled():
    with pytest.raises(EmptyCrop):
        cut_crop(np.zeros((0, 0, 3), np.uint8), [0, 0, 10, 10], SETTINGS)
    grey = np.full((40, 60), 128, np.uint8)
    assert cut_crop(grey, [5, 5, 40, 20], SETTINGS).shape == (16, 64, 3)


def test_jitter_moves_each_side_within_its_bounds():
    rng = np.random.default_rng(0)
    box = np.array([100.0, 50.0, 300.0, 70.0])                # 20 px high
    moved = np.array([jittered_box(box, SETTINGS, rng) for _ in range(500)])
    shift = moved - box
    assert np.abs(shift[:, [0, 2]]).max() <= SETTINGS.jitter_x * 20 + 1e-9
    assert np.abs(shift[:, [1, 3]]).max() <= SETTINGS.jitter_y * 20 + 1e-9
    assert np.abs(shift[:, 2]).max() > 0.8 * SETTINGS.jitter_x * 20     # it does move


def test_normalize_puts_paper_at_zero():
    crop = cut_crop(page_with_a_bar(), [10, 20, 50, 30], SETTINGS)
    x = normalize(crop[None])
    assert x.shape == (1, 3, 16, 64)
    assert float(x[0, :, :, -1].abs().max()) == 0.0      # padding is paper
    assert float(x.min()) < -1.0                          # ink stands out


# --------------------------------------------------------------------------
# config and network


def test_the_shipped_reader_config_loads():
    cfg = load_reader_config("CRNN-tiny")
    assert cfg.reader.crop_height == 32 and "○" in cfg.reader.printed_alphabet
    assert cfg.snapshot_dir.endswith("reader/CRNN-tiny")


def test_reader_config_mistakes_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="reader.crop_hieght: unknown key; did you mean 'crop_height'"):
        reader_config_from_dict({"reader": {"crop_hieght": 32}}, "x")
    with pytest.raises(ConfigError, match="too low for 4 halvings"):
        reader_config_from_dict({"reader": {"crop_height": 8}}, "x")
    with pytest.raises(ConfigError, match="more than once"):
        reader_config_from_dict({"reader": {"answer_alphabet": "0112"}}, "x")
    with pytest.raises(ConfigError, match="belongs|unknown section"):
        reader_config_from_dict({"db": {}}, "x")
    # every problem at once, a key in the wrong section named as such (the
    # detector's config does the same, with the same code)
    with pytest.raises(ConfigError) as e:
        reader_config_from_dict({"system": {"crop_height": 32, "max_iter": 0}}, "x")
    assert "system.crop_height: belongs in the reader section" in str(e.value)
    assert "system.max_iter:" in str(e.value)
    with pytest.raises(ConfigError, match="the top level must be an object with 'system' and 'reader'"):
        reader_config_from_dict([], "x")
    base = tmp_path / "Mine.json"
    base.write_text(json.dumps({"base": "CRNN-tiny", "system": {"max_iter": 7}}), encoding="utf-8")
    mine = load_reader_config(str(base))
    assert mine.system.max_iter == 7 and mine.reader.hidden == load_reader_config("CRNN-tiny").reader.hidden


def test_the_crnn_reads_a_sequence_per_head_and_ctc_takes_empty_answers():
    network = build_reader_network(SETTINGS)
    out = network(torch.randn(3, 3, 16, 64))
    steps = 64 // 4
    assert out.printed.shape == (steps, 3, len(SETTINGS.printed_alphabet) + 1)
    assert out.answer.shape == (steps, 3, len(SETTINGS.answer_alphabet) + 1)
    assert torch.allclose(out.answer.exp().sum(dim=2), torch.ones(steps, 3), atol=1e-5)
    alphabet = Alphabet(SETTINGS.answer_alphabet)
    targets, lengths = ctc_targets(["12", "", ">"], alphabet)
    loss = torch.nn.CTCLoss(zero_infinity=True)(out.answer, targets,
                                                 torch.full((3,), steps, dtype=torch.long), lengths)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0


# --------------------------------------------------------------------------
# choosing among readings near the best path (reader/decoding.py)


def path_log_probs(alphabet: Alphabet, columns) -> np.ndarray:
    """(T, C) log-probabilities: each column a {character or '' (blank): probability}."""
    probs = np.full((len(columns), alphabet.classes), 1e-4, np.float64)
    for t, column in enumerate(columns):
        for char, p in column.items():
            probs[t, alphabet.index[char] if char else 0] = p
    probs /= probs.sum(axis=1, keepdims=True)
    return np.log(probs).astype(np.float32)


def spell(text, alphabet, uncertain=None):
    """Columns spelling `text` with blanks between; `uncertain` {position: {char: p}}."""
    columns = [{"": 1.0}]
    for k, char in enumerate(text):
        columns += [(uncertain or {}).get(k, {char: 1.0}), {"": 1.0}]
    return path_log_probs(alphabet, columns)


def test_readings_near_the_best_path_are_scored_exactly():
    from reader.decoding import log_likelihoods, nbest

    alphabet = Alphabet("0123456789<>=")
    log_probs = spell("38", alphabet, {1: {"8": 0.6, "3": 0.4}})
    options = dict(nbest(log_probs, alphabet))
    assert list(options)[:2] == ["38", "33"]
    assert options["38"] == pytest.approx(np.log(0.6), abs=0.01)
    assert options["33"] == pytest.approx(np.log(0.4), abs=0.01)
    # the same as nn.CTCLoss's negative
    targets, lengths = ctc_targets(["38"], alphabet)
    loss = torch.nn.CTCLoss(reduction="sum")(torch.from_numpy(log_probs)[:, None], targets,
                                             torch.tensor([len(log_probs)]), lengths)
    assert log_likelihoods(log_probs, ["38"], alphabet)[0] == pytest.approx(-loss.item(), abs=1e-4)
    assert log_likelihoods(log_probs, ["3x"], alphabet)[0] == -np.inf


def test_the_printed_part_must_be_a_problem_and_a_close_right_answer_wins():
    from reader.decoding import best_reading

    printed_alphabet, answer_alphabet = Alphabet("0123456789+−×÷=○() "), Alphabet("0123456789<>=")

    def reading(printed, answer, printed_unsure=None, answer_unsure=None):
        p = spell(printed, printed_alphabet, printed_unsure)
        a = spell(answer, answer_alphabet, answer_unsure)
        return Reading(printed, answer, 0.5, 0.5, p, a)

    # "3×5=8" is wrong; "3+5=" nearly as likely, and 8 is its right answer
    r = reading("3×5=", "8", {1: {"×": 0.55, "+": 0.45}})
    # "3+5+" is no problem; "3+5=" is
    r = reading("3+5+", "9", {3: {"+": 0.55, "=": 0.45}})
    assert best_reading(r, printed_alphabet, answer_alphabet, prior=0.0) == ("3+5=", "9")
    r = reading("3÷5=", "8", {1: {"÷": 0.55, "+": 0.45}})
    assert best_reading(r, printed_alphabet, answer_alphabet, prior=3.0) == ("3+5=", "8")
    # an answer the crop reads 9 at 70 %, 8 at 30 %: pupils are mostly right, 8 it is
    r = reading("3+5=", "9", answer_unsure={0: {"9": 0.7, "8": 0.3}})
    assert best_reading(r, printed_alphabet, answer_alphabet, prior=3.0) == ("3+5=", "8")
    assert best_reading(r, printed_alphabet, answer_alphabet, prior=0.0) == ("3+5=", "9")
    # a clearly written wrong answer stays wrong
    r = reading("3+5=", "9")
    assert best_reading(r, printed_alphabet, answer_alphabet, prior=3.0) == ("3+5=", "9")
    # nothing near the best path is a problem: left as read
    r = reading("3+=", "9")
    assert best_reading(r, printed_alphabet, answer_alphabet, prior=3.0) == ("3+=", "9")
    # without log-probabilities (a reading made elsewhere): the best paths
    assert best_reading(Reading("3÷5=", "8", 1, 1), printed_alphabet, answer_alphabet, 3.0) == ("3÷5=", "8")
