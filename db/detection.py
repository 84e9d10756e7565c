"""`DetectionDB`: what every reader returns, whatever the file format.

A split of a dataset as records (`ImageRecord`), its categories and, for
evaluation, its ground truth as a pycocotools `COCO` object built in memory
(no file is written). The readers (`db/ks.py`, `db/coco.py`) fill it;
training, testing and evaluation use only this interface.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Sequence

import numpy as np

from .errors import Problem, plural
from .records import ImageRecord

logger = logging.getLogger(__name__)

# Warnings printed when a split loads; the rest are counted (the check
# command `python -m db.ks` lists them all).
SHOWN_WARNINGS = 20


class DetectionDB:
    """One split: records, categories, ground truth.

    records          list[ImageRecord], in file order
    category_names   one name per 0-based class
    category_ids     the dataset's category id of each 0-based class (what a
                     COCO results json holds): KS c + 1, MSCOCO the file's ids
    has_annotations  False for an image list without boxes (a test split)
    source           the annotation file
    warnings         list[Problem] found while reading (e.g. clipped boxes)
    """

    def __init__(self, records: Sequence[ImageRecord], category_names: Sequence[str],
                 category_ids: Sequence[int], has_annotations: bool, source: str,
                 split: str = "", dataset: str = "", warnings: Sequence[Problem] = ()):
        if len(category_names) != len(category_ids):
            raise ValueError(f"{source}: {len(category_names)} category names but "
                             f"{len(category_ids)} category ids")
        self.records = list(records)
        self.category_names = list(category_names)
        self.category_ids = [int(i) for i in category_ids]
        self.has_annotations = bool(has_annotations)
        self.source = source
        self.split = split
        self.dataset = dataset
        self.warnings = list(warnings)
        self._coco_gt = None
        self._by_image_id = None
        self._warnings_logged = False

    @property
    def categories(self) -> int:
        return len(self.category_ids)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> ImageRecord:
        return self.records[index]

    def __iter__(self):
        return iter(self.records)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.source!r}, images={len(self)}, "
                f"objects={int(self.object_counts().sum())}, categories={self.categories})")

    def record(self, image_id: int) -> ImageRecord:
        """The record of a COCO image id."""
        if self._by_image_id is None:
            self._by_image_id = {r.image_id: r for r in self.records}
        return self._by_image_id[image_id]

    # --- object counts -------------------------------------------------

    def object_counts(self) -> np.ndarray:
        """Objects on each image, (num_images,) int64, in record order."""
        return np.array([r.num_objects for r in self.records], dtype=np.int64)

    def max_objects(self) -> tuple[int, ImageRecord | None]:
        """(count, record) of the image with the most objects (the first, on ties)."""
        if not self.records:
            return 0, None
        counts = self.object_counts()
        index = int(np.argmax(counts))
        return int(counts[index]), self.records[index]

    def densest(self, n: int = 5, above: int = -1) -> list[tuple[int, ImageRecord]]:
        """Up to `n` (count, record) of the images with the most objects, most
        first, only those with more than `above` objects: e.g.
        `db.densest(5, above=cfg.db.max_tag_len)` names the pages over the limit."""
        counts = self.object_counts()
        order = np.argsort(-counts, kind="stable")[:n]
        return [(int(counts[i]), self.records[i]) for i in order if counts[i] > above]

    # --- ground truth for evaluation -----------------------------------

    def coco_gt(self):
        """The ground truth as a pycocotools `COCO` object (built once, cached)."""
        if not self.has_annotations:
            raise ValueError(f"{self.source}: split {self.split!r} has no annotations, "
                             f"so there is nothing to evaluate against")
        if self._coco_gt is None:
            from pycocotools.coco import COCO
            coco = COCO()
            coco.dataset = self._ground_truth_dict()
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                coco.createIndex()
            self._coco_gt = coco
        return self._coco_gt

    def _ground_truth_dict(self) -> dict:
        """COCO-format ground truth built from the records (boxes as clipped)."""
        images, annotations = [], []
        for record in self.records:
            images.append({"id": record.image_id, "file_name": record.path,
                           "width": record.width, "height": record.height})
            for box, cls in zip(record.boxes.tolist(), record.classes.tolist()):
                x1, y1, x2, y2 = box
                width, height = x2 - x1, y2 - y1
                annotations.append({
                    "id": len(annotations) + 1, "image_id": record.image_id,
                    "category_id": self.category_ids[cls],
                    "bbox": [x1, y1, width, height], "area": width * height,
                    "iscrowd": 0})
        categories = [{"id": cid, "name": name}
                      for cid, name in zip(self.category_ids, self.category_names)]
        return {"info": {"description": f"ground truth of {self.source}"}, "licenses": [],
                "images": images, "annotations": annotations, "categories": categories}

    # --- warnings ------------------------------------------------------

    def log_warnings(self, shown: int = SHOWN_WARNINGS) -> None:
        """Print the reader's warnings, the first `shown` and a count; only the
        first call prints (the readers call it when a split loads)."""
        if not self.warnings or self._warnings_logged:
            return
        self._warnings_logged = True
        lines = [f"{self.source}: {plural(len(self.warnings), 'warning')}:"]
        lines += [f"  {w}" for w in self.warnings[:shown]]
        if len(self.warnings) > shown:
            lines.append(f"  ... and {len(self.warnings) - shown:,} more")
        logger.warning("\n".join(lines))

    def __getstate__(self):
        # DataLoader workers get a copy of the dataset: leave the ground truth
        # (large, and only the evaluator needs it) behind.
        state = dict(self.__dict__)
        state["_coco_gt"] = None
        return state
