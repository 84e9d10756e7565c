"""Nothing the user had is changed (issue 26): demo.py and grade.py never
replace an input or a file they did not write (outputs.py), two images never
share an output name, and an output folder that cannot be written is one
line and exit status 2 before any work, for every command that writes one."""

from __future__ import annotations

import json
import os

import cv2
import pytest

from test.cli import settings_suffix
from tests.conftest import write_image


def folder_state(folder) -> dict:
    """Every file below `folder` with its bytes."""
    state = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                state[os.path.relpath(path, folder)] = f.read()
    return state


def refusal(captured) -> str:
    """The last line on stderr, which says why a command refused; no traceback."""
    assert "Traceback" not in captured.err
    return captured.err.strip().splitlines()[-1]


@pytest.fixture
def photos(tmp_path):
    """A user's folder: two pictures and a JSON file of their own."""
    folder = tmp_path / "x"
    write_image(folder / "p.jpg", value=120)
    write_image(folder / "r.png", value=60)
    (folder / "q.json").write_text('{"mine": true}', encoding="utf-8")
    return folder


def demo(entry_point, config, images, out, *extra):
    return entry_point("demo.py", config, "--testiter", "1", "--device", "cpu", "--images", images,
                       "--out", out, *extra)


def test_demo_never_replaces_the_pictures_it_reads(photos, tmp_path, tiny_snapshot, entry_point,
                                                   capsys):
    config = tiny_snapshot(tmp_path, tmp_path)
    before = folder_state(photos)
    assert demo(entry_point, config, photos, photos) == 2
    captured = capsys.readouterr()
    line = refusal(captured)
    assert line.startswith(f"demo.py: --out {photos}: {photos / 'p.jpg'} would replace the input")
    assert "detecting" not in captured.out  # refused before any work
    assert folder_state(photos) == before

    # one picture as --images, its folder as --out: the same
    assert demo(entry_point, config, photos / "p.jpg", photos) == 2
    assert f"{photos / 'p.jpg'} would replace the input" in refusal(capsys.readouterr())
    assert folder_state(photos) == before


def test_demo_never_replaces_a_file_it_did_not_write(photos, tmp_path, tiny_snapshot, entry_point,
                                                     capsys):
    config = tiny_snapshot(tmp_path, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "p.json").write_text("my notes", encoding="utf-8")
    assert demo(entry_point, config, photos / "p.jpg", out) == 2
    assert (f"{out / 'p.json'} exists and demo.py did not write it"
            in refusal(capsys.readouterr()))
    assert folder_state(out) == {"p.json": b"my notes"}


def test_demo_replaces_its_own_files_of_an_earlier_run_while_unchanged(photos, tmp_path,
                                                                        tiny_snapshot, entry_point,
                                                                        capsys):
    config = tiny_snapshot(tmp_path, tmp_path)
    out = tmp_path / "out"
    assert demo(entry_point, config, photos, out) == 0
    written = folder_state(out)
    assert {"p.jpg", "p.json", "r.jpg", "r.json", ".demo-outputs.json"} == set(written)
    manifest = json.loads(written[".demo-outputs.json"])
    assert manifest["tool"] == "demo.py" and set(manifest["files"]) == {"p.jpg", "p.json",
                                                                         "r.jpg", "r.json"}
    assert demo(entry_point, config, photos, out) == 0  # its own files: replaced
    assert folder_state(out) == written
    capsys.readouterr()

    (out / "r.json").write_text("edited by hand", encoding="utf-8")
    assert demo(entry_point, config, photos, out) == 2
    assert f"{out / 'r.json'} was changed since demo.py wrote it" in refusal(capsys.readouterr())
    assert (out / "r.json").read_text(encoding="utf-8") == "edited by hand"


