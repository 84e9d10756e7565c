"""The real pictures the benchmarks measure on, when this machine has them:
`../shared/real/` beside the project (read its README: for measuring only,
never for training, validation, early stopping or choosing a threshold).

Nothing made from them goes into the project's tree, not even its ignored
folders: pages composed of real crops and resized copies of real photos are
written to a temporary folder outside it (`RealSets` removes it), and only
numbers are reported.

    with RealSets() as real:
        real.missing                   # why a set is not there, or []
        real.composed                  # data folder of 20 pages of real problems (ks_val.txt)
        real.labelled                  # the 4 photos with hand-made boxes, at their own size
        real.labelled_resized(1440)    # the same, long side 1440 px
        real.photos, real.photos_resized(1440)   # the 20 unlabelled photos
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import cv2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
REAL = os.path.join(SHARED, "real")
REAL_PAGES_TOOL = os.path.join(SHARED, "tools", "real_pages.py")
# the pages of issue 23: `real_pages.py crops-dev paper OUT --pages 20 --seed 7`
COMPOSED_PAGES, COMPOSED_SEED = 20, 7
RESIZED_QUALITY = 95


class RealSets:
    def __init__(self):
        self.missing: list[str] = []
        self._tmp = None
        self.composed = self.labelled = self.photos = None

    def __enter__(self):
        self._tmp = tempfile.mkdtemp(prefix="real-sets-")
        crops, paper = os.path.join(REAL, "crops-dev"), os.path.join(REAL, "paper")
        if os.path.isdir(crops) and os.path.isdir(paper) and os.path.isfile(REAL_PAGES_TOOL):
            out = os.path.join(self._tmp, "composed")
            subprocess.run([sys.executable, REAL_PAGES_TOOL, crops, paper, out, "--pages",
                            str(COMPOSED_PAGES), "--seed", str(COMPOSED_SEED)], check=True,
                           cwd=ROOT, stdout=subprocess.DEVNULL)
            self.composed = out
        else:
            self.missing.append(f"pages of real problems: {crops}, {paper} or "
                                f"{REAL_PAGES_TOOL} is not on this machine")
        labelled = os.path.join(REAL, "photos-labelled-dev")
        if os.path.isfile(os.path.join(labelled, "ks_val.txt")):
            self.labelled = labelled
        else:
            self.missing.append(f"labelled real photos: no {labelled}/ks_val.txt on this machine")
        photos = os.path.join(REAL, "photos-dev")
        if os.path.isdir(photos):
            self.photos = photos
        else:
            self.missing.append(f"unlabelled real photos: no {photos} on this machine")
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self._tmp, ignore_errors=True)

    def labelled_resized(self, long_side: int) -> str:
        """photos-labelled-dev with each photo's long side `long_side` px (boxes
        scaled along): a data folder with its ks_val.txt."""
        out = os.path.join(self._tmp, f"labelled-{long_side}")
        if not os.path.isdir(out):
            resize_ks(os.path.join(self.labelled, "ks_val.txt"), out, long_side)
        return out

    def photos_resized(self, long_side: int) -> str:
        """photos-dev with each photo's long side `long_side` px: a folder."""
        out = os.path.join(self._tmp, f"photos-{long_side}")
        if not os.path.isdir(out):
            os.makedirs(out)
            for name in sorted(os.listdir(self.photos)):
                image = cv2.imread(os.path.join(self.photos, name))
                if image is None:
                    continue
                cv2.imwrite(os.path.join(out, name), _resized(image, long_side),
                            [cv2.IMWRITE_JPEG_QUALITY, RESIZED_QUALITY])
        return out


def _resized(image, long_side):
    ratio = long_side / max(image.shape[:2])
    size = (round(image.shape[1] * ratio), round(image.shape[0] * ratio))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if ratio < 1 else cv2.INTER_CUBIC)


def resize_ks(listing: str, out_dir: str, long_side: int) -> str:
    """The pictures of a ks file resized to `long_side` px, boxes scaled along,
    with ks_val.txt, in `out_dir`."""
    from db.ks import inspect_ks_file

    os.makedirs(os.path.join(out_dir, "images"))
    report = inspect_ks_file(listing, categories=10 ** 6, decode=False)
    lines = []
    for i, line in enumerate(report.lines):
        image = cv2.imread(line.path)
        resized = _resized(image, long_side)
        fy, fx = resized.shape[0] / image.shape[0], resized.shape[1] / image.shape[1]
        name = f"images/{i:03d}.jpg"
        cv2.imwrite(os.path.join(out_dir, name), resized, [cv2.IMWRITE_JPEG_QUALITY, RESIZED_QUALITY])
        boxes = [f"{x1 * fx:.2f},{y1 * fy:.2f},{x2 * fx:.2f},{y2 * fy:.2f},{c}"
                 for (x1, y1, x2, y2), c in zip(line.boxes, line.classes)]
        lines.append(" ".join([name, *boxes]))
    with open(os.path.join(out_dir, "ks_val.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return out_dir
