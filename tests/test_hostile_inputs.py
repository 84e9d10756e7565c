"""Inputs as a hostile or careless user gives them (issue 26): configs that
are not UTF-8, nested thousands deep or with a key twice, --set values of a
thousand brackets or that contradict the file, links in a loop and FIFOs as
images, categories too large to print, NUL bytes. Each is one line naming
the file, line or key, and exit status 2 (exit_codes.py), from every command
that reads it."""

from __future__ import annotations

from tests.conftest import write_config, write_image


def refusal(captured) -> str:
    assert "Traceback" not in captured.err
    return captured.err.strip().splitlines()[-1]


def run_each(entry_point, config, tmp_path, reader=False):
    """Run every entry point that loads `config` (or, with `reader`, the
    recognizer's config), one after the other: yields (script, exit status)."""
    images = ["--images", tmp_path, "--out", tmp_path / "out"]
    if reader:
        yield "train_reader.py", entry_point("train_reader.py", config, "--no-progress")
        page = write_image(tmp_path / "page.jpg")  # grade.py reads --images first
        yield "grade.py", entry_point("grade.py", "CenterNet-tiny", "--testiter", "1",
                                      "--reader", config, "--images", page, "--out",
                                      tmp_path / "out")
        return
    runs = {"train.py": [], "test.py": ["--testiter", "1"], "demo.py": ["--testiter", "1", *images],
            "grade.py": ["--testiter", "1", *images], "export.py": ["--testiter", "1"]}
    for script, arguments in runs.items():
        yield script, entry_point(script, config, *arguments)


def test_a_config_that_is_not_utf8_names_the_file_and_line(tmp_path, entry_point, capsys):
    config = tmp_path / "Latin1.json"
    config.write_bytes('{"base": "CenterNet-tiny",\n "db": {"category_names": '
                       '["é", "b", "c", "d", "e", "f"]}}'.encode("latin-1"))
    expected = f"{config}:2: not UTF-8 text (byte 0xe9, column 29); save the file as UTF-8"
    for script, status in run_each(entry_point, str(config), tmp_path):
        assert status == 2, script
        assert refusal(capsys.readouterr()) == f"{script}: {expected}", script

    from db.ks import main as check_ks
    (tmp_path / "ks_x.txt").write_text("a.png\n", encoding="utf-8")
    assert check_ks([str(tmp_path / "ks_x.txt"), "--config", str(config)]) == 2
    assert refusal(capsys.readouterr()) == f"error: {expected}"

    reader = tmp_path / "Reader.json"
    reader.write_bytes('{"base": "CRNN-tiny", "system": {"data_dir": "dossier-é"}}'
                       .encode("latin-1"))
    for script, status in run_each(entry_point, str(reader), tmp_path, reader=True):
        assert status == 2, script
        assert f"{reader}:1: not UTF-8 text (byte 0xe9" in refusal(capsys.readouterr()), script


def test_a_config_nested_thousands_deep_names_the_file(tmp_path, entry_point, capsys):
    config = tmp_path / "Deep.json"
    config.write_text('{"base": "CenterNet-tiny",\n"db": {"mean": ' + "[" * 3000 + "]" * 3000
                      + "}}", encoding="utf-8")
    for script, status in run_each(entry_point, str(config), tmp_path):
        assert status == 2, script
        assert refusal(capsys.readouterr()) == (
            f"{script}: {config}:2: nested more than 32 levels deep (3002); a config holds at "
            f"most 4"), script


def test_a_set_of_a_thousand_brackets_names_the_key(tmp_path, tiny_ks_dir, entry_point, capsys):
    config = write_config(tmp_path, tiny_ks_dir)
    for script in ("train.py", "test.py", "demo.py"):
        arguments = ["--testiter", "1", "--images", tmp_path, "--out", tmp_path / "out"] \
            if script == "demo.py" else ["--testiter", "1"] if script == "test.py" else []
        assert entry_point(script, config, "--set", "db.mean=" + "[" * 1000, *arguments) == 2
        assert refusal(capsys.readouterr()) == (
            f"{script}: --set db.mean=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...: nested more "
            f"than 32 levels deep (1000); a config holds at most 4"), script


def test_a_key_given_twice_in_a_config_is_named(tmp_path, entry_point, capsys):
    config = tmp_path / "Twice.json"
    config.write_text('{"base": "CenterNet-tiny", "db": {"top_k": 700,\n "nms_kernel": 3, '
                      '"top_k": 30}}', encoding="utf-8")
    assert entry_point("test.py", config, "--testiter", "1") == 2
    assert refusal(capsys.readouterr()) == (
        f"test.py: {config}: 'db.top_k' is given twice; JSON would keep only the last value "
        f"silently: remove one")


def test_a_set_that_contradicts_the_file_is_blamed_on_the_command_line(tmp_path, tiny_ks_dir,
                                                                       entry_point, capsys):
    config = write_config(tmp_path, tiny_ks_dir)
    assert entry_point("train.py", config, "--set", "db.category_names=[]") == 2
    line = refusal(capsys.readouterr())
    assert line.endswith("db.category_names: has 0 names but db.categories is 6 "
                         "(db.category_names=[] was set on the command line, over the file)")


def test_links_in_a_loop_and_fifos_are_called_what_they_are(tmp_path, tiny_snapshot, entry_point,
                                                            capsys):
    import os

    config = tiny_snapshot(tmp_path, tmp_path)
    loop, fifo = tmp_path / "loop", tmp_path / "fifo"
    os.symlink("loop", loop)
    os.mkfifo(fifo)
    takes = "--images takes an image, a folder of images or a ks txt file"
    for images, what in ((loop, "a symbolic link in a loop (it leads back to itself)"),
                         (fifo, "a FIFO (named pipe), not a file")):
        assert entry_point("demo.py", config, "--testiter", "1", "--images", images, "--out",
                           tmp_path / "out") == 2
        assert refusal(capsys.readouterr()) == f"demo.py: {images}: {what}; {takes}"

    # inside a folder, and named by a ks file: the same words
    folder = tmp_path / "pages"
    write_image(folder / "good.jpg")
    os.symlink("bad.jpg", folder / "bad.jpg")
    assert entry_point("demo.py", config, "--testiter", "1", "--images", folder, "--out",
                       tmp_path / "out") == 0
    assert f"{folder / 'bad.jpg'}: a symbolic link in a loop" in capsys.readouterr().err

    from db.ks import main as check_ks
    listing = folder / "ks_pages.txt"
    listing.write_text("bad.jpg 1,2,30,40,0\n", encoding="utf-8")
    assert check_ks([str(listing), "--categories", "6"]) == 1
    assert (f"{listing}:1: image bad.jpg cannot be read: a symbolic link in a loop"
            in capsys.readouterr().out)


def test_a_ks_line_is_shown_as_written_and_never_echoes_control_bytes(tmp_path, capsys):
    from db.ks import main as check_ks

    write_image(tmp_path / "a.png")
    listing = tmp_path / "ks_x.txt"
    listing.write_bytes(b"a.png 1,2,30,40,\x00 1,2,30,40,99999999999999999999\n")
    assert check_ks([str(listing), "--categories", "6"]) == 1
    out = capsys.readouterr().out
    assert "\x00" not in out
    assert f"{listing}:1: box 1 '1,2,30,40,\\x00': c '\\x00' is not a number" in out
    assert ("box 2 \"1,2,30,40,99999999999999999999\": category 99999999999999999999 is out of "
            "range: db.categories is 6, so 0..5") in out
