"""One box of a page -> one input of the recognizer.

A box (x1, y1, x2, y2 in image pixels, x2/y2 exclusive) is widened by
`reader.margin_x`/`margin_y` box heights of context on each side (a found box
may cut a digit off, or end a little short), cut from the page (the parts
outside the picture repeat its edge, so a box at the page border is read like
any other), resized to `crop_height` rows keeping its aspect ratio, and
padded on the right with its own paper colour up to `crop_width` (a wider
crop is squeezed to fit). The network sees it centred on its paper colour and
scaled by its contrast (`normalize`), so lighting and ink colour matter less.

Training moves each side of the ground-truth box by up to `jitter_x`/
`jitter_y` box heights, as the detector's boxes move (measured on the
"boxes" ablation detector's validation boxes: left and right sides off by
0.13 and 0.30 box heights (standard deviation), top and bottom by 0.10), and
now and then lowers the crop's resolution (`scale_jitter`).

A box with no area, or one that lies outside the picture, cannot be read:
`cut_crop` raises EmptyCrop saying which.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch


class EmptyCrop(ValueError):
    """A box that holds nothing to read; the message says why."""


def jittered_box(box, settings, rng: np.random.Generator) -> np.ndarray:
    """`box` with each side moved by up to jitter_x (left, right) or jitter_y (top,
    bottom) box heights, never turned inside out."""
    x1, y1, x2, y2 = (float(v) for v in box)
    height = y2 - y1
    dx = rng.uniform(-1.0, 1.0, 2) * settings.jitter_x * height
    dy = rng.uniform(-1.0, 1.0, 2) * settings.jitter_y * height
    nx1, nx2 = x1 + dx[0], x2 + dx[1]
    ny1, ny2 = y1 + dy[0], y2 + dy[1]
    if nx2 - nx1 < 0.5 * (x2 - x1):
        nx1, nx2 = x1, x2
    if ny2 - ny1 < 0.5 * height:
        ny1, ny2 = y1, y2
    return np.array([nx1, ny1, nx2, ny2])


def check_box(image: np.ndarray, box, smallest: int) -> tuple[float, float, float, float]:
    """The box as four floats; EmptyCrop when it has no area or lies outside the picture."""
    image_h, image_w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise EmptyCrop(f"the box {list(box)} is not a number")
    if x2 - x1 < smallest or y2 - y1 < smallest:
        raise EmptyCrop(f"the box is {max(x2 - x1, 0):.0f} x {max(y2 - y1, 0):.0f} px: nothing to "
                        f"read (reader.min_box_size {smallest})")
    inside_w = min(x2, image_w) - max(x1, 0.0)
    inside_h = min(y2, image_h) - max(y1, 0.0)
    if inside_w < smallest or inside_h < smallest or image.size == 0:
        raise EmptyCrop(f"the box {[round(v) for v in (x1, y1, x2, y2)]} lies outside the "
                        f"{image_w} x {image_h} picture")
    return x1, y1, x2, y2


def box_patch(image: np.ndarray, box, margin_x: float, margin_y: float) -> np.ndarray:
    """The pixels of `box` widened by margin_x / margin_y box heights on each
    side, as BGR; parts outside the picture repeat its edge."""
    image_h, image_w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    height = y2 - y1
    left = int(math.floor(x1 - margin_x * height))
    right = int(math.ceil(x2 + margin_x * height))
    top = int(math.floor(y1 - margin_y * height))
    bottom = int(math.ceil(y2 + margin_y * height))
    patch = image[max(top, 0):min(bottom, image_h), max(left, 0):min(right, image_w)]
    pad = (max(0, -top), max(0, bottom - image_h), max(0, -left), max(0, right - image_w))
    if any(pad):  # a box at the page border: the picture's edge repeated
        patch = cv2.copyMakeBorder(patch, *pad, cv2.BORDER_REPLICATE)
    if patch.ndim == 2:
        patch = cv2.cvtColor(patch, cv2.COLOR_GRAY2BGR)
    return patch


def cut_crop(image: np.ndarray, box, settings, rng: np.random.Generator | None = None) -> np.ndarray:
    """(crop_height, crop_width, 3) uint8 crop of `box` from the BGR `image`.

    settings: a reader config's `reader` section. With `rng` (training) the box
    is jittered and the resolution lowered at random."""
    x1, y1, x2, y2 = check_box(image, box, settings.min_box_size)
    if rng is not None:
        x1, y1, x2, y2 = jittered_box((x1, y1, x2, y2), settings, rng)
    patch = box_patch(image, (x1, y1, x2, y2), settings.margin_x, settings.margin_y)

    out_h, out_w = settings.crop_height, settings.crop_width
    if rng is not None and settings.scale_jitter > 0 and rng.random() < 0.5:
        low = max(4, int(round(out_h * (1.0 - rng.uniform(0.0, settings.scale_jitter)))))
        low_w = max(4, int(round(patch.shape[1] * low / patch.shape[0])))
        patch = cv2.resize(patch, (low_w, low), interpolation=cv2.INTER_AREA)
    width = max(1, min(out_w, int(round(patch.shape[1] * out_h / patch.shape[0]))))
    shrinking = patch.shape[0] > out_h
    resized = cv2.resize(patch, (width, out_h),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    crop = np.empty((out_h, out_w, 3), np.uint8)
    crop[:] = np.median(resized.reshape(-1, 3), axis=0).astype(np.uint8)    # its paper colour
    crop[:, :width] = resized
    return crop


def normalize(crops: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 crops -> (B, 3, H, W) float32: each crop minus its
    per-channel median (the paper: 0), divided by its contrast."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).float()              # (B, H, W, 3)
    flat = x.reshape(x.shape[0], -1, 3)
    paper = flat.median(dim=1).values                                      # (B, 3)
    x = x - paper[:, None, None, :]
    contrast = x.reshape(x.shape[0], -1).std(dim=1).clamp(min=8.0)         # (B,)
    x = x / contrast[:, None, None, None]
    return x.permute(0, 3, 1, 2).contiguous()
