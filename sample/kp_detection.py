"""Training examples of CenterNet (keypoint triplets): one image and its boxes
become the network input and the targets of every head.

Duan et al., "CenterNet: Keypoint Triplets for Object Detection", ICCV 2019,
built on CornerNet (Law & Deng, ECCV 2018): a box is its top-left corner, its
bottom-right corner and its centre; each is a peak of a per-class heatmap at
the output resolution (gaussian bumps, CornerNet's radius, the centre's bump
wider: sigma = diameter / 5 instead of / 6), a sub-pixel offset and, for the
corners, a flat index where the embedding heads are read.

    example = kp_detection(image, record, cfg, rng, augment=True)

The steps, each switchable in the config (`db.*`):

1. crop. `rand_crop` with `augment`: a window of input_size * s (s drawn from
   `rand_scales`) around a random centre kept `border` pixels from the image
   edges (halved for small images, as CornerNet). Without `rand_crop`: the
   whole image, zero-padded to a square around its centre.
   `augment=False` (validation) is deterministic: with `rand_crop` it takes
   the window of exactly input_size (scale 1) centred on the image, the scale
   training crops vary around; without `rand_crop` the padded square.
2. resize the window to input_size; boxes follow, are clipped to the input
   and dropped when no area is left.
3. flip (`rand_flip`, probability 1/2). Boxes use the exclusive right edge
   (a box covers x1 <= x < x2, width x2 - x1), so mirroring an image of width
   W maps x to W - x exactly and swaps x1 and x2 (the original's
   W - x - 1 shifts every flipped box by a pixel).
4. a photo's faults (`rand_blur`: half the crops blurred with a Gaussian of
   sigma up to that many input pixels; `rand_jpeg`: half the crops JPEG
   compressed again, quality from that up to 95; both off in the paper),
   colour (`rand_color`: brightness, contrast, saturation by up to 40 %;
   `lighting`: PCA noise of std 0.1 with `eig_val`/`eig_vec`), then
   (image / 255 - mean) / std, BGR. With `db.box_scale` > 1 the same crop is
   also resized to box_scale x input_size and gets the same flip, faults and
   colour: "box_image", the picture the box classifier reads ("box_rois" in
   its pixels).
5. targets at output_sizes[0]. A coordinate x of the input is x * w_out / w_in
   on the heatmap; its pixel is floor(x) and its offset x - floor(x), in
   [0, 1). A right or bottom edge exactly on the far border of the map (a box
   cut by the crop) is kept on the last pixel with offset 1, so pixel +
   offset is still the exact coordinate and no index leaves the map.
   `class_agnostic_corners`: corner heatmaps have one channel (every class
   drawn in channel 0); the centre heatmap keeps one channel per class.
   `classes_from` "boxes": the centre heatmap has one channel too, and
   "box_rois" (K, 4) / "box_classes" (K,) hold up to K = `boxes_per_image`
   boxes for the box classifier, in input pixels, drawn at random among the
   boxes the crop did not cut, each side moved by up to `box_jitter` of the
   box's size (empty slots: zero boxes, class -1). `center_size`: "ct_size"
   (L, 2), each object's log width and log height in heatmap cells.

All randomness comes from `rng` (a numpy Generator) and is drawn in a fixed
order (crop, flip, blur, JPEG, colour, lighting, boxes to classify), only for
the steps that are on.
"""

from __future__ import annotations

import copy
import math

import cv2
import numpy as np

from config import heatmap_channels

from .utils import (
    color_jitter_,
    crop_around,
    draw_gaussian,
    gaussian_radius,
    lighting_,
    normalize_,
    random_crop_window,
)

# CornerNet's augmentation strengths; not dataset settings.
COLOR_VARIANCE = 0.4
LIGHTING_STD = 0.1
# sigma = diameter / divisor
CORNER_SIGMA_DIVISOR = 6.0
CENTER_SIGMA_DIVISOR = 5.0


