"""Convert box annotations between ks_*.txt (ks-format.md) and the formats
labelling tools write: labelme (a folder of JSON files, one per image),
Pascal VOC XML (labelImg; a folder of XML files, one per image), COCO
instances JSON (CVAT, Label Studio) and YOLO (labelImg, CVAT, Label Studio,
Roboflow, ultralytics: labels/*.txt beside images/, the names in data.yaml
or classes.txt; db/yolo.py), in any direction.

    python -m db.convert labelme_folder/ data/mine/ks_train.txt          # labelme -> ks
    python -m db.convert voc_folder/ data/mine/ks_train.txt              # VOC -> ks
    python -m db.convert instances_train.json data/mine/ks_train.txt --image-root images/
    python -m db.convert data/ks/ks_val.txt out/ --to labelme            # ks -> labelme
    python -m db.convert data/ks/ks_val.txt out/ --to voc                # ks -> VOC
    python -m db.convert data/ks/ks_val.txt out/instances_val.json       # ks -> COCO
    python -m db.convert yolo_folder/ data/mine/ks_train.txt             # YOLO -> ks
    python -m db.convert data/ks/ks_val.txt out/ --to yolo               # ks -> YOLO

The format of each side comes from the path (.txt: ks; .json file: COCO; a
folder holding labels/, data.yaml or classes.txt: YOLO; a folder of .json:
labelme; a folder of .xml: VOC) or from --from / --to.
Categories are matched by name against the config's db.category_names
(--config, default CenterNet-52: add, sub, mul, div, compare, fill) or
--names; ks category c is the c-th name. A name that is not a category is an
error, with the closest one suggested.

Every problem of the input is collected in one pass and reported with its
file and position (`file:line` for ks and YOLO labels, `file (shapes[3])`,
`file (object 2)`, `file (annotations[7], id 8)`), the way `python -m db.ks`
reports; exit status 1 when there is any, and then nothing is written.
The target is checked before anything is read: one that cannot be written
(read-only, a file in the way) is one line and exit status 2. Output files
that already exist are not replaced without --overwrite, and the files
being converted never are.

Readers reused: ks through db/ks.py (`inspect_ks_file`, which reads each
image's size; written with `format_ks_line`), COCO through db/coco.py
(`load_coco`) and written as `DetectionDB` builds ground truth; VOC through
xml.etree. Coordinates are the ks ones everywhere (pixel edges, x2/y2 the
right/bottom edge, as labelImg and labelme store them; decimals kept to 0.01
px). labelme polygons become their bounding box; other labelme shapes
(points, lines, circles) are errors. VOC `difficult` objects are kept. Boxes
partly outside their image are kept (the ks reader clips them, with a
warning); check a converted ks file with `python -m db.ks`.

YOLO: a YOLO class is matched by its name (data.yaml or classes.txt) to a
category, as COCO's are; only the classes a box uses need one. Written,
coordinates keep 6 decimals of the image's size (a round trip ks -> YOLO ->
ks moves a box by under 0.01 px), an image without boxes gets an empty label
file, and images/ holds a relative symbolic link to each image (a copy where
the file system refuses links), named as its label file, which is what
ultralytics needs to pair them; read back, such a link is followed, so the
ks file names the original image.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import shutil
import sys
import xml.etree.ElementTree as ET

from outputs import OutputError, check_output_file, check_output_folder, why_not_writable

from . import yolo
from .coco import _is_finite, _is_int, _read_json, load_coco
from .detection import DetectionDB
from .errors import AnnotationError, ImageReadError, Problem, plural
from .image_io import image_size
from .ks import format_ks_line, format_ks_number, inspect_ks_file
from .records import ImageRecord

FORMATS = ("ks", "labelme", "voc", "coco", "yolo")
LABELME_VERSION = "5.4.1"  # the labelme file version written (readers accept any)


class Categories:
    """Category names <-> 0-based indices, by exact name."""

    def __init__(self, names):
        self.names = list(names)
        self.index = {name: c for c, name in enumerate(self.names)}

    def find(self, name) -> tuple[int | None, str]:
        """(index, "") or (None, why): the reason names the closest category."""
        if not isinstance(name, str) or not name.strip():
            return None, f"the label is {name!r}, not a category name"
        name = name.strip()
        if name in self.index:
            return self.index[name], ""
        hint = difflib.get_close_matches(name, self.names, n=1, cutoff=0.5)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        return None, (f"label {name!r} is not a category ({', '.join(self.names)}): "
                      f"rename it, or give the categories with --config or --names{extra}")


# ----------------------------------------------------------------------
# reading: (records, errors, warnings)
# ----------------------------------------------------------------------

def read_ks(path, categories: Categories, image_root=None):
    """A ks file through db/ks.py; image sizes from the images' headers."""
    report = inspect_ks_file(path, len(categories.names))
    records = [ImageRecord(image_id=i, path=line.path, width=line.width, height=line.height,
                           boxes=line.boxes, classes=line.classes, source_line=line.line)
               for i, line in enumerate(report.lines, 1) if line.width is not None]
    return records, report.errors, report.warnings


