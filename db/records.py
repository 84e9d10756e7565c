"""`ImageRecord`: one annotated image, the unit every reader produces.

Coordinates are image pixels of the image as stored (EXIF orientation
ignored), boxes `x1, y1, x2, y2` with `x2`/`y2` the right/bottom edge, as in
ks-format.md; classes are 0-based. The sampler and the evaluator start from
these; each later change of scale is theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One image and its objects.

    The arrays are read-only: a record is shared by every epoch (and by
    every DataLoader worker started with fork), so code that transforms
    boxes must work on a copy (`record.boxes.copy()`).
    """

    image_id: int          # COCO image id: 1-based file order for KS
    path: str              # absolute
    width: int
    height: int
    boxes: np.ndarray      # (N, 4) float32: x1, y1, x2, y2 in image pixels
    classes: np.ndarray    # (N,) int64: 0-based category
    source_line: int = 0   # line in the annotation file (0: not a line)

    def __post_init__(self):
        boxes = np.array(self.boxes, dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        classes = np.array(self.classes, dtype=np.int64).reshape(-1)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"ImageRecord {self.path}: boxes must be (N, 4), got {boxes.shape}")
        if len(classes) != len(boxes):
            raise ValueError(f"ImageRecord {self.path}: {len(boxes)} boxes but "
                             f"{len(classes)} classes")
        boxes.setflags(write=False)
        classes.setflags(write=False)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "classes", classes)

    @property
    def num_objects(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"ImageRecord(image_id={self.image_id}, path={self.path!r}, "
                f"size={self.width}x{self.height}, objects={self.num_objects}, "
                f"line={self.source_line})")


def clip_to_image(box, width: float, height: float):
    """(box, clipped): `box` (x1, y1, x2, y2, pixel edges) cut to its image
    (0..width, 0..height); box is None when it lies entirely outside the
    image, and `box` itself when it lies inside."""
    x1, y1, x2, y2 = box
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        return None, False
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        return [max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))], True
    return box, False
