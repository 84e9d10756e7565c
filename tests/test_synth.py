"""Tests of the synthetic 口算 generator (db/synth.py) against docs/ks-format.md."""

import os
import subprocess
import sys
from collections import Counter

import cv2
import numpy as np
import pytest

from db import synth, synth_fonts
from db.synth_page import Kind, render_page
from db.synth_problems import KINDS, PRESETS, parse_content

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATEGORIES = len(Kind)
SIGNS = {"+": lambda a, b: a + b, "−": lambda a, b: a - b, "×": lambda a, b: a * b,
         "÷": lambda a, b: a / b}


def read_picture(path):
    # np.fromfile + imdecode: works with the Chinese file names on every OS
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot decode {path}"
    return image


def parse_ks(path):
    """A strict, independent reading of ks-format.md: [(image path, (N, 5) float array)]."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            fields = text.split()
            boxes = []
            for field in fields[1:]:
                parts = field.split(",")
                assert len(parts) == 5, f"{path}:{number}: box {field!r} needs 5 fields"
                boxes.append([float(p) for p in parts])
            image_path = fields[0]
            if not os.path.isabs(image_path):
                image_path = os.path.join(os.path.dirname(path), image_path)
            entries.append((image_path, np.asarray(boxes, np.float64).reshape(-1, 5)))
    return entries


def tree_bytes(root):
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            full = os.path.join(folder, name)
            with open(full, "rb") as f:
                files[os.path.relpath(full, root)] = f.read()
    return files


def label_bbox(labels, label):
    ys, xs = np.nonzero(labels == label)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def check_boxes_tight(page, max_problems=None, tolerance=1, contrast=40):
    """Each box is its label's bounding box (+-`tolerance` px: the nearest-neighbour
    warp of the label map skips or repeats a pixel where the camera stretches the
    page) and its ink is dark in the clean picture."""
    assert page.labels is not None and page.clean is not None
    grey = cv2.cvtColor(page.clean, cv2.COLOR_BGR2GRAY).astype(np.int32)
    paper_level = np.median(grey[page.paper & (page.labels == 0)])
    labels_present = set(np.unique(page.labels).tolist()) - {0}
    assert len(labels_present) == len(page.boxes)
    for label, (box, kind) in enumerate(zip(page.boxes, page.classes), 1):
        x1, y1, x2, y2 = box.tolist()
        lx1, ly1, lx2, ly2 = label_bbox(page.labels, label)
        assert max(abs(x1 - lx1), abs(y1 - ly1), abs(x2 - lx2), abs(y2 - ly2)) <= tolerance, (
            f"box {box.tolist()} vs label bbox {(lx1, ly1, lx2, ly2)}")
        ink = grey[page.labels == label]
        # ink pixels are clearly darker than the paper (pencil answers included)
        assert np.median(ink) < paper_level - contrast, (label, np.median(ink), paper_level)
        assert 0 <= kind < CATEGORIES
    return grey, paper_level


def test_same_seed_gives_identical_files_for_any_worker_count(tmp_path):
    counts = {"train": 3, "val": 1, "test": 1}
    synth.generate(tmp_path / "a", counts, seed=0, workers=1, small=True, log=lambda m: None)
    synth.generate(tmp_path / "b", counts, seed=0, workers=2, small=True, log=lambda m: None)
    synth.generate(tmp_path / "c", counts, seed=1, workers=1, small=True, log=lambda m: None)
    first, second, other = (tree_bytes(tmp_path / n) for n in "abc")
    assert len(first) == 3 + 3 + 3 + 1 + 1   # three lists, their side files, five pictures
    assert first == second
    assert first.keys() == other.keys()
    assert first["ks_train.txt"] != other["ks_train.txt"]
    pictures = [name for name in first if name.endswith(".jpg")]
    assert all(first[name] != other[name] for name in pictures)


def test_every_line_follows_the_ks_format(tiny_ks_dir):
    seen_classes = set()
    for split, pages in (("train", 6), ("val", 3), ("test", 3)):
        txt = os.path.join(tiny_ks_dir, f"ks_{split}.txt")
        entries = parse_ks(txt)
        assert len(entries) == pages
        for image_path, boxes in entries:
            assert os.path.isfile(image_path)
            assert not os.path.basename(image_path).isascii()   # Chinese file names
            height, width = read_picture(image_path).shape[:2]
            assert 256 <= width <= 400
            assert 8 <= len(boxes) <= 30
            x1, y1, x2, y2, c = boxes.T
            assert np.all(x2 > x1) and np.all(y2 > y1)
            assert np.all(x1 >= 0) and np.all(y1 >= 0) and np.all(x2 <= width) and np.all(y2 <= height)
            assert np.all(c == np.round(c)) and np.all((0 <= c) & (c < CATEGORIES))
            seen_classes.update(c.astype(int).tolist())
            # problems never overlap: boxes are pairwise disjoint
            overlap_w = np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None])
            overlap_h = np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None])
            overlapping = (overlap_w > 0) & (overlap_h > 0)
            assert not np.any(overlapping & ~np.eye(len(boxes), dtype=bool))
    assert seen_classes == set(range(CATEGORIES))


def test_full_size_pages_have_the_specified_sizes_and_counts():
    fonts = synth_fonts.discover_fonts()
    for index in (0, 1):
        page = render_page(0, "train", index, fonts=fonts)
        height, width = page.image.shape[:2]
        assert 600 <= width <= 1600 and 1.25 <= height / width <= 1.5
        assert 20 <= len(page.boxes) <= 160
    crowded = render_page(0, "train", 2, fonts=fonts, num_problems=150, degrade=False)
    assert len(crowded.boxes) == 150                 # above the 128 objects many loaders assume
    assert crowded.image.shape[1] >= 900


def test_boxes_are_tight_around_each_problems_ink():
    fonts = synth_fonts.discover_fonts()
    for index, small in ((0, True), (1, True), (2, False)):
        page = render_page(7, "val", index, small=small, fonts=fonts, clutter=False, degrade=False,
                           keep_debug=True)
        grey, paper_level = check_boxes_tight(page)
        # Without clutter every dark pixel on the sheet belongs to some problem's box.
        covered = np.zeros(grey.shape, bool)
        for x1, y1, x2, y2 in page.boxes.tolist():
            covered[max(0, y1 - 2):y2 + 2, max(0, x1 - 2):x2 + 2] = True
        sheet = cv2.erode(page.paper.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        dark = sheet & (grey < paper_level - 90)
        assert dark.sum() > 0
        assert np.all(covered[dark]), f"{int((dark & ~covered).sum())} dark pixels outside every box"


def test_boxes_stay_exact_on_cluttered_degraded_pages():
    fonts = synth_fonts.discover_fonts()
    for index in range(3):
        page = render_page(11, "train", index, small=True, fonts=fonts, keep_debug=True)
        check_boxes_tight(page)
        assert page.image.shape == page.clean.shape
        assert not np.array_equal(page.image, page.clean)   # light, blur and noise were applied


def test_categories_are_balanced_and_the_arithmetic_is_true():
    fonts = synth_fonts.discover_fonts()
    kinds, right, answered = [], 0, 0
    for index in range(30):
        page = render_page(3, "test", index, small=True, fonts=fonts, clutter=False, degrade=False,
                           content=PRESETS["basic"])
        kinds.extend(page.classes.tolist())
        for kind, text in zip(page.classes.tolist(), page.texts):
            tokens = text.split()
            if kind <= Kind.DIV:               # "23 + 45 = (68)"
                a, sign, b, _, written = tokens
                assert sign == "+−×÷"[kind]
                if written != "()":
                    answered += 1
                    right += SIGNS[sign](int(a), int(b)) == int(written[1:-1])
            elif kind == Kind.COMPARE:         # "7 × 8 ○[>] 54"
                circle = next(t for t in tokens if t.startswith("○"))
                split_at = tokens.index(circle)
                sides = []
                for side in (tokens[:split_at], tokens[split_at + 1:]):
                    sides.append(int(side[0]) if len(side) == 1
                                 else SIGNS[side[1]](int(side[0]), int(side[2])))
                written = circle[2:-1]
                if written:
                    answered += 1
                    truth = ">" if sides[0] > sides[1] else "<" if sides[0] < sides[1] else "="
                    right += written == truth
            else:                              # "(45) + 23 = 68": the blank is inside
                assert "=" in tokens and any(t.startswith("(") for t in tokens[:3])
    shares = np.bincount(kinds, minlength=CATEGORIES) / len(kinds)
    assert np.all(shares > 0.08) and np.all(shares < 0.3), shares
    assert right / answered > 0.9          # mostly right, a few realistic mistakes
    assert answered / len([k for k in kinds if k <= Kind.COMPARE]) > 0.75   # most are answered


def test_every_kind_of_problem_is_drawn_and_marked_as_the_generator_says():
    """The default content (db/synth_problems.py): decimals, remainders,
    estimates, several operators, brackets and units each about their share;
    the side file's solution is right by reader/arithmetic.py, a pupil's answer
    right exactly when it is the solution, the category the ks rule's."""
    from reader.arithmetic import RIGHT, grade, parse

    fonts = synth_fonts.discover_fonts()
    names = ["add", "sub", "mul", "div", "compare", "fill"]
    forms, problems = Counter(), 0
    for index in range(12):
        page = render_page(5, "train", index, fonts=fonts, clutter=False, degrade=False)
        for c, printed, answer, solution in zip(page.classes.tolist(), page.printed, page.answers,
                                                page.solutions):
            problems += 1
            problem = parse(printed)
            assert names[c] == problem.category, printed
            assert grade(printed, solution).decision == RIGHT, (printed, solution)
            if answer:
                assert (grade(printed, answer).decision == RIGHT) == (answer == solution), \
                    (printed, answer, solution)
            forms["decimal"] += "." in printed
            forms["remainder"] += "……" in solution
            forms["estimate"] += "≈" in printed
            forms["brackets"] += "(" in printed.replace("( )", "")
            forms["mixed"] += sum(printed.count(s) for s in "+−×÷") >= 2
            forms["units"] += any(u in printed for u in "米元角时秒克")
    content = PRESETS["mix"]
    for kind, share in content.shares():
        if kind == "units" and not fonts.cjk:
            continue
        assert 0.3 * share < forms[kind] / problems < 3 * share, (kind, forms, problems)


