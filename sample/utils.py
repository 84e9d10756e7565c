"""Image and target helpers of the training sampler: crops, colour
augmentation and the gaussian heatmap bumps of CornerNet.

- `gaussian_radius` is CornerNet's radius (Law & Deng, "CornerNet: Detecting
  Objects as Paired Keypoints", ECCV 2018, section 3.2): the largest corner
  displacement for which a box made of displaced corners still overlaps the
  ground truth by `min_overlap` IoU, the smallest root of the three cases.
- `draw_gaussian` writes an unnormalised 2-D gaussian of a given radius into a
  heatmap, keeping the larger value where bumps overlap. The peak is exactly 1.
- `crop_around` places a window of the image on a fresh canvas (zeros where the
  window leaves the image); `random_crop_window` picks CornerNet's random
  window; `color_jitter_` and `lighting_` are CornerNet's colour augmentation
  (brightness, contrast, saturation by up to 40 %, in random order; AlexNet's
  PCA lighting noise).

Every random draw comes from the numpy `Generator` passed in; nothing here
touches numpy's or Python's global random state.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

# --------------------------------------------------------------------------
# heatmap targets
# --------------------------------------------------------------------------

def gaussian_2d(diameter: int, sigma: float) -> np.ndarray:
    """A (diameter, diameter) gaussian with value 1 at the centre pixel."""
    half = (diameter - 1) / 2.0
    y, x = np.ogrid[-half:half + 1, -half:half + 1]
    bump = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    # tails below float precision are exact zeros, as in CornerNet
    bump[bump < np.finfo(bump.dtype).eps * bump.max()] = 0
    return bump


def draw_gaussian(heatmap: np.ndarray, center_x: int, center_y: int, radius: int,
                  sigma_divisor: float = 6.0) -> None:
    """Draw a bump of `radius` at an integer pixel of `heatmap` (h, w), in place.

    sigma = diameter / sigma_divisor: CornerNet's corners use 6, CenterNet's
    centres 5 (a wider bump). Where bumps overlap the maximum is kept.
    """
    bump = _cached_bump(radius, sigma_divisor)
    height, width = heatmap.shape
    left, right = min(center_x, radius), min(width - center_x, radius + 1)
    top, bottom = min(center_y, radius), min(height - center_y, radius + 1)
    region = heatmap[center_y - top:center_y + bottom, center_x - left:center_x + right]
    bump_part = bump[radius - top:radius + bottom, radius - left:radius + right]
    np.maximum(region, bump_part, out=region)


@functools.lru_cache(maxsize=1024)
def _cached_bump(radius: int, sigma_divisor: float) -> np.ndarray:
    # a page has many boxes of the same size; the bump is shared, read-only
    diameter = 2 * radius + 1
    bump = gaussian_2d(diameter, sigma=diameter / sigma_divisor).astype(np.float32)
    bump.setflags(write=False)
    return bump


def gaussian_radius(box_size: tuple[float, float], min_overlap: float) -> float:
    """CornerNet's radius for a box of (height, width) at IoU `min_overlap`.

    Three ways the two corners can move (both inward, both outward, one of
    each) each give a quadratic in the displacement r; the smallest positive
    root keeps the IoU above `min_overlap` in every case.
    """
    height, width = box_size

    # one corner inside the box, the other outside
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1 ** 2 - 4 * c1)) / 2

    # both corners inside
    a2 = 4
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + np.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2

    # both corners outside
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + np.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return float(min(r1, r2, r3))


# --------------------------------------------------------------------------
# crops
# --------------------------------------------------------------------------

def crop_around(image: np.ndarray, center_x: int, center_y: int,
                width: int, height: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The (height, width) window of `image` centred at (center_x, center_y).

    Parts of the window outside the image are zeros. Returns the window and
    (x0, y0), the image coordinates of the window's top-left pixel: a point
    at image x maps to window x - x0.
    """
    image_height, image_width = image.shape[:2]
    x0, y0 = center_x - width // 2, center_y - height // 2
    window = np.zeros((height, width) + image.shape[2:], dtype=image.dtype)
    src_x0, src_x1 = max(x0, 0), min(x0 + width, image_width)
    src_y0, src_y1 = max(y0, 0), min(y0 + height, image_height)
    if src_x1 > src_x0 and src_y1 > src_y0:
        window[src_y0 - y0:src_y1 - y0, src_x0 - x0:src_x1 - x0] = image[src_y0:src_y1, src_x0:src_x1]
    return window, (x0, y0)


def crop_border(border: int, size: int) -> int:
    """The margin crop centres keep from the image edges along a side of `size`.

    Halved until a centre fits strictly between the margins (CornerNet's
    `_get_border`), so small images still get a valid range of centres.
    """
    divisor = 1
    while size - border // divisor <= border // divisor:
        divisor *= 2
    return border // divisor


def random_crop_window(rng: np.random.Generator, image_height: int, image_width: int,
                       scales, input_size, border: int) -> tuple[int, int, int, int]:
    """CornerNet's random crop: a window of input_size * scale (scale drawn from
    `scales`) centred at a random pixel kept `border` (halved for small images)
    from the edges. Returns (center_x, center_y, width, height)."""
    scale = float(rng.choice(np.asarray(scales, dtype=np.float64)))
    height, width = int(input_size[0] * scale), int(input_size[1] * scale)
    x_border = crop_border(border, image_width)
    y_border = crop_border(border, image_height)
    center_x = int(rng.integers(x_border, image_width - x_border))
    center_y = int(rng.integers(y_border, image_height - y_border))
    return center_x, center_y, width, height


# --------------------------------------------------------------------------
# colour (on float32 BGR images scaled to [0, 1])
# --------------------------------------------------------------------------

def color_jitter_(rng: np.random.Generator, image: np.ndarray, variance: float = 0.4) -> None:
    """Brightness, contrast and saturation, each by a factor in 1 +- variance,
    applied in random order, in place. Contrast and saturation blend towards
    the grey image of the input (its mean, and itself)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)  # (H, W)
    grey_mean = float(grey.mean())
    for step in rng.permutation(3):
        alpha = 1.0 + rng.uniform(-variance, variance)
        if step == 0:    # brightness
            image *= alpha
        elif step == 1:  # contrast
            image *= alpha
            image += (1 - alpha) * grey_mean
        else:            # saturation
            image *= alpha
            image += (1 - alpha) * grey[:, :, None]


def lighting_(rng: np.random.Generator, image: np.ndarray, alpha_std: float,
              eig_val, eig_vec) -> None:
    """AlexNet's PCA lighting noise: add eig_vec @ (eig_val * alpha) to every
    pixel, alpha ~ N(0, alpha_std) per component, in place."""
    alpha = rng.normal(scale=alpha_std, size=(3,))
    shift = np.asarray(eig_vec, dtype=np.float64) @ (np.asarray(eig_val, dtype=np.float64) * alpha)
    image += shift.astype(image.dtype)


def normalize_(image: np.ndarray, mean, std) -> None:
    image -= np.asarray(mean, dtype=image.dtype)
    image /= np.asarray(std, dtype=image.dtype)
