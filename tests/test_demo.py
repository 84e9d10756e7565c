"""demo.py on a folder as a user fills it: every readable image is processed,
what was passed over is named with why (or read with --recursive), the
unreadable ones are listed at the end with their reasons, and the exit status
says whether anything could be done (exit_codes.py)."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest


def write_page(path, seed):
    rng = np.random.default_rng(seed)
    image = np.full((90, 120, 3), 235, np.uint8)
    for _ in range(3):
        x, y = int(rng.integers(0, 80)), int(rng.integers(0, 60))
        cv2.rectangle(image, (x, y), (x + 30, y + 20), (40, 90, 200), -1)
    cv2.imwrite(str(path), image)


@pytest.fixture
def photos(tmp_path):
    """Two good pages, an empty .jpg, a .jpg of text, a JPEG cut in half (its
    header intact), a sub-folder with a page, and a note."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    write_page(folder / "a.png", 0)
    write_page(folder / "b.jpg", 1)
    write_page(folder / "sub" / "c.png", 2)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not a picture", encoding="utf-8")
    data = cv2.imencode(".jpg", np.random.default_rng(3).integers(0, 255, (90, 120, 3), np.uint8))[1]
    (folder / "cut.jpg").write_bytes(data.tobytes()[: data.size // 2])
    (folder / "notes.txt").write_text("scanned on Monday", encoding="utf-8")
    return folder


def run_demo(entry_point, config, images, out, *extra):
    return entry_point("demo.py", config, "--testiter", "1", "--device", "cpu", "--images", images,
                       "--out", out, *extra)


def test_every_readable_image_is_processed_and_the_rest_is_named(photos, tmp_path, tiny_snapshot,
                                                                 entry_point, capsys):
    config = tiny_snapshot(tmp_path, tmp_path)
    out = tmp_path / "out"
    assert run_demo(entry_point, config, photos, out) == 0
    captured = capsys.readouterr()
    for stem in ("a", "b"):
        assert (out / f"{stem}.jpg").is_file() and (out / f"{stem}.json").is_file()
    assert not (out / "cut.jpg").exists() and not (out / "sub").exists()
    assert "on 2 images" in captured.out

    # passed over, each with why
    assert f"{photos / 'sub'}{os.sep}: a folder (--recursive reads its images too)" in captured.err
    assert f"{photos / 'notes.txt'}: not named .jpg" in captured.err
    # unreadable, listed at the end with their reasons
    listing = captured.err[captured.err.index("could not read 3 of 5 images"):]
    assert f"{photos / 'empty.jpg'}: the file is empty" in listing
    assert f"{photos / 'text.jpg'}: not an image file" in listing
    assert f"{photos / 'cut.jpg'}: not a decodable image" in listing  # header fine, pixels not


def test_recursive_reads_sub_folders_and_strict_fails_on_any_unreadable_image(
        photos, tmp_path, tiny_snapshot, entry_point, capsys):
    config = tiny_snapshot(tmp_path, tmp_path)
    out = tmp_path / "out"
    assert run_demo(entry_point, config, photos, out, "--recursive", "--strict") == 1
    captured = capsys.readouterr()
    assert (out / "sub" / "c.jpg").is_file() and (out / "sub" / "c.json").is_file()
    assert (out / "a.jpg").is_file()  # strict still processes everything it can
    assert "on 3 images" in captured.out and "a folder" not in captured.err
    assert "could not read 3 of 6 images" in captured.err


def test_nothing_readable_is_an_error_that_says_why(tmp_path, tiny_snapshot, entry_point, capsys):
    config = tiny_snapshot(tmp_path, tmp_path)
    folder = tmp_path / "only_bad"
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    assert run_demo(entry_point, config, folder, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "none of the 1 images can be read" in err and "empty.jpg: the file is empty" in err
    assert not (tmp_path / "out").exists()

    assert run_demo(entry_point, config, folder / "empty.jpg", tmp_path / "out") == 2
    assert "the file is empty" in capsys.readouterr().err

    listing = tmp_path / "ks_list.txt"
    listing.write_bytes(b"")
    assert run_demo(entry_point, config, listing, tmp_path / "out") == 2
    assert f"{listing}: the file is empty" in capsys.readouterr().err
