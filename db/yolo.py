"""The YOLO box format (darknet, labelImg, CVAT, Label Studio, Roboflow,
ultralytics): what a folder holds and how its lines read; db/convert.py
turns it into records and back.

A folder of YOLO boxes:

    data.yaml or classes.txt     the class names, class 0 first
    images/<name>.<ext>          the images (.jpg, .png, ...)
    labels/<name>.txt            one line per box: `class cx cy w h`

`class` is the 0-based index into the names; `cx cy` the box's centre, `w h`
its width and height, all four fractions of the image's width and height
(0..1). An image without a label file holds no objects. Also read: labels
beside their images in one folder (labelImg), and one split of the
ultralytics layout (`root/labels/train` with `root/images/train`, the names
in `root/data.yaml`): the names file is looked for in the folder given and
up to two folders above it.

data.yaml is read without PyYAML (not a dependency of this project), by the
subset of YAML that labelling tools write for it: top-level `key: value`
lines, of which only `names` (and `nc`, checked against it) are read, the
names as a flow list `[add, sub]`, block list lines `- add`, a flow mapping
`{0: add, 1: sub}` or block mapping lines `0: add`; each name plain, 'single'
or "double" quoted; `#` comments. Anchors, tags, multi-line names and nested
values are not read (`YAML_SUBSET` says so in the error). classes.txt holds
one name a line.
"""

from __future__ import annotations

import json
import math
import os
import re

NAMES_FILES = ("data.yaml", "classes.txt")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DECIMALS = 6  # written coordinates: 1e-6 of a side, under 0.002 px on a 1600 px page

YAML_SUBSET = ("this reader (PyYAML is not a dependency) takes `names:` as a list "
               "(`names: [add, sub]`, or `- add` lines below it) or an index mapping "
               "(`names: {0: add, 1: sub}`, or `0: add` lines below it), each name plain, "
               "'single' or \"double\" quoted, `#` comments; no anchors, tags, multi-line "
               "names or nested values")

