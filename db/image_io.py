"""Reading images from disk: the one place that decodes a file.

`read_image` decodes with OpenCV into BGR uint8 and ignores the EXIF
orientation, because annotations (ks-format.md) refer to the pixels as
stored. It reads the bytes with numpy and decodes them from memory, so paths
with Chinese (any non-ASCII) characters work on every platform.

`image_size` reads only the header with Pillow: fast enough for a reader to
check every image of a split at load time.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageReadError

_IMREAD_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def read_image(path: str) -> np.ndarray:
    """The image at `path` as (H, W, 3) uint8 BGR; `ImageReadError` if it cannot be read.

    A truncated or corrupt file is an error (OpenCV 4.x rejects truncated
    JPEG and PNG data instead of filling the rest with grey).
    """
    data = _read_bytes(path)
    try:
        image = cv2.imdecode(data, _IMREAD_FLAGS)
    except cv2.error as e:
        raise ImageReadError(path, f"OpenCV cannot decode it ({e.err})") from None
    if image is None:
        raise ImageReadError(path, "not a decodable image (truncated, corrupt or an "
                                   "unsupported format)")
    return image


def image_size(path: str) -> tuple[int, int]:
    """(width, height) of the stored pixels, from the file's header.

    Reads the header with Pillow (no decoding); a format Pillow does not know
    is decoded with OpenCV instead. `ImageReadError` if neither can read it.
    """
    if not os.path.isfile(path):
        raise ImageReadError(path, "no such file" if not os.path.exists(path) else "not a file")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except UnidentifiedImageError:
        try:
            height, width = read_image(path).shape[:2]
        except ImageReadError:
            raise ImageReadError(path, "not an image file that Pillow or OpenCV can read") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(path, f"cannot read its header ({e})") from None
    if width <= 0 or height <= 0:
        raise ImageReadError(path, f"its header gives an empty size {width}x{height}")
    return int(width), int(height)


def _read_bytes(path: str) -> np.ndarray:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except OSError as e:
        raise ImageReadError(path, e.strerror or str(e)) from None
    if data.size == 0:
        raise ImageReadError(path, "the file is empty")
    return data