def kp_detection(image: np.ndarray, record, cfg, rng: np.random.Generator,
                 augment: bool) -> dict:
    """One training example from an image (H, W, 3) uint8 BGR and its record.

    Returns numpy arrays: "image" (3, H_in, W_in) float32 normalised;
    "tl_heatmap", "br_heatmap" (C or 1, h, w) and "ct_heatmap" (C, h, w)
    float32; "tl_tags", "br_tags", "ct_tags" (L,) int64 flat indices y * w + x;
    "tag_mask" (L,) bool; "tl_regr", "br_regr", "ct_regr" (L, 2) float32 (x, y)
    offsets; L = cfg.db.max_tag_len. Objects fill the first slots in record order.
    With the optional heads also "ct_size" (L, 2) float32, "box_rois" (K, 4)
    float32 and "box_classes" (K,) int64 (module doc, step 5).
    """
    db = cfg.db
    if record.boxes.shape[0] > db.max_tag_len:
        raise ValueError(f"{record.path}: {record.boxes.shape[0]} objects, more than "
                         f"db.max_tag_len = {db.max_tag_len}; raise db.max_tag_len in the config")
    box_scale = db.box_scale if db.classes_from == "boxes" else 1.0
    network_input, boxes, classes, box_image = _augmented(image, record, cfg, rng, augment,
                                                          box_scale)
    example = keypoint_targets(boxes, classes, cfg)
    example["image"] = network_input
    if db.classes_from == "boxes":
        example.update(boxes_to_classify(boxes, classes, cfg, rng if augment else None))
        if box_image is not None:   # the rois in the pixels of the box classifier's picture
            example["box_rois"] = example["box_rois"] * np.float32(box_scale)
            example["box_image"] = box_image
    return example


def boxes_to_classify(boxes: np.ndarray, classes: np.ndarray, cfg, rng=None) -> dict:
    """"box_rois" (K, 4) float32 and "box_classes" (K,) int64 for the box
    classifier (module doc, step 5). Without `rng` (validation): the first
    uncut boxes, unmoved."""
    db = cfg.db
    slots = db.boxes_per_image
    input_height, input_width = db.input_size
    rois = np.zeros((slots, 4), dtype=np.float32)
    labels = np.full((slots,), -1, dtype=np.int64)
    # a box touching the input's border was probably cut by the crop: its
    # operator or parentheses may be gone
    whole = np.flatnonzero((boxes[:, 0] > 0.5) & (boxes[:, 1] > 0.5)
                           & (boxes[:, 2] < input_width - 0.5) & (boxes[:, 3] < input_height - 0.5))
    chosen = (rng.permutation(whole) if rng is not None else whole)[:slots]
    picked = boxes[chosen].astype(np.float64)
    if rng is not None and db.box_jitter > 0 and len(chosen):
        sizes = np.tile(picked[:, 2:4] - picked[:, 0:2], 2)  # w, h, w, h
        picked = picked + rng.uniform(-db.box_jitter, db.box_jitter, picked.shape) * sizes
        picked[:, 2:4] = np.maximum(picked[:, 2:4], picked[:, 0:2] + 1)
    rois[:len(chosen)] = picked
    labels[:len(chosen)] = classes[chosen]
    return {"box_rois": rois, "box_classes": labels}


def augmented_input(image: np.ndarray, record, cfg, rng: np.random.Generator,
                    augment: bool):
    """Steps 1-4: the network input and the boxes that remain on it.

    Returns (image (3, H_in, W_in) float32 normalised, boxes (N, 4) float64 in
    input pixels, classes (N,) int64). Benchmarks train other detectors on
    exactly these inputs, so both see the same data and augmentation.
    """
    return _augmented(image, record, cfg, rng, augment)[:3]