def test_content_shares_are_read_and_checked():
    assert parse_content("basic").describe() == ",".join(f"{k}=0" for k in KINDS)
    assert parse_content("mix,units=0.2").units == 0.2
    assert parse_content("units=0").decimal == PRESETS["mix"].decimal
    for bad, says in (("nope", "unknown content"), ("mix,feet=1", "unknown problem kind"),
                      ("mix,units=2", "from 0 to 1"), ("basic,mixed=0.7,units=0.6", "add up")):
        with pytest.raises(ValueError, match=says):
            parse_content(bad)


def test_signs_never_render_as_tofu():
    fonts = synth_fonts.discover_fonts()
    faces = [synth_fonts.face_for(("ttf", path), 20) for path in fonts.printed]
    faces += [synth_fonts.face_for(("hershey", face, 0.08), 20)
              for face in synth_fonts.HERSHEY_PRINTED]
    for face in faces:
        for sign in synth_fonts.PRIMITIVE_SIGNS:
            glyph = face.glyph(sign)
            assert glyph.mask.size and glyph.mask.max() > 128, (face.key, sign)
            if not face.has(sign):
                assert glyph is synth_fonts.primitive_sign(sign, face.digit_height, face.stroke)
    hershey = synth_fonts.face_for(("hershey", cv2.FONT_HERSHEY_SIMPLEX, 0.08), 20)
    assert not hershey.has("×") and hershey.has("8")
    with pytest.raises(ValueError, match="no glyph"):
        hershey.glyph("口")