def read_labelme(folder, categories: Categories, image_root=None):
    """Every *.json of `folder` (not its subfolders), in name order; imagePath
    is relative to the JSON file (or to `image_root` when given)."""
    records, errors, warnings = [], [], []
    files = _files(folder, ".json", errors)
    for file in files:
        try:
            data = _read_json(file)
        except AnnotationError as e:
            errors += e.problems
            continue

        def error(message, where=""):
            errors.append(Problem(file, 0, message, where))

        if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
            error('not a labelme file: no "shapes" list')
            continue
        written = data.get("imagePath")
        if not isinstance(written, str) or not written:
            error('no "imagePath"')
            continue
        image = _image_path(written.replace("\\", "/"), file, image_root)
        size = _declared_size(data.get("imageWidth"), data.get("imageHeight"), image, error,
                              '"imageWidth" and "imageHeight"')
        if size is None:
            continue
        boxes, classes = [], []
        for s, shape in enumerate(data["shapes"]):
            where = f"shapes[{s}]"
            if not isinstance(shape, dict):
                error("a shape must be an object", where)
                continue
            cls, why = categories.find(shape.get("label"))
            box, box_why = _labelme_box(shape)
            for reason in (why, box_why):
                if reason:
                    error(reason, where)
            if cls is None or box is None:
                continue
            reason = _box_problem(box, *size)
            if reason:
                error(reason, where)
                continue
            boxes.append(box)
            classes.append(cls)
        records.append(ImageRecord(image_id=len(records) + 1, path=image, width=size[0],
                                   height=size[1], boxes=boxes, classes=classes))
    return records, errors, warnings


def _labelme_box(shape) -> tuple[list | None, str]:
    kind = shape.get("shape_type") or "polygon"  # labelme's default when the key is absent
    points = shape.get("points")
    if not (isinstance(points, list) and points
            and all(isinstance(p, list) and len(p) == 2 and all(_is_finite(v) for v in p)
                    for p in points)):
        return None, f"points must be a list of [x, y] numbers, got {points!r}"
    if kind == "rectangle" and len(points) != 2:
        return None, f"a rectangle has 2 points, this one {len(points)}"
    if kind not in ("rectangle", "polygon"):
        return None, (f"shape_type {kind!r}: only rectangles (and polygons, taken as their "
                      f"bounding box) are boxes; redraw it as a rectangle")
    xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
    return [min(xs), min(ys), max(xs), max(ys)], ""


