"""`python -m db.convert` (db/convert.py): ks <-> labelme, Pascal VOC and COCO.

Round trips through each format give back the same images, boxes and
categories (read with the project's own ks reader); what it writes is read
by pycocotools and the project's COCO reader; every problem of an input is
named with file and position, all at once, exit status 1, nothing written."""

import json
import os
import shutil
import xml.etree.ElementTree as ET

import pytest

from db.coco import load_coco
from db.convert import main as convert
from db.ks import inspect_ks_file

NAMES = ["add", "sub", "mul", "div", "compare", "fill"]


def ks_content(path):
    """[(absolute image path, boxes, classes)] as the ks reader sees the file."""
    report = inspect_ks_file(path, len(NAMES))
    assert not report.errors, report.errors
    return [(line.path, line.boxes, line.classes) for line in report.lines]


@pytest.fixture(scope="module")
def ks_val(tiny_ks_dir):
    """The session's synthetic ks_val.txt (3 pages, Chinese file names)."""
    return os.path.join(tiny_ks_dir, "ks_val.txt")


@pytest.mark.parametrize("fmt, target", [("labelme", "labelme_out"), ("voc", "voc_out"),
                                         ("coco", "instances_val.json")])
def test_ks_to_a_format_and_back_gives_the_same_boxes(tmp_path, ks_val, fmt, target, capsys):
    written = str(tmp_path / target)
    args = [ks_val, written] + (["--to", fmt] if fmt != "coco" else [])
    assert convert(args) == 0
    back = str(tmp_path / "back" / "ks_val.txt")
    assert convert([written, back]) == 0  # the format guessed from the path
    original = ks_content(ks_val)
    assert sum(len(classes) for _, _, classes in original) > 20
    assert ks_content(back) == original
    assert "check it with: python -m db.ks" in capsys.readouterr().out


def test_labelme_files_are_what_labelme_reads(tmp_path, ks_val):
    out = tmp_path / "labelme"
    assert convert([ks_val, str(out), "--to", "labelme"]) == 0
    (path, boxes, classes), *_ = ks_content(ks_val)
    data = json.loads((out / (os.path.splitext(os.path.basename(path))[0] + ".json"))
                      .read_text(encoding="utf-8"))
    assert os.path.normpath(os.path.join(str(out), data["imagePath"])) == path
    assert len(data["shapes"]) == len(boxes)
    first = data["shapes"][0]
    assert first["shape_type"] == "rectangle" and first["label"] == NAMES[classes[0]]
    assert first["points"] == [boxes[0][:2], boxes[0][2:]]
    assert data["imageData"] is None and data["imageWidth"] > 0 and data["imageHeight"] > 0


