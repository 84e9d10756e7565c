"""How large each page goes through the network at test time: the one place
test.py, demo.py, grade.py and the ONNX path (all through
test/kp_detection.detect_images) choose the scales.

`db.test_scale_mode` "objects" (the default): the scale comes from the page
itself. A first look runs the whole detector once with the page resized so
that its long side is `db.first_look_side` input pixels; the boxes it finds
scoring at least `db.first_look_threshold` give the page's median object
height, and the page is then tested at the scale that brings that height to
`db.test_object_height` input pixels (the height objects had at the network's
input in training), times each of `db.test_scales` (so `[1]` is one scale and
the paper's multi-scale `[0.6, 1, 1.2, 1.5, 1.8]` is taken around it). A photo
at 12 megapixels and the same page at 700 pixels go through the network at the
same size. Where the first look finds fewer than `FIRST_LOOK_MIN_OBJECTS`
boxes (an empty page), the page is tested at the first look's scale.

`db.test_scale_mode` "pixels": `db.test_scales` multiply the stored pixels,
exactly as given (the original CenterNet; for research runs that compare
scales, and for MSCOCO, whose objects have no typical size on a picture).

In "objects" mode no input side exceeds `db.test_max_side` pixels (a page of
tiny objects at a large size would otherwise need gigabytes).
"""

from __future__ import annotations

import math

import numpy as np

# The first look must find at least this many boxes for their median height
# to set the scale: one or two boxes on an empty page are as likely noise.
FIRST_LOOK_MIN_OBJECTS = 3

# final detection columns used here (test/merge.py FINAL_COLUMNS)
_Y1, _Y2, _SCORE = 1, 3, 4


def looks_first(cfg) -> bool:
    """Whether each page's scales come from a first look at it."""
    return cfg.db.test_scale_mode == "objects"


def first_look_scale(height: int, width: int, cfg) -> float:
    """The scale of the first look at a page of `height` x `width` pixels:
    its long side becomes db.first_look_side input pixels."""
    return _capped(cfg.db.first_look_side / max(height, width), height, width, cfg)


def object_height(detections: np.ndarray, cfg) -> float | None:
    """The median height, in image pixels, of the first look's boxes (N, 6)
    scoring at least db.first_look_threshold; None with fewer than
    FIRST_LOOK_MIN_OBJECTS of them."""
    found = detections[detections[:, _SCORE] >= cfg.db.first_look_threshold]
    if len(found) < FIRST_LOOK_MIN_OBJECTS:
        return None
    return float(np.median(found[:, _Y2] - found[:, _Y1]))


def page_scales(height: int, width: int, cfg, first_look: np.ndarray | None = None,
                look_scale: float | None = None) -> list[float]:
    """The scales a page of `height` x `width` pixels is tested at.

    "pixels" mode: db.test_scales. "objects" mode: the scale that brings the
    median height of `first_look`'s boxes (the final detections of the first
    look, (N, 6) in image pixels, taken at `look_scale`) to
    db.test_object_height, times each of db.test_scales, each capped by
    db.test_max_side; the first look's own scale when it found too few boxes.
    """
    if not looks_first(cfg):
        return list(cfg.db.test_scales)
    if look_scale is None:
        look_scale = first_look_scale(height, width, cfg)
    measured = None if first_look is None else object_height(first_look, cfg)
    base = look_scale if measured is None or measured <= 0 else cfg.db.test_object_height / measured
    return [_capped(base * s, height, width, cfg) for s in cfg.db.test_scales]


def keeps_first_look(scales: list[float], look_scale: float, cfg) -> bool:
    """Whether the first look's detections can stand as the page's final
    ones: the page is tested at one scale, without the flip, within a factor
    db.first_look_reuse of the first look's."""
    if len(scales) != 1 or cfg.db.test_flip or cfg.db.first_look_reuse <= 1:
        return False
    return abs(math.log(scales[0] / look_scale)) <= math.log(cfg.db.first_look_reuse)


def _capped(scale: float, height: int, width: int, cfg) -> float:
    # and at least one pixel on the short side, however large the objects
    return max(min(scale, cfg.db.test_max_side / max(height, width)), 1 / min(height, width))


# db.test_object_height may be this far from the training objects' height
# before train.py says so: the network sees objects within about 1.5x of
# their median in training (the crop scales and the pages' own sizes).
HEIGHT_AGREEMENT = 1.25


def object_height_note(trained_height: float | None, cfg) -> str | None:
    """A line for train.py when db.test_object_height is not the height
    objects have at the network's input in training (`trained_height`,
    sample/kp_detection.object_height_at_input); None when they agree, in
    "pixels" mode, or without objects."""
    if not looks_first(cfg) or not trained_height:
        return None
    wanted = cfg.db.test_object_height
    if max(wanted, trained_height) / min(wanted, trained_height) <= HEIGHT_AGREEMENT:
        return None
    return (f"warning: the training objects are {trained_height:.1f} px tall at the network's "
            f"input (median over the crop scales db.rand_scales), but testing brings each "
            f"page's objects to db.test_object_height = {wanted:g} px; set it to about "
            f"{trained_height:.0f} so pages are tested at the size the network learned")