def read_voc(folder, categories: Categories, image_root=None):
    """Every *.xml of `folder` (not its subfolders), in name order. The image
    is `image_root`/<filename> when given, else <path> when that file exists,
    else <filename> beside the XML file."""
    records, errors, warnings = [], [], []
    for file in _files(folder, ".xml", errors):
        def error(message, where=""):
            errors.append(Problem(file, 0, message, where))

        try:
            root = ET.parse(file).getroot()
        except ET.ParseError as e:
            errors.append(Problem(file, e.position[0], f"not valid XML: {e}"))
            continue
        if root.tag != "annotation":
            error(f"not a Pascal VOC file: the root element is <{root.tag}>, not <annotation>")
            continue
        filename = (root.findtext("filename") or "").strip()
        if not filename:
            error("no <filename>")
            continue
        image = _voc_image(filename, (root.findtext("path") or "").strip(), file, image_root)
        size = root.find("size")
        size = _declared_size(_voc_int(size, "width"), _voc_int(size, "height"), image, error,
                              "<size> <width> and <height>")
        if size is None:
            continue
        boxes, classes = [], []
        for j, obj in enumerate(root.findall("object"), 1):
            where = f"object {j}"
            cls, why = categories.find(obj.findtext("name"))
            if why:
                error(why, where)
            box, bad = [], []
            for key in ("xmin", "ymin", "xmax", "ymax"):
                value = _voc_number(obj.find("bndbox"), key)
                if value is None:
                    bad.append(key)
                box.append(value)
            if bad:
                error(f"<bndbox> needs numbers in {', '.join(f'<{k}>' for k in bad)}", where)
                continue
            reason = _box_problem(box, *size)
            if reason:
                error(reason, where)
                continue
            if cls is not None:
                boxes.append(box)
                classes.append(cls)
        records.append(ImageRecord(image_id=len(records) + 1, path=image, width=size[0],
                                   height=size[1], boxes=boxes, classes=classes))
    return records, errors, warnings


def _voc_image(filename, written_path, xml_file, image_root):
    if image_root is None and written_path and os.path.isfile(written_path):
        return os.path.abspath(written_path)
    return _image_path(filename, xml_file, image_root)


def _voc_number(parent, key):
    text = parent.findtext(key) if parent is not None else None
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _voc_int(parent, key):
    value = _voc_number(parent, key)
    return int(value) if value is not None and value.is_integer() else None


def read_coco(path, categories: Categories, image_root=None):
    """An instances JSON through db/coco.py; its categories matched to ours by
    name. Images are `image_root`/<file_name> (default: the JSON's folder)."""
    path = os.path.abspath(path)
    errors = []
    try:
        data = _read_json(path)
    except AnnotationError as e:
        return [], e.problems, []
    file_categories = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(file_categories, list):
        return [], [Problem(path, 0, 'not a COCO instances file: no "categories" list')], []
    used = {}
    for annotation in data.get("annotations") or []:
        if isinstance(annotation, dict):
            used[annotation.get("category_id")] = used.get(annotation.get("category_id"), 0) + 1
    for k, category in enumerate(file_categories):
        if not isinstance(category, dict) or not used.get(category.get("id")):
            continue  # an unused category needs no counterpart
        _, why = categories.find(category.get("name"))
        if why:
            errors.append(Problem(path, 0, f"{why} ({plural(used[category['id']], 'annotation')})",
                                  f"categories[{k}]"))
    image_dir = os.path.abspath(image_root or os.path.dirname(path))
    try:
        count = len({c.get("id") for c in file_categories if isinstance(c, dict)})
        db = load_coco(path, image_dir, max(count, 1))
    except AnnotationError as e:
        return [], errors + e.problems, []
    if errors:
        return [], errors, db.warnings
    records = []
    for record in db.records:
        # every category with an annotation has a name of ours (checked above)
        classes = [categories.index[db.category_names[c].strip()] for c in record.classes.tolist()]
        records.append(ImageRecord(image_id=len(records) + 1, path=os.path.normpath(record.path),
                                   width=record.width, height=record.height, boxes=record.boxes,
                                   classes=classes))
    return records, [], db.warnings


