"""The MSCOCO reader, in the original CornerNet/CenterNet data layout:

    <data_dir>/annotations/instances_<split>.json
    <data_dir>/images/<split>/<file_name>

(split names as the configs give them: trainval2014, minival2014,
testdev2017). Category ids, sorted ascending, map to the contiguous classes
0..C-1; `category_ids` maps back for results files. The file's number of
categories must equal db.categories. Crowd annotations (`iscrowd: 1`) are
left out of the training records; `coco_gt()` is the json file itself, so
evaluation scores exactly as the official evaluation does (crowd regions
included). A file without "annotations" (test-dev's image_info) is a split
without annotations.

Like the ks reader (db/ks.py), it reports every problem in one
`AnnotationError`. Image sizes come from the json, and image files are only
checked to exist (decoding 120k images at every start would take minutes).
The official boxes are trusted more than a user's: a box without area, or
outside its image, is dropped or clipped with a warning instead of stopping.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from config import is_int as _is_int

from .detection import DetectionDB
from .errors import AnnotationError, ImageTooLargeError, Problem, split_keys
from .image_io import check_pixels
from .records import ImageRecord, clip_to_image

# Above this many images, a split whose image files are all missing gets one
# problem (the folder is wrong) instead of one per image.
_LIST_EACH_MISSING = 20


class CocoDB(DetectionDB):
    """A DetectionDB whose ground truth is its json file, read again for evaluation."""

    def _ground_truth_dict(self) -> dict:
        return _read_json(self.source)


def coco_paths(cfg, split: str) -> tuple[str, str]:
    """(annotation file, image folder) of a split."""
    data_dir = cfg.system.data_dir
    return (os.path.join(data_dir, "annotations", f"instances_{split}.json"),
            os.path.join(data_dir, "images", split))


def load_coco_db(cfg, split: str) -> CocoDB:
    """The split `split` of the config's MSCOCO data."""
    annotation_path, image_dir = coco_paths(cfg, split)
    if not os.path.isfile(annotation_path):
        raise FileNotFoundError(
            f"no annotation file {annotation_path} for split {split!r}: set system.data_dir "
            f"(now {cfg.system.data_dir}) to the folder holding annotations/instances_<split>.json "
            f"and images/<split>/, or the split name ({split_keys(cfg, split)}) in "
            f"{cfg.path or 'the config'}")
    return load_coco(annotation_path, image_dir, cfg.db.categories,
                     config_names=cfg.db.category_names, split=split,
                     max_pixels=cfg.db.max_image_pixels)


def load_coco(annotation_path: str, image_dir: str, categories: int,
              config_names: list[str] | None = None, split: str = "",
              max_pixels: int | None = None) -> CocoDB:
    """Read an instances json into a CocoDB; `AnnotationError` listing every problem.

    An image larger than `max_pixels` (db.max_image_pixels; default its
    schema default), by the json's width and height, is one of them."""
    annotation_path = os.path.abspath(annotation_path)
    data = _read_json(annotation_path)
    report = _Report(annotation_path)
    _check_top_level(data, report)
    category_ids, category_names = _read_categories(data["categories"], categories, config_names,
                                                    report)
    images = _read_images(data["images"], max_pixels, report)
    class_of = {cid: c for c, cid in enumerate(category_ids)}
    boxes, classes = _read_annotations(data.get("annotations") or [], images, class_of, report)
    report.errors += _missing_images(annotation_path, image_dir, list(images.values()))
    if report.errors:
        raise AnnotationError(annotation_path, report.errors)

    records = [ImageRecord(image_id=image_id, path=os.path.join(image_dir, image["file_name"]),
                           width=image["width"], height=image["height"],
                           boxes=np.array(boxes[image_id], np.float32).reshape(-1, 4),
                           classes=np.array(classes[image_id], np.int64))
               for image_id, image in images.items()]
    db = CocoDB(records, category_names=category_names, category_ids=category_ids,
                has_annotations="annotations" in data, source=annotation_path, split=split,
                dataset="MSCOCO", warnings=report.warnings)
    db.log_warnings()
    return db


class _Report:
    """The problems of one annotation file, each naming its entry."""

    def __init__(self, path: str):
        self.path = path
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, message: str, where: str = "") -> None:
        self.errors.append(Problem(self.path, 0, message, where))

    def warn(self, message: str, where: str = "") -> None:
        self.warnings.append(Problem(self.path, 0, message, where))


def _check_top_level(data, report: _Report) -> None:
    """An object with "images" and "categories" lists, or AnnotationError at once."""
    if not isinstance(data, dict):
        report.error("the top level must be an object with images and categories")
    else:
        for key in ("images", "categories"):
            if not isinstance(data.get(key), list):
                report.error(f'no "{key}" list')
    if report.errors:
        raise AnnotationError(report.path, report.errors)


