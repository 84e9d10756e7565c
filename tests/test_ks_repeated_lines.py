"""A line that lists an image again is checked like any other (db/ks.py):
every problem of every line in one pass, so removing the repetition brings
no new error."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from db import AnnotationError
from db.ks import inspect_ks_file, load_ks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATEGORIES = 6


@pytest.fixture
def ks_file(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((100, 120, 3), 200, np.uint8))
    path = tmp_path / "ks_x.txt"
    path.write_text("a.png 10,10,50,50,0\n"
                    "a.png 500,500,600,600,1 20,20,10,30,2 -5,0,10,10,3\n", encoding="utf-8")
    return str(path)


def test_the_check_command_reports_every_problem_of_a_repeated_line(ks_file):
    done = subprocess.run([sys.executable, "-m", "db.ks", ks_file], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    out = done.stdout
    assert f"{ks_file}:2: image a.png is listed again (first on line 1)" in out
    assert f'{ks_file}:2: box 1 "500,500,600,600,1" lies entirely outside its image (120x100)' in out
    assert f'{ks_file}:2: box 2 "20,20,10,30,2": x2 (10) <= x1 (20)' in out
    assert f'{ks_file}:2: box 3 "-5,0,10,10,3" extends past its image' in out  # a warning
    assert "3 errors" in out and "images: 1 " in out  # one image, listed twice


def test_loading_reports_them_all_at_once_and_keeps_one_record_per_image(ks_file):
    with pytest.raises(AnnotationError) as caught:
        load_ks(ks_file, CATEGORIES)
    assert [(p.line, p.message.split(":")[0]) for p in caught.value.problems] == [
        (2, "image a.png is listed again (first on line 1)"),
        (2, 'box 2 "20,20,10,30,2"'),
        (2, 'box 1 "500,500,600,600,1" lies entirely outside its image (120x100)')]
    report = inspect_ks_file(ks_file, CATEGORIES)
    assert [line.line for line in report.lines] == [1]