def read_yolo(folder, categories: Categories, image_root=None):
    """Every image of the images folder (db/yolo.py `folders`, or
    `image_root`), in name order, with the boxes of labels/<its name>.txt
    (none when there is no such file); a label file without an image is an
    error, as is a class without a name or whose name is not a category."""
    errors, warnings = [], []
    labels_dir, images_dir = yolo.folders(folder, image_root)
    names_file = yolo.find_names_file(folder)
    if names_file is None:
        above = os.path.dirname(os.path.abspath(folder))
        return [], [Problem(os.path.abspath(folder), 0, (
            f"no data.yaml or classes.txt here or in the two folders above ({above}, ...): "
            f"YOLO labels hold class numbers, and the names say which category each is; "
            f"write classes.txt beside labels/, one name a line, class 0 first"))], []
    names, problems = yolo.read_names(names_file)
    errors += [Problem(names_file, line, message) for line, message in problems]
    for where in (labels_dir, images_dir):
        if not os.path.isdir(where):
            errors.append(Problem(where, 0, "no such folder (a YOLO folder holds images/ and "
                                            "labels/, or labels beside their images)"))
    if errors:
        return [], errors, warnings

    label_files = {os.path.splitext(n)[0]: os.path.join(labels_dir, n)
                   for n in sorted(os.listdir(labels_dir))
                   if n.lower().endswith(".txt") and not yolo.is_names_file(n)}
    image_names = sorted(n for n in os.listdir(images_dir)
                         if n.lower().endswith(yolo.IMAGE_EXTENSIONS))
    if not image_names:
        subfolders = sorted(n for n in os.listdir(images_dir)
                            if os.path.isdir(os.path.join(images_dir, n)))
        shown = (f"folder {subfolders[0]} looks like a split" if len(subfolders) == 1 else
                 f"folders {', '.join(subfolders)} look like splits")
        hint = (f": its {shown}; convert one at a time, e.g. "
                f"{os.path.join(labels_dir, subfolders[0])}") if subfolders else ""
        errors.append(Problem(images_dir, 0, f"holds no images ({', '.join(yolo.IMAGE_EXTENSIONS)})"
                                             f"{hint}"))
        return [], errors, warnings
    stems = {os.path.splitext(n)[0] for n in image_names}
    for stem, label_file in label_files.items():
        if stem not in stems:
            errors.append(Problem(label_file, 0, f"no image {stem}.* in {images_dir} for it"))

    used = {}  # class -> [(label file, line)], for the names without a category
    records = []
    for name in image_names:
        image = _followed(os.path.join(images_dir, name))
        try:
            width, height = image_size(image)
        except ImageReadError as e:
            errors.append(Problem(image, 0, f"image: {e.reason}"))
            continue
        boxes, classes = [], []
        label_file = label_files.get(os.path.splitext(name)[0])
        for number, text in enumerate(_label_lines(label_file, errors), 1):
            box, why = yolo.parse_label_line(text, names, names_file)
            if why:
                errors.append(Problem(label_file, number, why))
            if box is None:
                continue
            cls, *fractions = box
            used.setdefault(cls, []).append((label_file, number))
            boxes.append(yolo.to_pixels(*fractions, width, height))
            classes.append(cls)
        records.append(ImageRecord(image_id=len(records) + 1, path=image, width=width,
                                   height=height, boxes=boxes, classes=classes))
    category_of = {}
    for cls in sorted(used):
        category_of[cls], why = categories.find(names[cls])
        if why:
            file, line = used[cls][0]
            errors.append(Problem(names_file, 0, f"class {cls}: {why} ({plural(len(used[cls]), 'box')}, "
                                                 f"the first at {file}:{line})"))
    if errors:
        return [], errors, warnings
    records = [ImageRecord(image_id=r.image_id, path=r.path, width=r.width, height=r.height,
                           boxes=r.boxes, classes=[category_of[c] for c in r.classes.tolist()])
               for r in records]
    return records, errors, warnings