_FIELDS = ("class", "cx", "cy", "w", "h")
_BLOCK_ITEM = re.compile(r"-(\s+|$)")
_MAPPING_ITEM = re.compile(r"(\S[^:]*?)\s*:(\s+|$)")
_PLAIN_NAME = re.compile(r"[^\W\d][\w.\-+]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def folders(folder: str, image_root: str | None = None) -> tuple[str, str]:
    """(labels folder, images folder) of a YOLO folder given by the user:
    `folder/labels` and `folder/images` when `folder` holds labels/; else,
    for a path through a `labels` or `images` folder, the path itself and its
    twin with the other word (ultralytics' rule); else `folder` for both
    (labelImg). `image_root` replaces the images folder."""
    folder = os.path.abspath(folder)
    if os.path.isdir(os.path.join(folder, "labels")):
        labels, images = os.path.join(folder, "labels"), os.path.join(folder, "images")
    else:
        parts = folder.split(os.sep)
        labels = images = folder
        for i in range(len(parts) - 1, -1, -1):
            if parts[i] in ("labels", "images"):
                twin = "images" if parts[i] == "labels" else "labels"
                other = os.sep.join(parts[:i] + [twin] + parts[i + 1:])
                labels, images = (folder, other) if parts[i] == "labels" else (other, folder)
                break
    if image_root is not None:
        images = os.path.abspath(image_root)
    return labels, images


def find_names_file(folder: str) -> str | None:
    """data.yaml (first) or classes.txt in `folder` or up to two folders above it."""
    here = os.path.abspath(folder)
    for _ in range(3):
        for name in NAMES_FILES:
            if os.path.isfile(os.path.join(here, name)):
                return os.path.join(here, name)
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return None


def is_names_file(path: str) -> bool:
    return os.path.basename(path) in NAMES_FILES


# ----------------------------------------------------------------------
# the class names: {index: name} and the problems, as (line, message)
# ----------------------------------------------------------------------

def read_names(path: str) -> tuple[dict[int, str], list[tuple[int, str]]]:
    """The names of data.yaml or classes.txt as {class index: name}, and
    the problems found, each (1-based line or 0, message)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        return {}, [(0, f"not UTF-8 ({e.reason} at byte {e.start}): save the file as UTF-8")]
    if path.endswith(".txt"):
        return _names_txt(text)
    return _names_yaml(text)


def _names_txt(text: str):
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    names, problems = {}, []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            problems.append((number, "empty line: classes.txt holds one class name a line, "
                                     "class 0 first (a blank line would shift every class after it)"))
        names[number - 1] = line.strip()
    if not lines:
        problems.append((0, "holds no class names (one a line, class 0 first)"))
    return names, problems


def _names_yaml(text: str):
    lines = [(number, _uncomment(line)) for number, line in enumerate(text.splitlines(), 1)]
    start = next((i for i, (_, line) in enumerate(lines) if re.match(r"names\s*:", line)), None)
    if start is None:
        return {}, [(0, f"no `names:` key at the start of a line; {YAML_SUBSET}")]
    number, line = lines[start]
    value = line.split(":", 1)[1].strip()
    try:
        if value:
            names = _flow_names(value, lines[start + 1:], number)
        else:
            names = _block_names(lines[start + 1:], number)
    except _YamlError as e:
        return {}, [(e.line, f"cannot read the class names: {e}; {YAML_SUBSET}")]
    problems = []
    if not names:
        problems.append((number, "`names:` lists no class"))
    count = next((line.split(":", 1)[1].strip() for _, line in lines
                  if re.match(r"nc\s*:", line)), None)
    if count is not None and count != str(len(names)) and names:
        problems.append((0, f"nc is {count} but `names:` lists {len(names)} classes"))
    return names, problems


class _YamlError(ValueError):
    def __init__(self, line, message):
        super().__init__(message)
        self.line = line


def _uncomment(line: str) -> str:
    """The line without its `#` comment (one outside quotes, at the start or after a blank)."""
    quote = None
    for i, character in enumerate(line):
        if quote:
            if character == quote:
                quote = None
        elif character in "'\"":
            quote = character
        elif character == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _scalar(text: str, line: int) -> str:
    text = text.strip()
    if not text:
        raise _YamlError(line, "an empty name")
    if text[0] == '"':
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise _YamlError(line, f"{text} is not one double-quoted name") from None
        if not isinstance(value, str):
            raise _YamlError(line, f"{text} is not one double-quoted name")
        return value
    if text[0] == "'":
        if len(text) < 2 or text[-1] != "'" or "'" in text[1:-1].replace("''", ""):
            raise _YamlError(line, f"{text} is not one single-quoted name")
        return text[1:-1].replace("''", "'")
    if text[0] in "&*!":
        raise _YamlError(line, f"{text!r}: anchors (&), aliases (*) and tags (!) are not read")
    if text[0] in "[]{}|>%@`," or text.startswith("- ") or re.search(r":(\s|$)", text):
        raise _YamlError(line, f"{text!r} is not a plain name")
    return text


def _index(text: str, line: int) -> int:
    text = text.strip().strip("'\"")
    if not re.fullmatch(r"\d+", text):
        raise _YamlError(line, f"the key {text!r} is not a class index (0, 1, ...)")
    return int(text)


def _split_flow(body: str, line: int) -> list[str]:
    """The items of a flow collection's inside, split at commas outside quotes."""
    items, current, quote = [], "", None
    for character in body:
        if quote:
            quote = None if character == quote else quote
        elif character in "'\"":
            quote = character
        elif character in "[]{}":
            raise _YamlError(line, "nested collections")
        elif character == ",":
            items.append(current)
            current = ""
            continue
        current += character
    if quote:
        raise _YamlError(line, "a quote that does not close")
    items.append(current)
    if items and not items[-1].strip():
        items.pop()  # a trailing comma
    return items


def _flow_names(value: str, following, line: int) -> dict[int, str]:
    opening = value[0]
    if opening in "&*!":
        raise _YamlError(line, f"`names: {value}`: anchors (&), aliases (*) and tags (!) are not read")
    closing = {"[": "]", "{": "}"}.get(opening)
    if closing is None:
        raise _YamlError(line, f"`names: {value}` is one value, not a list or a mapping")
    text = value
    for _, more in following:  # a flow collection may go on over the next lines
        if text.rstrip().endswith(closing):
            break
        text += " " + more.strip()
    if not text.rstrip().endswith(closing):
        raise _YamlError(line, f"the {opening} of `names:` is not closed by {closing}")
    items = _split_flow(text.strip()[1:-1], line)
    if opening == "[":
        return {i: _scalar(item, line) for i, item in enumerate(items)}
    names = {}
    for item in items:
        if ":" not in item:
            raise _YamlError(line, f"{item.strip()!r} is not `index: name`")
        key, name = item.split(":", 1)
        _add(names, _index(key, line), _scalar(name, line), line)
    return names


def _block_names(following, line: int) -> dict[int, str]:
    names, kind, indent = {}, None, None
    for number, text in following:
        if not text.strip():
            continue
        depth = len(text) - len(text.lstrip(" "))
        body = text.strip()
        if "\t" in text[:depth + 1]:
            raise _YamlError(number, "a tab in the indentation")
        if indent is None:
            if depth == 0 and not _BLOCK_ITEM.match(body):
                break  # the next top-level key: `names:` was empty
            indent = depth
        if depth < indent or (depth == 0 and not _BLOCK_ITEM.match(body)):
            break  # back at the top level
        if depth > indent:
            raise _YamlError(number, "a nested value under a name")
        item = _BLOCK_ITEM.match(body)
        this = "list" if item else "mapping"
        if kind not in (None, this):
            raise _YamlError(number, "list items and `index: name` lines mixed")
        kind = this
        if item:
            _add(names, len(names), _scalar(body[item.end():], number), number)
            continue
        pair = _MAPPING_ITEM.match(body)
        if pair is None:
            raise _YamlError(number, f"{body!r} is not `- name` or `index: name`")
        _add(names, _index(pair.group(1), number), _scalar(body[pair.end():], number), number)
    return names


def _add(names, index, name, line):
    if index in names:
        raise _YamlError(line, f"class {index} is named twice")
    names[index] = name


def data_yaml_text(names: list[str], header: str, train: str = "images",
                   val: str = "images") -> str:
    """A data.yaml for ultralytics and this reader: train and val (default
    the images/ beside it; no `path:`, so that ultralytics takes the file's
    folder), nc, names as an index mapping."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"train: {_yaml_name(train)}", f"val: {_yaml_name(val)}", f"nc: {len(names)}",
              "names:"]
    lines += [f"  {i}: {_yaml_name(name)}" for i, name in enumerate(names)]
    return "\n".join(lines) + "\n"


def _yaml_name(name: str) -> str:
    if _PLAIN_NAME.fullmatch(name) and name.lower() not in _YAML_WORDS:
        return name
    return json.dumps(name, ensure_ascii=False)


# ----------------------------------------------------------------------
# label lines
# ----------------------------------------------------------------------

def parse_label_line(text: str, names: dict[int, str], names_file: str):
    """One line of a labels/*.txt file: ((class, cx, cy, w, h), "") or (None,
    why) for a bad line, (None, "") for a blank one."""
    fields = text.split()
    if not fields:
        return None, ""
    if len(fields) != 5:
        hint = ""
        if len(fields) > 6 and len(fields) % 2 == 1:
            hint = " (a segmentation polygon? export boxes)"
        elif len(fields) == 6:
            hint = " (a 6th number, a score? a label holds none)"
        return None, (f"has {len(fields)} numbers; a YOLO box is `class cx cy w h` (5 numbers, "
                      f"the last four fractions of the image's size){hint}")
    values, reasons = [], []
    for name, field in zip(_FIELDS, fields):
        try:
            value = float(field)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value):
            reasons.append(f'{name} "{field}" is not a finite number')
        values.append(value)
    if reasons:
        return None, "; ".join(reasons)
    c, cx, cy, w, h = values
    shown = os.path.basename(names_file)
    if not c.is_integer() or c < 0:
        reasons.append(f'class "{fields[0]}" is not a class index (0, 1, ...)')
    elif int(c) not in names:
        reasons.append(f"class {int(c)} is out of range: {shown} names "
                       f"{_show_indices(names)}")
    outside = [f"{name} {field}" for name, field, value in zip(_FIELDS[1:], fields[1:], values[1:])
               if not 0 <= value <= 1]
    if outside:
        reasons.append(f"{', '.join(outside)} outside 0..1: YOLO coordinates are fractions of "
                       f"the image's width and height (pixels? divide by the image's size)")
    elif w == 0 or h == 0:
        reasons.append(f"{'w' if w == 0 else 'h'} is 0: the box has no area")
    if reasons:
        return None, "; ".join(reasons)
    return (int(c), cx, cy, w, h), ""


def _show_indices(names: dict[int, str]) -> str:
    indices = sorted(names)
    if indices == list(range(len(indices))):
        return f"{len(indices)} classes (0..{len(indices) - 1})"
    return "the classes " + ", ".join(map(str, indices))


def to_pixels(cx, cy, w, h, width: int, height: int) -> list[float]:
    """A YOLO box as x1, y1, x2, y2 in pixels of a width x height image."""
    return [(cx - w / 2) * width, (cy - h / 2) * height,
            (cx + w / 2) * width, (cy + h / 2) * height]


def format_label_line(box, cls: int, width: int, height: int) -> str:
    """x1, y1, x2, y2 in pixels (inside the image) -> `class cx cy w h`."""
    x1, y1, x2, y2 = (float(v) for v in box)
    values = [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width,
              (y2 - y1) / height]
    return " ".join([str(int(cls))] + [f"{min(max(v, 0.0), 1.0):.{DECIMALS}f}" for v in values])
