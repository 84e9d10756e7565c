"""Test-time detection of one image with CenterNet (Duan et al. 2019,
"CenterNet: Keypoint Triplets for Object Detection"), in the steps of the
original test/coco.py kp_detection:

0. the page's scales (test/scales.py): with `db.test_scale_mode` "objects"
   a first look (steps 1-6 at one scale, without flip) measures the page's
   objects and sets the scales from their height; with "pixels" they are
   `db.test_scales`;
1. for each scale: resize the image to int(h * scale) x int(w * scale)
   (area averaging when shrinking, so a 12-megapixel photo brought to a
   few hundred pixels keeps its thin strokes), centre it on an input of size
   (size | 127) (each side 127 mod 128, so the hourglass' downsamplings
   divide evenly), normalise with `db.mean` / `db.std`, and batch it with its
   horizontal flip when `db.test_flip`;
2. run `net.predict` and decode the maps with `_decode` (top `db.top_k`
   corners and centres, pairs by embedding distance `db.ae_threshold`);
3. move what was decoded for every scale to the host in one transfer;
4. map boxes and centres back to image pixels: undo the flip, the
   input-to-heatmap ratio, the padding and the resize; drop boxes reaching
   more than 5 input pixels into the padding; clip to the image;
5. the centre-point check of the triplets (test/center_check.py) with the
   centres of every scale;
6. per-class soft-NMS over every scale and the best `db.max_per_image`
   (test/merge.py);
7. with `db.classes_from` "boxes": the box classifier names every kept box
   from a crop of the first scale's input, or with `db.test_box_scale` > 1 of
   the picture at that many times its scale (`name_boxes`, `box_input`).

With `db.test_batch_images` > 1 several images share each network call: at
every scale each image's own input (step 1) is placed at the top-left of an
input as large as the largest of the call, the rest padded black, and its
flip is the mirror of that whole input; steps 4 onward then see a larger
input with the image at the same offset, so the mapping back is unchanged.

Coordinates: boxes are x1, y1, x2, y2 with x2 / y2 the right / bottom edge
(ks-format.md); a point x of an image W pixels wide is at W - x in its mirror
image, and a heatmap is the input scaled by out / in on each side, so a
flipped heatmap coordinate x maps back to out_width - x (x1 and x2 swap).

Where this differs from the original on purpose: the resized image is placed
whole (crop_image dropped the last column or row when a side was already 127
mod 128); boxes are mapped back with the exact resize ratio of each side
(new_width / width) instead of the nominal scale; centres of every scale
confirm boxes (the original used only scale 1 and failed without it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from models.py_utils.kp_utils import _decode
from nnet.device import autocast

from .center_check import C_HEIGHT, C_WIDTH, SCORE, X1, X2, Y1, Y2, center_check
from .merge import by_class_probabilities, merge_detections
from .scales import first_look_scale, keeps_first_look, looks_first, page_scales
from .timing import StageTimer

# A box may reach this many input pixels into the padding before it is dropped
# (the original's tolerance): corners found in the black border are noise.
PADDING_TOLERANCE = 5


def padded_size(size: int) -> int:
    """The network input side for an image side: the next value 127 mod 128."""
    return size | 127


@dataclass(frozen=True)
class ScaledInput:
    """One test scale of one image: the network input and how to map back."""

    scale: float
    images: torch.Tensor              # (B, 3, input_h, input_w) float32, B = 2 with the flip
    flipped: bool                     # images[1] is the mirror of images[0]
    image_size: tuple[int, int]       # (height, width) of the original image
    resized_size: tuple[int, int]     # (height, width) after resizing
    offset: tuple[int, int]           # (top, left) of the resized image in the input

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.images.shape[-2:])


def scaled_geometry(height: int, width: int, scale: float):
    """(resized (h, w), input (h, w), offset (top, left)) of one test scale.

    The resized image is centred as the original's crop_image centred it:
    its centre pixel (h // 2, w // 2) lands on the input's (H // 2, W // 2).
    """
    resized = (int(height * scale), int(width * scale))
    if min(resized) < 1:
        raise ValueError(f"test scale {scale} shrinks a {width}x{height} image to nothing "
                         f"(db.test_scales)")
    inputs = (padded_size(resized[0]), padded_size(resized[1]))
    offset = (inputs[0] // 2 - resized[0] // 2, inputs[1] // 2 - resized[1] // 2)
    return resized, inputs, offset


@dataclass(frozen=True)
class Page:
    """One image ready for detect_images: its network inputs, and the image,
    to prepare the chosen scales from after a first look (test/scales.py) and
    the box classifier's picture (db.box_scale)."""

    inputs: list[ScaledInput]         # the final scales', or the first look's one
    image: np.ndarray                 # (H, W, 3) uint8 BGR
    looking: bool = False             # inputs are the first look's


def prepare_page(image: np.ndarray, cfg, pin_memory: bool = False) -> Page:
    """(H, W, 3) uint8 BGR image -> what detect_images needs of it: the
    inputs of db.test_scales ("pixels" mode), or of the first look."""
    if not looks_first(cfg):
        return Page(prepare_image(image, cfg, pin_memory=pin_memory), image)
    scale = first_look_scale(*image.shape[:2], cfg)
    return Page(prepare_image(image, cfg, [scale], flip=False, pin_memory=pin_memory), image,
                looking=True)


def box_input(page: Page, scaled: ScaledInput, cfg) -> ScaledInput:
    """What the box classifier reads boxes found at `scaled` from: that input,
    or with db.test_box_scale > 1 the picture at test_box_scale times its scale
    (no larger than its stored pixels, which hold nothing finer)."""
    if cfg.db.test_box_scale <= 1:
        return scaled
    scale = min(scaled.scale * cfg.db.test_box_scale, max(scaled.scale, 1.0))
    if scale <= scaled.scale:
        return scaled
    return prepare_image(page.image, cfg, [scale], flip=False)[0]


def prepare_image(image: np.ndarray, cfg, scales: list[float] | None = None,
                  flip: bool | None = None, pin_memory: bool = False) -> list[ScaledInput]:
    """(H, W, 3) uint8 BGR image -> one network input per scale (default: the
    scales the page is tested at before looking at it, test/scales.py
    page_scales), with its mirror when `flip` (default db.test_flip)."""
    height, width = image.shape[:2]
    scales = page_scales(height, width, cfg) if scales is None else scales
    flip = cfg.db.test_flip if flip is None else flip
    mean = np.asarray(cfg.db.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(cfg.db.std, dtype=np.float32).reshape(3, 1, 1)
    prepared = []
    for scale in scales:
        (new_h, new_w), (input_h, input_w), (top, left) = scaled_geometry(height, width, scale)
        resized = image if (new_h, new_w) == (height, width) else \
            cv2.resize(image, (new_w, new_h),
                       interpolation=cv2.INTER_AREA if new_w < width else cv2.INTER_LINEAR)
        # the padding is black before normalisation, as in training
        batch = np.empty((2 if flip else 1, 3, input_h, input_w), dtype=np.float32)
        batch[0] = -mean / std
        content = batch[0, :, top:top + new_h, left:left + new_w]
        content[...] = resized.transpose(2, 0, 1)
        content *= 1 / 255
        content -= mean
        content /= std
        if flip:
            batch[1] = batch[0, :, :, ::-1]
        tensor = torch.from_numpy(batch)
        if pin_memory:
            tensor = tensor.pin_memory()
        prepared.append(ScaledInput(scale=scale, images=tensor, flipped=flip,
                                    image_size=(height, width), resized_size=(new_h, new_w),
                                    offset=(top, left)))
    return prepared


def batch_inputs(group: list[ScaledInput], cfg, pin_memory: bool = False):
    """One scale of several images as one network input.

    Returns (images (B, 3, H, W), placed): H, W the largest input of the
    group, B = len(group) (twice that with the flip: each image, then its
    mirror), and `placed[i]` the ScaledInput of image i as it lies in that
    batch (its images: its own rows of the batch), for map_to_image.
    """
    if len(group) == 1:
        return group[0].images, group
    height = max(scaled.input_size[0] for scaled in group)
    width = max(scaled.input_size[1] for scaled in group)
    flipped = group[0].flipped
    per_image = 2 if flipped else 1
    images = torch.empty((per_image * len(group), 3, height, width), dtype=torch.float32,
                         pin_memory=pin_memory)
    black = -np.asarray(cfg.db.mean, np.float32) / np.asarray(cfg.db.std, np.float32)
    images[:] = torch.from_numpy(black).reshape(1, 3, 1, 1)
    placed = []
    for i, scaled in enumerate(group):
        rows = images[per_image * i:per_image * (i + 1)]
        own_h, own_w = scaled.input_size
        rows[0, :, :own_h, :own_w] = scaled.images[0]
        if flipped:
            rows[1] = rows[0].flip(-1)
        placed.append(replace(scaled, images=rows))
    return images, placed


def decode_scale(net, images: torch.Tensor, cfg, device, timer: StageTimer):
    """Network and decoding of one batch of network inputs, left on the device.

    Returns (detections (B, D, 8), centres (B, K, 4), heatmap size (h, w)).
    """
    device = torch.device(device)
    with torch.inference_mode():
        with timer.stage("network", synchronize=True):
            images = images.to(device, non_blocking=True)
            if cfg.system.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast(cfg.system.precision, device):
                outputs = net.predict(images)
            outputs = {name: o.float() for name, o in outputs.items()}
        with timer.stage("decoding", synchronize=True):
            detections, centers = _decode(**outputs, K=cfg.db.top_k, kernel=cfg.db.nms_kernel,
                                          ae_threshold=cfg.db.ae_threshold,
                                          num_dets=cfg.db.num_dets)
    heatmap_size = tuple(outputs["tl_heat"].shape[-2:])
    return detections, centers, heatmap_size


def to_host(decoded):
    """[(detections, centres, size) per scale] on the device -> numpy, in one transfer."""
    if not decoded:
        return []
    tensors = [t for detections, centers, _ in decoded for t in (detections, centers)]
    flat = torch.cat([t.reshape(-1).float() for t in tensors]).cpu().numpy()
    host, start = [], 0
    for detections, centers, size in decoded:
        parts = []
        for t in (detections, centers):
            parts.append(flat[start:start + t.numel()].reshape(t.shape))
            start += t.numel()
        host.append((parts[0], parts[1], size))
    return host


def map_to_image(detections: np.ndarray, centers: np.ndarray, heatmap_size, scaled: ScaledInput):
    """Heatmap coordinates of one scale -> image pixels.

    detections (B, D, 8) and centres (B, K, 4) as `_decode` gives them; with a
    flip, batch element 1 is the mirror image. Returns (N, 8) detections (the
    rejected pairs and the boxes reaching into the padding removed) and
    (M, 4) centres, in pixels of the original image, clipped to it.
    """
    detections, centers = detections.copy(), centers.copy()
    heat_h, heat_w = heatmap_size
    if scaled.flipped:
        mirrored_x1 = heat_w - detections[1, :, X2]
        detections[1, :, X2] = heat_w - detections[1, :, X1]
        detections[1, :, X1] = mirrored_x1
        centers[1, :, 0] = heat_w - centers[1, :, 0]
    detections = detections.reshape(-1, detections.shape[-1])
    centers = centers.reshape(-1, centers.shape[-1])
    detections = detections[detections[:, SCORE] > -1]

    input_h, input_w = scaled.input_size
    top, left = scaled.offset
    new_h, new_w = scaled.resized_size
    height, width = scaled.image_size
    # heatmap -> input -> resized image pixels
    xs = detections[:, [X1, X2]] * (input_w / heat_w) - left
    ys = detections[:, [Y1, Y2]] * (input_h / heat_h) - top
    inside = ((xs[:, 0] >= -PADDING_TOLERANCE) & (xs[:, 1] <= new_w + PADDING_TOLERANCE)
              & (ys[:, 0] >= -PADDING_TOLERANCE) & (ys[:, 1] <= new_h + PADDING_TOLERANCE))
    detections, xs, ys = detections[inside], xs[inside], ys[inside]
    # resized -> original pixels, with each side's exact resize ratio
    detections[:, [X1, X2]] = np.clip(xs * (width / new_w), 0, width)
    detections[:, [Y1, Y2]] = np.clip(ys * (height / new_h), 0, height)

    centers[:, 0] = np.clip((centers[:, 0] * (input_w / heat_w) - left) * (width / new_w), 0, width)
    centers[:, 1] = np.clip((centers[:, 1] * (input_h / heat_h) - top) * (height / new_h), 0, height)
    if centers.shape[1] > C_HEIGHT:  # predicted sizes, heatmap cells -> image pixels
        centers[:, C_WIDTH] *= (input_w / heat_w) * (width / new_w)
        centers[:, C_HEIGHT] *= (input_h / heat_h) * (height / new_h)
    return detections, centers


def detect_images(net, pages: list[Page], cfg, device, timer: StageTimer | None = None,
                  pin_memory: bool = False) -> list[np.ndarray]:
    """Final detections of prepared images that share each network call (one
    Page per image, from prepare_page): for each image an (N, 6) array x1,
    y1, x2, y2, score, class in image pixels, best first, at most
    `db.max_per_image` rows; (0, 6) when nothing is found.

    Pages prepared for a first look are detected once at its scale (timed as
    the stage "first look"), then at the scales it sets (test/scales.py),
    unless the first look's boxes can stand (keeps_first_look).
    """
    timer = timer or StageTimer()
    results: list[np.ndarray | None] = [None] * len(pages)
    final_inputs = [page.inputs for page in pages]
    looking = [i for i, page in enumerate(pages) if page.looking]
    if looking:
        with timer.stage("first look", synchronize=True):
            looks = _detect(net, [pages[i].inputs for i in looking], cfg, device, StageTimer(),
                            pin_memory)
        for i, found in zip(looking, looks):
            page = pages[i]
            look_scale = page.inputs[0].scale
            scales = page_scales(*page.image.shape[:2], cfg, found, look_scale)
            if keeps_first_look(scales, look_scale, cfg):
                results[i] = found
                continue
            with timer.stage("preparation"):
                final_inputs[i] = prepare_image(page.image, cfg, scales)
    again = [i for i, found in enumerate(results) if found is None]
    if again:
        for i, found in zip(again, _detect(net, [final_inputs[i] for i in again], cfg, device,
                                           timer, pin_memory)):
            results[i] = found
    if cfg.db.classes_from == "boxes":
        for i, found in enumerate(results):
            with timer.stage("classification", synchronize=True):
                source = box_input(pages[i], final_inputs[i][0], cfg) if len(found) else None
                results[i] = name_boxes(net, found, source, cfg, device)
    return results


def _detect(net, prepared: list[list[ScaledInput]], cfg, device, timer: StageTimer,
            pin_memory: bool) -> list[np.ndarray]:
    """Steps 2-6 for images that share each network call: one list of
    ScaledInput per image, the same number of scales for each; the boxes are
    not named yet (step 7)."""
    decoded, placed = [], []   # per scale: the batch's decoding, each image's placement
    for scale_index in range(len(prepared[0])):
        images, where = batch_inputs([scaled[scale_index] for scaled in prepared], cfg, pin_memory)
        decoded.append(decode_scale(net, images, cfg, device, timer))
        placed.append(where)
    with timer.stage("decoding"):
        host = to_host(decoded)
    per_image = 2 if prepared[0][0].flipped else 1   # batch rows of one image
    results = []
    for i in range(len(prepared)):
        rows = slice(per_image * i, per_image * (i + 1))
        with timer.stage("decoding"):
            mapped = [map_to_image(detections[rows], centers[rows], size, where[i])
                      for (detections, centers, size), where in zip(host, placed)]
            found = np.concatenate([d for d, _ in mapped]) if mapped else np.zeros((0, 8), np.float32)
            centres = np.concatenate([c for _, c in mapped]) if mapped else np.zeros((0, 4), np.float32)
        with timer.stage("centre check"):
            found = center_check(found, centres, cfg)
        with timer.stage("nms"):
            results.append(merge_detections(found, cfg))
    return results


def name_boxes(net, detections: np.ndarray, scaled: ScaledInput, cfg, device) -> np.ndarray:
    """Final boxes (N, 6) in image pixels -> (N', 6) rows named by the box
    classifier from a crop of `scaled`'s input (its unflipped image), each box
    under its db.classes_per_box likeliest categories (test/merge.py)."""
    # the best boxes only: each becomes up to classes_per_box rows of at
    # most max_per_image, and cropping is the costly part
    detections = detections[:-(-cfg.db.max_per_image // cfg.db.classes_per_box)]
    if len(detections) == 0:
        return detections
    height, width = scaled.image_size
    new_h, new_w = scaled.resized_size
    top, left = scaled.offset
    rois = np.zeros((len(detections), 5), dtype=np.float32)   # batch index 0
    rois[:, [1, 3]] = detections[:, [X1, X2]] * (new_w / width) + left
    rois[:, [2, 4]] = detections[:, [Y1, Y2]] * (new_h / height) + top
    device = torch.device(device)
    with torch.inference_mode():
        images = scaled.images[:1].to(device)
        logits = net.classify(images, torch.from_numpy(rois).to(device))
        probabilities = torch.softmax(logits.float(), dim=1).cpu().numpy()
    return by_class_probabilities(detections, probabilities, cfg)