def _label_lines(label_file, errors) -> list[str]:
    if label_file is None:
        return []
    with open(label_file, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        errors.append(Problem(label_file, data[:e.start].count(b"\n") + 1,
                              f"not UTF-8 (byte 0x{data[e.start]:02x})"))
        return []


def _followed(path) -> str:
    """A symbolic link's target (one step: the file --to yolo linked), else `path`."""
    if not os.path.islink(path):
        return path
    return os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))


def _files(folder, extension, errors) -> list[str]:
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(extension))
    if not names:
        errors.append(Problem(os.path.abspath(folder), 0, f"holds no {extension} files"))
    return [os.path.abspath(os.path.join(folder, n)) for n in names]


def _image_path(written, annotation_file, image_root) -> str:
    folder = image_root if image_root is not None else os.path.dirname(annotation_file)
    return os.path.normpath(os.path.join(os.path.abspath(folder), written))


def _declared_size(width, height, image, error, keys):
    """(width, height) from the file, or from the image's header when the file
    has none; None (and an error) when neither gives one or the image is missing."""
    try:
        actual = image_size(image)
    except ImageReadError as e:
        where = " (give the image folder with --image-root)" if not os.path.exists(image) else ""
        error(f"image {image}: {e.reason}{where}")
        return None
    if _is_int(width) and _is_int(height) and width > 0 and height > 0:
        if (width, height) != actual:
            error(f"{keys} say {width}x{height} but image {image} is {actual[0]}x{actual[1]}")
            return None
        return width, height
    return actual


def _box_problem(box, width, height) -> str:
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        return f"box {_show_box(box)} has no area"
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        return f"box {_show_box(box)} lies entirely outside its image ({width}x{height})"
    return ""


def _show_box(box) -> str:
    return ",".join(format_ks_number(v) for v in box)


READERS = {"ks": read_ks, "labelme": read_labelme, "voc": read_voc, "coco": read_coco,
           "yolo": read_yolo}


# ----------------------------------------------------------------------
# writing: {path: text or Link}, built whole before anything is written
# ----------------------------------------------------------------------

class Link:
    """An output that is a symbolic link to `target` (a copy where links fail)."""

    def __init__(self, target):
        self.target = target


def write_ks(records, out_path, categories: Categories, source: str, image_root=None):
    """One ks line per image (db/ks.py's `format_ks_line`), image paths
    relative to the txt file's folder; a path with a space is a problem."""
    folder = os.path.dirname(os.path.abspath(out_path))
    lines, problems = [f"# converted from {source} by python -m db.convert (format: ks-format.md)"], []
    for record in records:
        try:
            lines.append(format_ks_line(_path_under(record.path, folder), record.boxes,
                                        record.classes))
        except ValueError as e:
            problems.append(Problem(record.path, 0, f"{e}: rename the image"))
    return {os.path.abspath(out_path): "\n".join(lines) + "\n"}, problems


def _path_under(path, folder) -> str:
    """`path` relative to `folder` when it lies under it, else absolute."""
    relative = os.path.relpath(path, folder)
    return path if relative.split(os.sep)[0] == os.pardir else relative


def write_labelme(records, out_dir, categories, source, image_root=None):
    files = {}
    for record, stem in zip(records, _unique_stems(records)):
        path = os.path.abspath(os.path.join(out_dir, stem + ".json"))
        shapes = [{"label": categories.names[c], "points": [[x1, y1], [x2, y2]],
                   "group_id": None, "description": "", "shape_type": "rectangle", "flags": {}}
                  for (x1, y1, x2, y2), c in zip(_rounded(record.boxes), record.classes.tolist())]
        files[path] = json.dumps({
            "version": LABELME_VERSION, "flags": {}, "shapes": shapes,
            "imagePath": os.path.relpath(record.path, os.path.dirname(path)),
            "imageData": None, "imageHeight": record.height, "imageWidth": record.width,
        }, ensure_ascii=False, indent=2) + "\n"
    return files, []


