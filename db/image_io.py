"""Reading images from disk: the one place that decodes a file.

`read_image` decodes with OpenCV into BGR uint8 and ignores the EXIF
orientation, because annotations (ks-format.md) refer to the pixels as
stored. It reads the bytes with numpy and decodes them from memory, so paths
with Chinese (any non-ASCII) characters work on every platform.

`image_size` reads only the header with Pillow: fast enough for a reader to
check every image of a split at load time. It is also where the one size
rule lives: an image of more than `db.max_image_pixels` pixels is refused
(`ImageTooLargeError`, naming its size, the limit and the key) from its
header, before anything decodes it. Every reader takes an image's size from
`image_size` (the ks loader and its check command, the MSCOCO reader through
`check_pixels`, demo.py), so the checker, train.py, test.py and demo.py
accept and refuse the same files; `read_image` then decodes only images that
passed. Pillow's own decompression-bomb limit, a second and different rule,
is switched off here.
"""

from __future__ import annotations

import errno
import os
import stat

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageReadError, ImageTooLargeError

_IMREAD_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION

# db.max_image_pixels, checked from the header by `check_pixels`, is the rule;
# Pillow's warning at 89 and refusal at 179 megapixels would be a second one.
Image.MAX_IMAGE_PIXELS = None


def default_max_pixels() -> int:
    """db.max_image_pixels as config.py's schema sets it (the one place the
    value is written), for callers without a config (the check command)."""
    from config import SCHEMA  # here, not at the top: config is not a db module
    return SCHEMA["db"]["max_image_pixels"].default


def check_pixels(path: str, width: int, height: int, max_pixels: int | None = None) -> None:
    """`ImageTooLargeError` when a width x height image is over the limit
    (`max_pixels`, default db.max_image_pixels's default)."""
    limit = default_max_pixels() if max_pixels is None else max_pixels
    pixels = int(width) * int(height)
    if pixels > limit:
        raise ImageTooLargeError(path, (
            f"{width}x{height} is {pixels:,} pixels, more than db.max_image_pixels "
            f"({limit:,}): decoded it would take {3 * pixels / 2 ** 30:.1f} GiB, and training "
            f"and testing several times that; shrink the image, or raise db.max_image_pixels "
            f"in the config"))


def read_image(path: str) -> np.ndarray:
    """The image at `path` as (H, W, 3) uint8 BGR; `ImageReadError` if it cannot be read.

    A truncated or corrupt file is an error (OpenCV 4.x rejects truncated
    JPEG and PNG data instead of filling the rest with grey). The size rule
    is not applied again: callers decode images whose size `image_size`
    accepted when their records were made.
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


def image_size(path: str, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) of the stored pixels, from the file's header.

    Reads the header with Pillow (no decoding); a format Pillow does not know
    is decoded with OpenCV instead. `ImageReadError` if neither can read it,
    `ImageTooLargeError` (one) if it has more than `max_pixels` pixels
    (default: db.max_image_pixels's default).
    """
    if not os.path.isfile(path):
        raise ImageReadError(path, not_a_file(path) or "not a file")
    if os.path.getsize(path) == 0:
        raise ImageReadError(path, "the file is empty")
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
    check_pixels(path, width, height, max_pixels)
    return int(width), int(height)


def not_a_file(path: str) -> str:
    """Why `path` is no regular file to read, in words ('' when it is one):
    missing, a link that leads nowhere or in a loop, a folder, a FIFO (which
    would block whoever opens it), a device or a socket."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"a symbolic link to {os.readlink(path)}, which does not exist"
        return "no such file"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link in a loop (it leads back to itself)"
        return e.strerror or str(e)
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a file"
    return "a device, not a file"


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