def test_pages_render_without_any_installed_font(monkeypatch, tmp_path):
    monkeypatch.setattr(synth_fonts, "discover_fonts", lambda font_dirs=None: synth_fonts.FontCatalog())
    for index in range(2):
        page = render_page(5, "train", index, small=True, clutter=False, degrade=False,
                           keep_debug=True)   # fonts=None: discovers (nothing)
        check_boxes_tight(page)
        assert len(page.boxes) >= 8
    cluttered = render_page(5, "train", 3, small=True, keep_debug=True)
    check_boxes_tight(cluttered)
    messages = []
    paths = synth.generate(tmp_path, {"train": 2}, seed=0, workers=1, small=True,
                           log=messages.append)
    assert len(parse_ks(paths["train"])) == 2
    assert "no printed: OpenCV Hershey fonts" in messages[0]
    assert "no handwriting" in messages[0] and "install" in messages[0]


def test_pages_render_with_only_some_fonts():
    found = synth_fonts.discover_fonts()
    partial = synth_fonts.FontCatalog(printed=found.printed[:1])   # no handwriting, no CJK
    page = render_page(2, "train", 0, small=True, fonts=partial, keep_debug=True)
    check_boxes_tight(page)


def test_command_line_end_to_end(tmp_path):
    out = tmp_path / "ks"
    result = subprocess.run(
        [sys.executable, "-m", "db.synth", "--out", str(out), "--train", "2", "--val", "1",
         "--test", "1", "--small", "--seed", "1"],
        cwd=REPO_ROOT, capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "db.synth: style main: fonts:" in result.stderr and "wrote 2 train, 1 val, 1 test" in result.stderr
    for split, pages in (("train", 2), ("val", 1), ("test", 1)):
        entries = parse_ks(out / f"ks_{split}.txt")
        assert len(entries) == pages
        assert all(os.path.isfile(path) and len(boxes) >= 8 for path, boxes in entries)
    assert sorted(os.listdir(out / "images" / "train")) == ["口算_000000.jpg", "口算_000001.jpg"]


def test_bad_arguments_are_reported_clearly(tmp_path):
    with pytest.raises(ValueError, match="train.*integer >= 0"):
        synth.generate(tmp_path, {"train": -1}, log=lambda m: None)
    with pytest.raises(ValueError, match="split name"):
        synth.generate(tmp_path, {"my split": 1}, log=lambda m: None)
    result = subprocess.run([sys.executable, "-m", "db.synth", "--out", str(tmp_path), "--val", "-2"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "integer >= 0" in result.stderr
    result = subprocess.run([sys.executable, "-m", "db.synth", "--out", str(tmp_path),
                             "--content", "mix,feet=0.1"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown problem kind 'feet'" in result.stderr


def test_the_held_out_style_keeps_its_fonts_out_of_the_main_pages(tmp_path):
    from db.synth_style import HELD_OUT_HANDWRITING, HELD_OUT_PRINTED, page_style
    fonts = synth_fonts.FontCatalog(
        printed=("/f/DejaVuSans.ttf", "/f/FreeSans.ttf", "/f/FreeMono.ttf"),
        handwriting=("/f/dkg.ttf", "/f/Kristi.ttf"), cjk=())
    main, held = page_style("main", fonts), page_style("holdout", fonts)
    assert main.fonts.printed == ("/f/DejaVuSans.ttf",) and main.fonts.handwriting == ("/f/dkg.ttf",)
    assert held.fonts.printed == ("/f/FreeSans.ttf", "/f/FreeMono.ttf")
    assert held.fonts.handwriting == ("/f/Kristi.ttf",) and not held.note
    assert held.size.max_digit_frac[1] < main.size.max_digit_frac[0]  # smaller print
    # nothing held out installed: every font, and the log says so
    plain = synth_fonts.FontCatalog(printed=("/f/DejaVuSans.ttf",), handwriting=("/f/dkg.ttf",))
    assert page_style("holdout", plain).fonts == plain and "not installed" in page_style(
        "holdout", plain).note
    assert HELD_OUT_PRINTED.search("FreeSerifBold.ttf") and HELD_OUT_HANDWRITING.search("SteveHand.ttf")
    with pytest.raises(ValueError, match="unknown page style"):
        page_style("other", fonts)


def test_the_held_out_style_writes_only_its_own_split(tmp_path):
    out = tmp_path / "ks"
    result = subprocess.run(
        [sys.executable, "-m", "db.synth", "--out", str(out), "--style", "holdout", "--holdout", "1",
         "--small", "--seed", "1", "--workers", "1"],
        cwd=REPO_ROOT, capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "style holdout" in result.stderr
    assert sorted(os.listdir(out)) == ["images", "ks_holdout.txt", "ks_holdout_text.jsonl"]
    assert "--style holdout" in (out / "ks_holdout.txt").read_text(encoding="utf-8").splitlines()[0]