def test_grade_never_replaces_the_picture_it_reads(photos, tmp_path, tiny_snapshot, entry_point,
                                                   capsys):
    config = tiny_snapshot(tmp_path, tmp_path)
    before = folder_state(photos)
    # the reader need not exist: the outputs are checked before anything is loaded
    assert entry_point("grade.py", config, "--testiter", "1", "--device", "cpu", "--images",
                       photos / "p.jpg", "--out", photos) == 2
    assert f"{photos / 'p.jpg'} would replace the input" in refusal(capsys.readouterr())
    assert folder_state(photos) == before


def test_images_with_one_stem_get_outputs_of_their_own(tmp_path, tiny_snapshot, entry_point,
                                                      capsys):
    config = tiny_snapshot(tmp_path, tmp_path)
    folder = tmp_path / "same"
    for name, value in (("a.jpg", 40), ("a.png", 120), ("a_2.jpg", 200)):
        write_image(folder / name, value=value)
    out = tmp_path / "out"
    assert demo(entry_point, config, folder, out) == 0
    assert "on 3 images" in capsys.readouterr().out
    named = {}
    for stem in ("a", "a_2", "a_3"):
        assert cv2.imread(str(out / f"{stem}.jpg")) is not None
        named[stem] = os.path.basename(json.loads((out / f"{stem}.json").read_text())["image"])
    # an image keeps its own stem; the second 'a' takes a number no image has
    assert named == {"a": "a.jpg", "a_2": "a_2.jpg", "a_3": "a.png"}


def test_grade_keeps_summary_json_for_the_summary(tmp_path):
    from demo import image_records, output_stems

    folder = tmp_path / "pages"
    write_image(folder / "summary.png")
    write_image(folder / "page.png")
    records, _ = image_records([str(folder / "summary.png"), str(folder / "page.png")], 10 ** 6)
    stems = output_stems(records, str(folder), reserved=("summary",))
    assert sorted(stems.values()) == ["page", "summary_2"]


