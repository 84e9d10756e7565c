"""`python -m db.convert` (db/convert.py): ks <-> labelme, Pascal VOC and COCO.

Round trips through each format give back the same images, boxes and
categories (read with the project's own ks reader); what it writes is read
by pycocotools and the project's COCO reader; every problem of an input is
named with file and position, all at once, exit status 1, nothing written."""

import json
import os
import shutil
import xml.etree.ElementTree as ET

import numpy as np
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


# ----------------------------------------------------------------------
# YOLO (db/yolo.py): labels/*.txt `class cx cy w h`, names in data.yaml or classes.txt
# ----------------------------------------------------------------------

def test_ks_to_yolo_and_back_keeps_every_box_within_half_a_pixel(tmp_path, ks_val, capsys):
    out = tmp_path / "yolo"
    assert convert([ks_val, str(out), "--to", "yolo"]) == 0
    assert (out / "classes.txt").read_text(encoding="utf-8").split() == NAMES
    assert "names:\n  0: add\n  1: sub\n" in (out / "data.yaml").read_text(encoding="utf-8")
    original = ks_content(ks_val)
    for path, boxes, _ in original:
        stem, extension = os.path.splitext(os.path.basename(path))
        link = out / "images" / (stem + extension)
        assert os.path.samefile(link, path)  # a link (or a copy) named as its label file
        lines = (out / "labels" / (stem + ".txt")).read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(boxes)
        assert all(0 <= float(v) <= 1 for line in lines for v in line.split()[1:])

    back = tmp_path / "ks_back.txt"
    assert convert([str(out), str(back)]) == 0  # a folder with labels/: YOLO
    assert "yolo -> ks" in capsys.readouterr().out
    again = ks_content(str(back))
    assert [path for path, _, _ in again] == [path for path, _, _ in original]  # links followed
    assert [classes for _, _, classes in again] == [classes for _, _, classes in original]
    assert sum(len(boxes) for _, boxes, _ in again) > 20
    for (_, boxes, _), (_, boxes_back, _) in zip(original, again):
        assert len(boxes) == len(boxes_back)
        if boxes:
            assert abs(np.array(boxes_back) - np.array(boxes)).max() <= 0.5


@pytest.fixture
def one_page(tiny_ks_dir):
    """(path, width, height) of one synthetic page."""
    (path, _, _), *_ = ks_content(os.path.join(tiny_ks_dir, "ks_val.txt"))
    from db.image_io import image_size
    return (path, *image_size(path))


def _page_in(folder, page, name="page.png"):
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(page[0], folder / name)
    return folder / name


@pytest.mark.parametrize("layout", ["labelImg", "ultralytics split"])
def test_a_yolo_folder_as_labelling_tools_write_it(tmp_path, one_page, layout):
    """Names in the file's own order, matched to ours by name; an image without a
    label file holds no objects; labelImg (labels beside the images, classes.txt)
    and one split of the ultralytics layout (data.yaml two folders up)."""
    _, width, height = one_page
    if layout == "labelImg":
        source = labels = images = tmp_path / "labelled"
        _page_in(images, one_page)
        (labels / "classes.txt").write_text("fill\nadd\r\ndiv\n\n", encoding="utf-8")
    else:
        root = tmp_path / "dataset"
        images, labels, source = root / "images" / "train", root / "labels" / "train", \
            root / "labels" / "train"
        _page_in(images, one_page)
        labels.mkdir(parents=True)
        (root / "data.yaml").write_text("path: ../dataset  # a comment\ntrain: images/train\n"
                                        "val: images/val\nnames:\n  0: fill\n  1: 'add'\n"
                                        '  2: "div"\n', encoding="utf-8")
    _page_in(images, one_page, "empty.jpg")
    (labels / "page.txt").write_text("0 0.5 0.25 0.2 0.1\n\n1 0.1 0.1 0.2 0.2\r\n2 1 1 0.5 0.5\n",
                                     encoding="utf-8")
    out = tmp_path / "ks_out.txt"
    assert convert([str(source), str(out), "--from", "yolo"]) == 0
    empty, page = ks_content(str(out))  # in image name order
    assert empty[0] == str(images / "empty.jpg") and empty[1] == []
    assert page[0] == str(images / "page.png")
    expected = [[0.4 * width, 0.2 * height, 0.6 * width, 0.3 * height],
                [0, 0, 0.2 * width, 0.2 * height],
                [0.75 * width, 0.75 * height, width, height]]  # clipped by the ks reader
    assert np.allclose(page[1], expected, atol=0.01)
    assert page[2] == [5, 0, 3]