def test_voc_files_hold_the_standard_elements(tmp_path, ks_val):
    out = tmp_path / "voc"
    assert convert([ks_val, str(out), "--to", "voc"]) == 0
    (path, boxes, classes), *_ = ks_content(ks_val)
    root = ET.parse(out / (os.path.splitext(os.path.basename(path))[0] + ".xml")).getroot()
    assert root.tag == "annotation" and root.findtext("filename") == os.path.basename(path)
    objects = root.findall("object")
    assert [o.findtext("name") for o in objects] == [NAMES[c] for c in classes]
    box = objects[0].find("bndbox")
    assert [float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")] == boxes[0]


def test_coco_written_is_read_by_pycocotools_and_the_coco_reader(tmp_path, ks_val, tiny_ks_dir):
    from pycocotools.coco import COCO

    out = tmp_path / "annotations" / "instances_val.json"
    assert convert([ks_val, str(out), "--image-root", tiny_ks_dir]) == 0
    coco = COCO(str(out))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == NAMES
    db = load_coco(str(out), tiny_ks_dir, len(NAMES))
    original = ks_content(ks_val)
    assert [r.path for r in db.records] == [path for path, _, _ in original]
    assert sum(r.num_objects for r in db.records) == sum(len(c) for _, _, c in original)
    file_names = [image["file_name"] for image in coco.dataset["images"]]
    assert all(not os.path.isabs(name) and not name.startswith("..") for name in file_names)


def test_labelme_as_labelme_writes_it(tmp_path, tiny_ks_dir):
    """Polygons, rectangles drawn from the bottom-right, Windows paths."""
    (path, _, _), *_ = ks_content(os.path.join(tiny_ks_dir, "ks_val.txt"))
    folder = tmp_path / "labelled"
    folder.mkdir()
    image = folder / "页.png"
    shutil.copy(path, image)
    shapes = [
        {"label": "add", "points": [[40, 30], [10, 5]], "shape_type": "rectangle"},
        {"label": " fill ", "points": [[10, 50], [30, 45], [35, 70], [12, 66]],
         "shape_type": "polygon"},
        {"label": "div", "points": [[1.5, 2.25], [8.75, 9.5]]},  # old labelme: no shape_type, polygon
    ]
    (folder / "页.json").write_text(json.dumps({"shapes": shapes, "imagePath": "..\\labelled\\页.png",
                                               "imageData": None}), encoding="utf-8")
    out = tmp_path / "ks_labelled.txt"
    assert convert([str(folder), str(out)]) == 0
    [(read_path, boxes, classes)] = ks_content(str(out))
    assert read_path == str(image)
    assert boxes == [[10, 5, 40, 30], [10, 45, 35, 70], [1.5, 2.25, 8.75, 9.5]]
    assert classes == [0, 5, 3]


def _labelme_file(folder, name, image, shapes):
    (folder / name).write_text(json.dumps({
        "shapes": shapes, "imagePath": os.path.relpath(image, folder),
        "imageWidth": None, "imageHeight": None}), encoding="utf-8")


def test_every_problem_is_named_with_its_file_and_position(tmp_path, tiny_ks_dir, capsys):
    (path, _, _), *_ = ks_content(os.path.join(tiny_ks_dir, "ks_val.txt"))
    folder = tmp_path / "labelme"
    folder.mkdir()
    rectangle = [[5, 5], [20, 15]]
    _labelme_file(folder, "a.json", path, [
        {"label": "add", "points": rectangle, "shape_type": "rectangle"},
        {"label": "ad", "points": rectangle, "shape_type": "rectangle"},
        {"label": "sub", "points": [[5, 5]], "shape_type": "rectangle"},
        {"label": "mul", "points": [[5, 5], [6, 6]], "shape_type": "circle"},
        {"label": "div", "points": [[5, 5], [5, 30]], "shape_type": "rectangle"},
    ])
    _labelme_file(folder, "b.json", str(tmp_path / "missing.png"), [])
    (folder / "c.json").write_text('{"shapes": [\n  1,\n]}', encoding="utf-8")
    out = tmp_path / "ks_out.txt"
    assert convert([str(folder), str(out)]) == 1
    err = capsys.readouterr().err
    a, b, c = (str(folder / n) for n in ("a.json", "b.json", "c.json"))
    for expected in (f"{a} (shapes[1]): label 'ad' is not a category", "did you mean 'add'?",
                     f"{a} (shapes[2]): a rectangle has 2 points",
                     f"{a} (shapes[3]): shape_type 'circle'",
                     f"{a} (shapes[4]): box 5,5,5,30 has no area",
                     f"{b}: image {tmp_path / 'missing.png'}: no such file",
                     f"{c}:3: not valid JSON", "6 problems", "nothing was written"):
        assert expected in err, expected
    assert not out.exists()


def test_voc_problems_name_the_object(tmp_path, tiny_ks_dir, capsys):
    (path, _, _), *_ = ks_content(os.path.join(tiny_ks_dir, "ks_val.txt"))
    folder = tmp_path / "voc"
    folder.mkdir()
    shutil.copy(path, folder / "page.jpg")
    objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>2</ymin><xmax>30</xmax>"
        f"<ymax>20</ymax></bndbox></object>" for name, x1 in (("sub", 3), ("Sub", 4), ("mul", "x")))
    (folder / "page.xml").write_text(f"<annotation><filename>page.jpg</filename>{objects}"
                                     f"</annotation>", encoding="utf-8")
    (folder / "broken.xml").write_text("<annotation>\n<filename>a.jpg</filename>\n<object>\n",
                                       encoding="utf-8")
    assert convert([str(folder), str(tmp_path / "ks.txt")]) == 1
    err = capsys.readouterr().err
    page, broken = str(folder / "page.xml"), str(folder / "broken.xml")
    assert f"{page} (object 2): label 'Sub' is not a category" in err
    assert f"{page} (object 3): <bndbox> needs numbers in <xmin>" in err
    assert f"{broken}:4: not valid XML" in err
    assert "3 problems" in err


def test_coco_category_unknown_by_name_is_named(tmp_path, ks_val, tiny_ks_dir, capsys):
    out = tmp_path / "instances.json"
    assert convert([ks_val, str(out), "--image-root", tiny_ks_dir]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    data["categories"][1]["name"] = "minus"
    data["categories"].append({"id": 99, "name": "unused"})  # no annotation: not a problem
    out.write_text(json.dumps(data), encoding="utf-8")
    assert convert([str(out), str(tmp_path / "ks.txt"), "--image-root", tiny_ks_dir]) == 1
    err = capsys.readouterr().err
    used = sum(1 for a in data["annotations"] if a["category_id"] == data["categories"][1]["id"])
    assert f"{out} (categories[1]): label 'minus' is not a category" in err
    assert f"({used} annotation" in err and "unused" not in err
    # the same file with the names given in the file's own words
    names = ",".join(c["name"] for c in data["categories"][:6])
    assert convert([str(out), str(tmp_path / "ks.txt"), "--image-root", tiny_ks_dir,
                    "--names", names]) == 0


def test_existing_output_is_kept_unless_overwrite(tmp_path, ks_val, capsys):
    out = tmp_path / "ks_copy.json"
    assert convert([ks_val, str(out)]) == 0
    before = out.read_text(encoding="utf-8")
    out.write_text("mine", encoding="utf-8")
    assert convert([ks_val, str(out)]) == 1
    assert "exists already: pass --overwrite" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "mine"
    assert convert([ks_val, str(out), "--overwrite"]) == 0
    assert out.read_text(encoding="utf-8") == before


def test_a_folder_to_write_needs_its_format(tmp_path, ks_val, capsys):
    with pytest.raises(SystemExit) as stopped:
        convert([ks_val, str(tmp_path / "somewhere")])
    assert stopped.value.code == 2
    assert "give --to" in capsys.readouterr().err