@pytest.mark.parametrize("script", ["demo.py", "grade.py"])
def test_an_out_that_cannot_be_written_is_one_line_before_any_work(script, photos, tmp_path,
                                                                   tiny_snapshot, entry_point,
                                                                   capsys, read_only_folder):
    config = tiny_snapshot(tmp_path, tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("mine", encoding="utf-8")
    cases = {read_only_folder: f"--out {read_only_folder} cannot be written: "
                               f"it is on a read-only file system"
             if os.geteuid() == 0 else f"--out {read_only_folder} cannot be written: "
                                       f"permission denied",
             a_file: f"--out {a_file} cannot be written: {a_file} is a file, not a folder",
             a_file / "sub": f"--out {a_file / 'sub'} cannot be written: {a_file} is a file, "
                             f"not a folder"}
    for out, says in cases.items():
        assert entry_point(script, config, "--testiter", "1", "--device", "cpu", "--images",
                           photos, "--out", out) == 2, out
        captured = capsys.readouterr()
        assert refusal(captured).startswith(f"{script}: {says}"), out
        assert "detecting" not in captured.out and "grading" not in captured.out
    assert a_file.read_text(encoding="utf-8") == "mine"
    assert os.listdir(read_only_folder) == []


def test_test_py_checks_its_result_folder_before_loading_anything(tmp_path, tiny_ks_dir,
                                                                  tiny_snapshot, entry_point,
                                                                  capsys, read_only_folder):
    config = tiny_snapshot(tmp_path, tiny_ks_dir)
    a_file = tmp_path / "a_file"
    a_file.write_text("mine", encoding="utf-8")
    says = "it is on a read-only file system" if os.geteuid() == 0 else "permission denied"
    for result_dir, why in ((read_only_folder, f"{says} (in {read_only_folder}, where it would "
                                               f"be made)"),
                            (a_file, f"{a_file} is a file, not a folder")):
        assert entry_point("test.py", config, "--testiter", "1", "--device", "cpu", "--set",
                           f"system.result_dir={result_dir}") == 2
        captured = capsys.readouterr()
        folder = os.path.join(result_dir, "Tiny-Snapshot",
                              "val_1" + settings_suffix([f"system.result_dir={result_dir}"]))
        assert refusal(captured) == (f"test.py: the result folder (system.result_dir) {folder} "
                                     f"cannot be written: {why}")
        assert "testing" not in captured.out
    assert os.listdir(read_only_folder) == [] and a_file.read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("script", ["test.py", "grade.py"])
def test_max_images_below_zero_is_refused(script, tmp_path, tiny_ks_dir, tiny_snapshot,
                                          entry_point, capsys):
    config = tiny_snapshot(tmp_path, tiny_ks_dir)
    where = ["--images", os.path.join(tiny_ks_dir, "ks_val.txt"), "--out", tmp_path / "out"]
    assert entry_point(script, config, "--testiter", "1", "--max-images", "-1",
                       *(where if script == "grade.py" else [])) == 2
    assert "--max-images must be >= 0 (0: all), got -1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_db_convert_checks_its_target_before_reading(tmp_path, tiny_ks_dir, capsys,
                                                     read_only_folder):
    from db.convert import main as convert

    source = os.path.join(tiny_ks_dir, "ks_val.txt")
    a_file = tmp_path / "a_file"
    a_file.write_text("mine", encoding="utf-8")
    says = "it is on a read-only file system" if os.geteuid() == 0 else "permission denied"
    cases = [([read_only_folder, "--to", "labelme"],
              f"the target {read_only_folder} cannot be written: {says}"),
             ([a_file / "instances_val.json"], f"the target {a_file / 'instances_val.json'} "
                                               f"cannot be written: {a_file} is a file")]
    for target, message in cases:
        assert convert([source, *map(str, target)]) == 2
        assert refusal(capsys.readouterr()).startswith(f"db.convert: {message}")
    assert convert([source, str(tmp_path), "--to", "coco"]) == 2
    assert (f"db.convert: the target {tmp_path} is a folder: give the coco file to write, e.g. "
            f"{tmp_path / 'instances_train.json'}") in refusal(capsys.readouterr())
    assert os.listdir(read_only_folder) == [] and a_file.read_text(encoding="utf-8") == "mine"


def test_nnet_plot_names_a_line_that_is_no_log_line_and_an_out_it_cannot_write(
        tmp_path, capsys, read_only_folder):
    from nnet import plot

    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"iteration": 1, "total": 3.0}) + "\n"
                   + json.dumps({"iteration": "two", "total": 2.0}) + "\n", encoding="utf-8")
    assert plot.main([str(log)]) == 1
    assert refusal(capsys.readouterr()) == (
        f'nnet.plot: {log}:2: "iteration" is "two", not a number: this is not a log.jsonl that '
        f'train.py wrote, or it was edited')
    assert not (tmp_path / "training_curves.png").exists()

    log.write_text(json.dumps({"iteration": 1, "total": 3.0}) + "\n", encoding="utf-8")
    out = read_only_folder / "curves.png"
    says = "it is on a read-only file system" if os.geteuid() == 0 else "permission denied"
    assert plot.main([str(log), "--out", str(out)]) == 2
    assert refusal(capsys.readouterr()) == f"nnet.plot: --out {out} cannot be written: {says}"


def test_db_convert_never_replaces_what_it_converts_even_with_overwrite(tmp_path, tiny_ks_dir,
                                                                       capsys):
    from db.convert import main as convert

    voc = tmp_path / "voc"
    assert convert([os.path.join(tiny_ks_dir, "ks_val.txt"), str(voc), "--to", "voc"]) == 0
    capsys.readouterr()
    before = folder_state(voc)
    one = sorted(voc.iterdir())[0]
    assert convert([str(voc), str(one), "--to", "ks", "--overwrite"]) == 1
    assert f"{one}: is one of the files being converted: choose another target" in \
        capsys.readouterr().err
    assert folder_state(voc) == before