def test_yolo_without_a_names_file_is_refused(tmp_path, one_page, capsys):
    folder = tmp_path / "yolo"
    _page_in(folder / "images", one_page)
    (folder / "labels").mkdir()
    (folder / "labels" / "page.txt").write_text("0 0.5 0.5 0.1 0.1\n", encoding="utf-8")
    out = tmp_path / "ks.txt"
    assert convert([str(folder), str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{folder}: no data.yaml or classes.txt here or in the two folders above" in err
    assert "write classes.txt beside labels/, one name a line, class 0 first" in err
    assert "nothing was written" in err and not out.exists()


def test_every_bad_yolo_line_is_named_with_its_file_and_line(tmp_path, one_page, capsys):
    folder = tmp_path / "yolo"
    _page_in(folder / "images", one_page)
    (folder / "labels").mkdir()
    (folder / "classes.txt").write_text("add\nsub\nminus\n", encoding="utf-8")
    (folder / "labels" / "page.txt").write_text(
        "0 0.5 0.5 0.1 0.1\n"          # good
        "1 0.5 0.5 0.1\n"              # 4 numbers
        "1 0.5 0.5 0.1 0.1 0.9\n"      # 6 numbers
        "1 1.2 0.5 0.1 -0.1\n"         # outside 0..1
        "7 0.5 0.5 0.1 0.1\n"          # class out of range
        "1.5 0.5 x 0.1 0\n"            # not a class, not a number
        "2 0.5 0.5 0.1 0.1\n",         # a class whose name is not a category
        encoding="utf-8")
    (folder / "labels" / "lost.txt").write_text("0 0.5 0.5 0.1 0.1\n", encoding="utf-8")
    out = tmp_path / "ks.txt"
    assert convert([str(folder), str(out)]) == 1
    err = capsys.readouterr().err
    label, names = folder / "labels" / "page.txt", folder / "classes.txt"
    for expected in (
            f"{label}:2: has 4 numbers; a YOLO box is `class cx cy w h` (5 numbers",
            f"{label}:3: has 6 numbers",
            f"{label}:4: cx 1.2, h -0.1 outside 0..1: YOLO coordinates are fractions",
            f"{label}:5: class 7 is out of range: classes.txt names 3 classes (0..2)",
            f'{label}:6: cy "x" is not a finite number',
            f"{names}: class 2: label 'minus' is not a category",
            f"(1 box, the first at {label}:7)",
            f"{folder / 'labels' / 'lost.txt'}: no image lost.* in {folder / 'images'}",
            "7 problems", "nothing was written"):
        assert expected in err, expected
    assert f"{label}:1:" not in err
    assert not out.exists()


YAML_NAMES = {
    "flow list": "names: [fill, 'add', \"div\"]  # ours are add, sub, ...\n",
    "flow list over lines": "nc: 3\nnames: [fill,\n  add, div,\n]\ntrain: images\n",
    "block list": "train: images\nnames:\n- fill\n- add  # comment\n\n- div\nval: images\n",
    "indented block list": "names:\n  - fill\n  - \"add\"\n  - 'div'\n",
    "flow mapping": "names: {0: fill, 1: add, 2: div}\n",
    "block mapping": "# written by hand\nnames:\n  0: fill\n  1: add\n  2: div\nnc: 3\n",
}


@pytest.mark.parametrize("form", YAML_NAMES)
def test_data_yaml_names_in_each_form_yaml_writes(tmp_path, form):
    from db.yolo import read_names

    path = tmp_path / "data.yaml"
    path.write_text(YAML_NAMES[form], encoding="utf-8")
    names, problems = read_names(str(path))
    assert problems == [] and names == {0: "fill", 1: "add", 2: "div"}
    try:
        import yaml  # not a dependency: ultralytics brings it; the reader must agree with it
    except ImportError:
        return
    read = yaml.safe_load(YAML_NAMES[form])["names"]
    assert (dict(enumerate(read)) if isinstance(read, list) else read) == names


@pytest.mark.parametrize("text, line, why", [
    ("names: &classes [add]\n", 1, "anchors (&), aliases (*) and tags (!) are not read"),
    ("names:\n  - !!str add\n", 2, "anchors (&), aliases (*) and tags (!) are not read"),
    ("names:\n  0: add\n  1:\n    - sub\n", 3, "an empty name"),
    ("names:\n  - add\n  1: sub\n", 3, "list items and `index: name` lines mixed"),
    ("names: [add, [sub]]\n", 1, "nested collections"),
    ("names: add\n", 1, "`names: add` is one value, not a list or a mapping"),
    ("names:\n  zero: add\n", 2, "the key 'zero' is not a class index"),
])
def test_data_yaml_beyond_the_subset_names_the_line_and_the_subset(tmp_path, one_page, capsys,
                                                                   text, line, why):
    folder = tmp_path / "yolo"
    _page_in(folder / "images", one_page)
    (folder / "labels").mkdir()
    (folder / "data.yaml").write_text("train: images\n" + text, encoding="utf-8")
    assert convert([str(folder), str(tmp_path / "ks.txt")]) == 1
    err = capsys.readouterr().err
    assert f"{folder / 'data.yaml'}:{line + 1}: cannot read the class names: " in err
    assert why in err
    assert "this reader (PyYAML is not a dependency) takes `names:` as a list" in err


def test_names_files_that_contradict_themselves(tmp_path):
    from db.yolo import read_names

    (tmp_path / "classes.txt").write_text("add\n\nsub\n\n", encoding="utf-8")
    (tmp_path / "data.yaml").write_text("nc: 6\nnames: [add, sub]\n", encoding="utf-8")
    assert read_names(str(tmp_path / "classes.txt"))[1] == [
        (2, "empty line: classes.txt holds one class name a line, class 0 first (a blank line "
            "would shift every class after it)")]
    assert read_names(str(tmp_path / "data.yaml"))[1] == [
        (0, "nc is 6 but `names:` lists 2 classes")]