def _augmented(image: np.ndarray, record, cfg, rng: np.random.Generator, augment: bool,
               box_scale: float = 1.0):
    """augmented_input, and with `box_scale` > 1 the same crop resized to
    box_scale x input_size, flipped, degraded and coloured with the same
    draws (db.box_scale: the picture the box classifier reads), else None."""
    db = cfg.db
    input_height, input_width = db.input_size
    boxes = np.asarray(record.boxes, dtype=np.float64).reshape(-1, 4).copy()
    classes = np.asarray(record.classes, dtype=np.int64).reshape(-1)

    image, boxes = _crop(image, boxes, cfg, rng, augment)
    crop_height, crop_width = image.shape[:2]
    box_image = None
    if box_scale > 1:
        box_size = (int(input_width * box_scale), int(input_height * box_scale))
        box_image = cv2.resize(image, box_size, interpolation=cv2.INTER_AREA
                               if box_size[0] < crop_width else cv2.INTER_LINEAR)
    if (crop_height, crop_width) != (input_height, input_width):
        image = cv2.resize(image, (input_width, input_height))
        boxes[:, 0::2] *= input_width / crop_width
        boxes[:, 1::2] *= input_height / crop_height

    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, input_width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, input_height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, classes = boxes[keep], classes[keep]

    if augment and db.rand_flip and rng.uniform() < 0.5:
        image = image[:, ::-1]
        boxes[:, [0, 2]] = input_width - boxes[:, [2, 0]]
        if box_image is not None:
            box_image = box_image[:, ::-1]

    pictures = [image] if box_image is None else [image, box_image]
    scales = (1.0, box_scale)
    if augment and db.rand_blur > 0 and rng.uniform() < 0.5:
        sigma = rng.uniform(0.3, db.rand_blur)
        pictures = [cv2.GaussianBlur(np.ascontiguousarray(p), (0, 0), sigma * k)
                    for p, k in zip(pictures, scales)]
    if augment and db.rand_jpeg > 0 and rng.uniform() < 0.5:
        quality = int(rng.integers(db.rand_jpeg, 96))
        pictures = [cv2.imdecode(cv2.imencode(".jpg", np.ascontiguousarray(p),
                                              [cv2.IMWRITE_JPEG_QUALITY, quality])[1],
                                 cv2.IMREAD_COLOR) for p in pictures]
    pictures = [p.astype(np.float32) / 255.0 for p in pictures]
    if augment and db.rand_color:
        # the box classifier's picture gets the same colour draws: a copy of the
        # generator for it, so the sampler's own draws are as without it
        twin = copy.deepcopy(rng) if len(pictures) > 1 else None
        color_jitter_(rng, pictures[0], COLOR_VARIANCE)
        if db.lighting:
            lighting_(rng, pictures[0], LIGHTING_STD, db.eig_val, db.eig_vec)
        if twin is not None:
            color_jitter_(twin, pictures[1], COLOR_VARIANCE)
            if db.lighting:
                lighting_(twin, pictures[1], LIGHTING_STD, db.eig_val, db.eig_vec)
    for p in pictures:
        normalize_(p, db.mean, db.std)
    planar = [np.ascontiguousarray(p.transpose(2, 0, 1)) for p in pictures]
    return planar[0], boxes, classes, (planar[1] if len(planar) > 1 else None)


def _crop(image, boxes, cfg, rng, augment):
    db = cfg.db
    height, width = image.shape[:2]
    if db.rand_crop and augment:
        center_x, center_y, crop_width, crop_height = random_crop_window(
            rng, height, width, db.rand_scales, db.input_size, db.border)
    elif db.rand_crop:
        center_x, center_y = width // 2, height // 2
        crop_height, crop_width = db.input_size
    else:
        side = max(height, width)
        center_x, center_y, crop_width, crop_height = width // 2, height // 2, side, side
    window, (x0, y0) = crop_around(image, center_x, center_y, crop_width, crop_height)
    boxes = boxes - np.array([x0, y0, x0, y0], dtype=np.float64)
    return window, boxes