def write_voc(records, out_dir, categories, source, image_root=None):
    files = {}
    for record, stem in zip(records, _unique_stems(records)):
        root = ET.Element("annotation")
        for tag, text in (("folder", os.path.basename(os.path.dirname(record.path))),
                          ("filename", os.path.basename(record.path)), ("path", record.path)):
            ET.SubElement(root, tag).text = text
        ET.SubElement(ET.SubElement(root, "source"), "database").text = "Unknown"
        size = ET.SubElement(root, "size")
        for tag, value in (("width", record.width), ("height", record.height), ("depth", 3)):
            ET.SubElement(size, tag).text = str(value)
        ET.SubElement(root, "segmented").text = "0"
        for box, c in zip(record.boxes.tolist(), record.classes.tolist()):
            obj = ET.SubElement(root, "object")
            for tag, text in (("name", categories.names[c]), ("pose", "Unspecified"),
                              ("truncated", "0"), ("difficult", "0")):
                ET.SubElement(obj, tag).text = text
            bndbox = ET.SubElement(obj, "bndbox")
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
                ET.SubElement(bndbox, tag).text = format_ks_number(value)
        ET.indent(root)
        path = os.path.abspath(os.path.join(out_dir, stem + ".xml"))
        files[path] = ET.tostring(root, encoding="unicode") + "\n"
    return files, []


def write_coco(records, out_path, categories, source, image_root=None):
    """Ground truth as `DetectionDB` builds it for evaluation (category id
    c + 1, as the ks reader gives), file_name relative to `image_root`
    (default: the JSON's folder)."""
    out_path = os.path.abspath(out_path)
    root = os.path.abspath(image_root or os.path.dirname(out_path))
    db = DetectionDB(records, category_names=categories.names,
                     category_ids=list(range(1, len(categories.names) + 1)),
                     has_annotations=True, source=source)
    payload = db._ground_truth_dict()
    payload["info"] = {"description": f"converted from {source} by python -m db.convert"}
    for image in payload["images"]:
        image["file_name"] = _path_under(image["file_name"], root)
    for annotation in payload["annotations"]:
        annotation["bbox"] = [round(v, 2) for v in annotation["bbox"]]
        annotation["area"] = round(annotation["area"], 2)
    return {out_path: json.dumps(payload, ensure_ascii=False) + "\n"}, []


def write_yolo(records, out_dir, categories, source, image_root=None):
    """images/ (a link to each image), labels/*.txt, data.yaml and classes.txt
    under `out_dir` (db/yolo.py); class c is the c-th category."""
    out_dir = os.path.abspath(out_dir)
    header = (f"converted from {source} by python -m db.convert: labels/<image>.txt, one box "
              f"a line, `class cx cy w h`\nas fractions of the image's width and height")
    files = {os.path.join(out_dir, "data.yaml"): yolo.data_yaml_text(categories.names, header),
             os.path.join(out_dir, "classes.txt"): "\n".join(categories.names) + "\n"}
    for record, stem in zip(records, _unique_stems(records)):
        extension = os.path.splitext(record.path)[1]
        files[os.path.join(out_dir, "images", stem + extension)] = Link(record.path)
        lines = [yolo.format_label_line(box, c, record.width, record.height)
                 for box, c in zip(record.boxes.tolist(), record.classes.tolist())]
        files[os.path.join(out_dir, "labels", stem + ".txt")] = "".join(f"{line}\n" for line in lines)
    return files, []


def _rounded(boxes):
    return [[float(format_ks_number(v)) for v in box] for box in boxes.tolist()]


def _unique_stems(records) -> list[str]:
    """Image file stems, with _2, _3, ... where two images share one, never
    another image's own stem (outputs.unique_stems)."""
    from outputs import unique_stems

    return unique_stems([os.path.splitext(os.path.basename(r.path))[0] for r in records])


