"""Datasets: annotation files in, `DetectionDB` out.

    from db import load_db
    db = load_db(cfg, cfg.system.train_split)   # KS or MSCOCO per cfg.system.dataset
    db.records[0]      # ImageRecord: image_id, path, width, height, boxes, classes
    db.coco_gt()       # pycocotools COCO ground truth, for evaluation

KS (db/ks.py) reads `<data_dir>/ks_<split>.txt`, the format of ks-format.md;
MSCOCO (db/coco.py) reads `<data_dir>/annotations/instances_<split>.json`.
Check a ks file, images fully decoded, with `python -m db.ks PATH`.
Convert labelme, Pascal VOC, COCO or YOLO annotations to ks and back with
`python -m db.convert SOURCE TARGET` (db/convert.py).
"""

from .detection import DetectionDB
from .errors import AnnotationError, ImageReadError, Problem
from .image_io import image_size, read_image
from .records import ImageRecord

__all__ = ["load_db", "DetectionDB", "ImageRecord", "AnnotationError", "ImageReadError",
           "Problem", "read_image", "image_size"]


def load_db(cfg, split_name: str) -> DetectionDB:
    """The split `split_name` (e.g. cfg.system.val_split) of the config's dataset."""
    # Readers are imported here, not at the top, so that `python -m db.ks`
    # does not find db.ks already imported by the package (a runpy warning).
    if cfg.system.dataset == "KS":
        from .ks import load_ks_db
        return load_ks_db(cfg, split_name)
    if cfg.system.dataset == "MSCOCO":
        from .coco import load_coco_db
        return load_coco_db(cfg, split_name)
    raise ValueError(f"{cfg.path}: system.dataset: no reader for {cfg.system.dataset!r} "
                     f"(KS or MSCOCO)")