def _read_categories(entries: list, categories: int, config_names, report: _Report):
    """(category ids sorted ascending, their names): class c is the c-th id."""
    names_by_id = {}
    for index, category in enumerate(entries):
        where = f"categories[{index}]"
        if not isinstance(category, dict) or not _is_int(category.get("id")):
            report.error("a category needs an integer id", where)
        elif category["id"] in names_by_id:
            report.error(f"category id {category['id']} appears twice", where)
        else:
            names_by_id[category["id"]] = str(category.get("name", f"category_{category['id']}"))
    category_ids = sorted(names_by_id)
    category_names = [names_by_id[cid] for cid in category_ids]
    if len(category_ids) != categories:
        report.error(f"has {len(category_ids)} categories but the config's db.categories is "
                     f"{categories}: set db.categories (and db.category_names) to match the file")
    elif (config_names and config_names != category_names
          and config_names != [f"class_{c}" for c in range(categories)]):
        report.warn("db.category_names differ from the file's category names; the file's are used")
    return category_ids, category_names


def _read_images(entries: list, max_pixels: int | None, report: _Report) -> dict:
    """The usable image entries by id."""
    images = {}
    for index, image in enumerate(entries):
        where = f"images[{index}]"
        if not isinstance(image, dict):
            report.error("an image must be an object", where)
            continue
        problems = []
        if not _is_int(image.get("id")):
            problems.append("an integer id")
        if not isinstance(image.get("file_name"), str) or not image.get("file_name"):
            problems.append("a file_name")
        if not (_is_int(image.get("width")) and _is_int(image.get("height"))
                and image["width"] > 0 and image["height"] > 0):
            problems.append("a positive integer width and height")
        if problems:
            report.error(f"an image needs {', '.join(problems)}", where)
        elif image["id"] in images:
            report.error(f"image id {image['id']} appears twice", where)
        else:
            try:
                check_pixels(image["file_name"], image["width"], image["height"], max_pixels)
            except ImageTooLargeError as e:
                report.error(f"image {image['file_name']} is too large: {e.reason}", where)
                continue
            images[image["id"]] = image
    return images


def _read_annotations(entries: list, images: dict, class_of: dict, report: _Report):
    """Each image's boxes (x1, y1, x2, y2, clipped to the image) and classes, by image id;
    crowd regions left out."""
    boxes = {image_id: [] for image_id in images}
    classes = {image_id: [] for image_id in images}
    for index, annotation in enumerate(entries):
        where = f"annotations[{index}]" if not isinstance(annotation, dict) else \
            f"annotations[{index}], id {annotation.get('id')}"
        if not isinstance(annotation, dict):
            report.error("an annotation must be an object", where)
            continue
        image = images.get(annotation.get("image_id"))
        if image is None:
            report.error(f"image_id {annotation.get('image_id')!r} is not in images", where)
            continue
        if annotation.get("category_id") not in class_of:
            report.error(f"category_id {annotation.get('category_id')!r} is not in categories",
                         where)
            continue
        bbox = annotation.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_finite(v) for v in bbox)):
            report.error(f"bbox must be [x, y, width, height] of finite numbers, got {bbox!r}",
                         where)
            continue
        if annotation.get("iscrowd", 0):
            continue  # a crowd region: not one object to learn; the evaluator ignores matches on it
        x, y, w, h = (float(v) for v in bbox)
        width, height = image["width"], image["height"]
        if w <= 0 or h <= 0:
            report.warn(f"bbox {bbox} has no area: left out", where)
            continue
        box, clipped = clip_to_image([x, y, x + w, y + h], width, height)
        if box is None:
            report.warn(f"bbox {bbox} lies outside its image ({width}x{height}): left out", where)
            continue
        if clipped:
            report.warn(f"bbox {bbox} extends past its image ({width}x{height}): clipped", where)
        boxes[image["id"]].append(box)
        classes[image["id"]].append(class_of[annotation["category_id"]])
    return boxes, classes


def _missing_images(annotation_path, image_dir, images) -> list[Problem]:
    paths = [os.path.join(image_dir, image["file_name"]) for image in images]
    # Threads: a stat is I/O, and slow on network drives.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        exists = list(pool.map(os.path.isfile, paths))
    missing = [(image, path) for image, path, ok in zip(images, paths, exists) if not ok]
    if len(missing) == len(images) > _LIST_EACH_MISSING:
        return [Problem(annotation_path, 0, f"none of its {len(images):,} image files exist "
                                            f"under {image_dir} (e.g. {missing[0][1]}): is "
                                            f"system.data_dir right?")]
    return [Problem(annotation_path, 0, f"image file {path} does not exist",
                    f"image id {image['id']}") for image, path in missing]


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise AnnotationError(path, [Problem(path, e.lineno, f"not valid JSON: {e.msg} "
                                                             f"(column {e.colno})")]) from None
    except UnicodeDecodeError as e:
        raise AnnotationError(path, [Problem(path, 0, f"not UTF-8 ({e.reason} at byte "
                                                      f"{e.start})")]) from None


def _is_finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