def keypoint_targets(boxes: np.ndarray, classes: np.ndarray, cfg) -> dict:
    """Heatmaps, offsets, flat indices and mask for boxes (N, 4) in input pixels."""
    db = cfg.db
    input_height, input_width = db.input_size
    out_height, out_width = db.output_sizes[0]
    max_objects = db.max_tag_len
    corner_channels, center_channels = heatmap_channels(db)

    tl_heatmap = np.zeros((corner_channels, out_height, out_width), dtype=np.float32)
    br_heatmap = np.zeros((corner_channels, out_height, out_width), dtype=np.float32)
    ct_heatmap = np.zeros((center_channels, out_height, out_width), dtype=np.float32)
    tl_tags = np.zeros((max_objects,), dtype=np.int64)
    br_tags = np.zeros((max_objects,), dtype=np.int64)
    ct_tags = np.zeros((max_objects,), dtype=np.int64)
    tl_regr = np.zeros((max_objects, 2), dtype=np.float32)
    br_regr = np.zeros((max_objects, 2), dtype=np.float32)
    ct_regr = np.zeros((max_objects, 2), dtype=np.float32)
    tag_mask = np.zeros((max_objects,), dtype=bool)

    # Output-scale coordinates in float32: x - floor(x) is then exact in
    # float32, so an offset can never round up to 1.
    scale = np.array([out_width / input_width, out_height / input_height] * 2, dtype=np.float32)
    out_boxes = boxes.astype(np.float32) * scale  # (N, 4)
    out_boxes[:, 0::2] = np.clip(out_boxes[:, 0::2], 0, out_width)
    out_boxes[:, 1::2] = np.clip(out_boxes[:, 1::2], 0, out_height)
    centers = (out_boxes[:, 0:2] + out_boxes[:, 2:4]) / np.float32(2)  # (N, 2)

    for k, (box, center, category) in enumerate(zip(out_boxes, centers, classes)):
        corner_channel = 0 if db.class_agnostic_corners else int(category)
        points = {"tl": (box[0], box[1]), "br": (box[2], box[3]), "ct": (center[0], center[1])}
        pixels = {name: (_pixel(x, out_width), _pixel(y, out_height))
                  for name, (x, y) in points.items()}

        maps = {"tl": tl_heatmap[corner_channel], "br": br_heatmap[corner_channel],
                "ct": ct_heatmap[0 if center_channels == 1 else int(category)]}
        if db.gaussian_bump:
            if db.gaussian_radius == -1:
                box_height = math.ceil(box[3] - box[1])
                box_width = math.ceil(box[2] - box[0])
                radius = max(0, int(gaussian_radius((box_height, box_width), db.gaussian_iou)))
            else:
                radius = db.gaussian_radius
            for name in ("tl", "br"):
                draw_gaussian(maps[name], *pixels[name], radius, CORNER_SIGMA_DIVISOR)
            draw_gaussian(maps["ct"], *pixels["ct"], radius, CENTER_SIGMA_DIVISOR)
        else:
            for name, (x, y) in pixels.items():
                maps[name][y, x] = 1

        for name, regr, tags in (("tl", tl_regr, tl_tags), ("br", br_regr, br_tags),
                                 ("ct", ct_regr, ct_tags)):
            (x, y), (px, py) = points[name], pixels[name]
            regr[k] = (x - np.float32(px), y - np.float32(py))
            tags[k] = py * out_width + px
        tag_mask[k] = True

    example = {"tl_heatmap": tl_heatmap, "br_heatmap": br_heatmap, "ct_heatmap": ct_heatmap,
               "tl_tags": tl_tags, "br_tags": br_tags, "ct_tags": ct_tags, "tag_mask": tag_mask,
               "tl_regr": tl_regr, "br_regr": br_regr, "ct_regr": ct_regr}
    if db.center_size:
        example["ct_size"] = log_sizes(out_boxes, max_objects)
    return example


# A box narrower than this many heatmap cells counts as this wide in log space
# (a box cut to a sliver by the crop).
MIN_SIZE_CELLS = 0.25


def log_sizes(out_boxes: np.ndarray, slots: int) -> np.ndarray:
    """(slots, 2) float32: log width and log height of each box (N, 4) in
    heatmap cells, zeros in the unused slots."""
    sizes = np.zeros((slots, 2), dtype=np.float32)
    extent = np.maximum(out_boxes[:, 2:4] - out_boxes[:, 0:2], MIN_SIZE_CELLS)
    sizes[:len(out_boxes)] = np.log(extent)
    return sizes


def _pixel(coordinate: np.float32, size: int) -> int:
    # a coordinate exactly on the far border belongs to the last pixel
    return min(int(coordinate), size - 1)


def object_height_at_input(records, cfg) -> float | None:
    """The median height, in input pixels, of the objects of `records` as
    training crops show them to the network (test/scales.py brings every test
    page's objects to db.test_object_height, which should be this): each
    object's height divided by each crop scale of db.rand_scales, or, without
    rand_crop, scaled as the padded square is to the input. None without objects."""
    db = cfg.db
    heights, factors = [], []
    for record in records:
        boxes = np.asarray(record.boxes, dtype=np.float64).reshape(-1, 4)
        if not len(boxes):
            continue
        heights.append(boxes[:, 3] - boxes[:, 1])
        factors.append(np.full(len(boxes), db.input_size[0] / max(record.height, record.width)))
    if not heights:
        return None
    heights = np.concatenate(heights)
    if db.rand_crop:
        # the crop window is input_size * s, resized to input_size: heights / s
        return float(np.median(heights[:, None] / np.asarray(db.rand_scales)[None, :]))
    return float(np.median(heights * np.concatenate(factors)))