WRITERS = {"ks": write_ks, "labelme": write_labelme, "voc": write_voc, "coco": write_coco,
           "yolo": write_yolo}


# ----------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------

def guess_format(path: str, reading: bool) -> str | None:
    """ks for .txt, coco for .json; for a folder being read, yolo when it
    holds labels/ or a names file, else labelme or voc by what it holds;
    None when the path does not say."""
    lower = path.lower()
    if lower.endswith(".txt") and not os.path.isdir(path):
        return "ks"
    if lower.endswith(".json") and not os.path.isdir(path):
        return "coco"
    if reading and os.path.isdir(path):
        names = [n.lower() for n in os.listdir(path)]
        if os.path.isdir(os.path.join(path, "labels")) or any(map(yolo.is_names_file, names)):
            return "yolo"
        has_json = any(n.endswith(".json") for n in names)
        has_xml = any(n.endswith(".xml") for n in names)
        if has_json != has_xml:
            return "labelme" if has_json else "voc"
    return None


def convert(source, source_format, target, target_format, category_names, image_root=None,
            overwrite=False) -> tuple[dict, list[Problem]]:
    """Read `source`, build every output file; (files written, warnings).
    `AnnotationError` (every problem, nothing written) when anything is wrong."""
    categories = Categories(category_names)
    reader_root = image_root if source_format != "ks" else None
    records, errors, warnings = READERS[source_format](source, categories, reader_root)
    if not errors:
        files, errors = WRITERS[target_format](records, target, categories, source, image_root)
    if not errors:
        # what is being converted is never replaced, --overwrite or not; a file
        # is written by renaming onto its name, which replaces the name, not
        # what a link there leads to
        read = [source, *(r.path for r in records)]
        if os.path.isdir(source):  # a folder's annotation files (labelme, VOC, YOLO labels)
            read += [os.path.join(root, name) for root, _, names in os.walk(source)
                     for name in names]
        inputs = {os.path.realpath(p) for p in read} | {_entry(p) for p in read}
        errors = [Problem(path, 0, "is one of the files being converted: choose another target")
                  for path in files if _entry(path) in inputs]
    if not errors and not overwrite:
        errors = [Problem(path, 0, "exists already: pass --overwrite to replace it")
                  for path in files if os.path.lexists(path)]
    if errors:
        raise AnnotationError(os.path.abspath(source), errors,
                              hint=f"nothing was written to {target}")
    for path, text in files.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = path + ".tmp"
        if os.path.lexists(temporary):
            os.remove(temporary)
        try:
            if isinstance(text, Link):
                _link(text.target, temporary)
            else:
                with open(temporary, "w", encoding="utf-8", newline="\n") as f:
                    f.write(text)
            os.replace(temporary, path)
        except OSError:
            if os.path.lexists(temporary):  # a full disk: no half file left behind
                os.remove(temporary)
            raise
    return {"files": list(files), "images": len(records),
            "objects": sum(r.num_objects for r in records)}, warnings


def _entry(path) -> str:
    """`path` with its folders' links resolved, not its own: the name a
    rename replaces."""
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def _link(target, path):
    try:
        os.symlink(os.path.relpath(target, os.path.dirname(path)), path)
    except (OSError, ValueError):  # no links here (Windows without the right), another drive
        shutil.copy2(target, path)


FOLDER_TARGETS = ("labelme", "voc", "yolo")  # the others are one file


def check_target(target: str, target_format: str) -> None:
    """OutputError unless `target` can be written: a folder target in itself,
    a file target in its folder (outputs.py), before anything is read."""
    if target_format in FOLDER_TARGETS:
        check_output_folder(target, "the target")
        return
    if os.path.isdir(target):
        example = "ks_train.txt" if target_format == "ks" else "instances_train.json"
        raise OutputError(f"the target {target} is a folder: give the {target_format} file to "
                          f"write, e.g. {os.path.join(target, example)}")
    check_output_file(target, "the target")


def main(argv=None) -> int:
    from config import ConfigError, load_config
    from exit_codes import PROBLEMS, REFUSED

    parser = argparse.ArgumentParser(
        prog="python -m db.convert",
        description="Convert box annotations between ks_*.txt, labelme (a folder of JSON), "
                    "Pascal VOC (a folder of XML), COCO instances JSON and YOLO (images/, "
                    "labels/*.txt, data.yaml or classes.txt). Exit status 1 when the input "
                    "has any problem (all of them are listed).")
    parser.add_argument("source", help="a ks .txt, a COCO .json, a folder of labelme .json or "
                                       "VOC .xml files, or a YOLO folder")
    parser.add_argument("target", help="the file (ks .txt, COCO .json) or folder to write")
    parser.add_argument("--from", dest="source_format", choices=FORMATS, default=None,
                        help="format of the source (default: from the path)")
    parser.add_argument("--to", dest="target_format", choices=FORMATS, default=None,
                        help="format to write (default: from the path; needed for a folder)")
    parser.add_argument("--config", default="CenterNet-52", metavar="NAME",
                        help="config whose db.category_names are the categories (default: %(default)s)")
    parser.add_argument("--names", default=None, metavar="A,B,...",
                        help="the category names in ks order, instead of the config's")
    parser.add_argument("--image-root", default=None, metavar="DIR",
                        help="folder the image paths of labelme, VOC or COCO files are relative "
                             "to (default: the annotation file's folder), or a YOLO folder's "
                             "images (default: its images/); for a COCO file written, the "
                             "folder its file_name entries are relative to")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace output files that exist already")
    args = parser.parse_args(argv)

    if not os.path.exists(args.source):
        print(f"db.convert: no such file or folder: {args.source}", file=sys.stderr)
        return 1
    source_format = args.source_format or guess_format(args.source, reading=True)
    target_format = args.target_format or guess_format(args.target, reading=False)
    if source_format is None:
        parser.error(f"cannot tell the format of {args.source}: give --from ({', '.join(FORMATS)})")
    if target_format is None:
        parser.error(f"cannot tell the format to write to {args.target}: give --to "
                     f"({', '.join(FORMATS)})")
    if source_format == target_format:
        parser.error(f"{args.source} is already {source_format}: nothing to convert")
    if args.names is not None:
        names = [n.strip() for n in args.names.split(",")]
        if not all(names) or len(set(names)) != len(names):
            parser.error(f"--names: distinct, non-empty names separated by commas, got {args.names!r}")
    else:
        try:
            names = load_config(args.config, check_data=False).db.category_names
        except ConfigError as e:
            print(f"db.convert: {e}", file=sys.stderr)
            return 1

    try:
        check_target(args.target, target_format)
    except OutputError as e:
        print(f"db.convert: {e}; nothing was written", file=sys.stderr)
        return REFUSED
    try:
        done, warnings = convert(args.source, source_format, args.target, target_format, names,
                                 image_root=args.image_root, overwrite=args.overwrite)
    except AnnotationError as e:
        print(f"db.convert: {e}", file=sys.stderr)
        return PROBLEMS
    except ImageReadError as e:  # an OSError too, but of reading
        print(f"db.convert: {e}", file=sys.stderr)
        return PROBLEMS
    except OSError as e:  # the target was checked first: a disk filling up
        print(f"db.convert: cannot write {e.filename or args.target}: {why_not_writable(e)}",
              file=sys.stderr)
        return PROBLEMS
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    where = done["files"][0] if len(done["files"]) == 1 else \
        f"{plural(len(done['files']), 'file')} in {args.target}"
    print(f"{source_format} -> {target_format}: {plural(done['images'], 'image')}, "
          f"{plural(done['objects'], 'object')}, written to {where}")
    if target_format == "ks":
        print(f"check it with: python -m db.ks {args.target} --config {args.config}"
              if args.names is None else f"check it with: python -m db.ks {args.target} "
                                         f"--categories {len(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
