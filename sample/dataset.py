"""Training and validation examples as torch Datasets, and the DataLoaders
that feed train.py.

Randomness and order (why a resume is exact):
every training example is named by a key (iteration, slot): `iteration` is
1-based, `slot` is its place in the GLOBAL batch (0 .. batch_size - 1). From
the key alone follow
- the image: example number (iteration - 1) * batch_size + slot of an endless
  sequence of epochs, each a permutation of the split seeded by
  (system.seed, epoch);
- the augmentation: a numpy Generator seeded by (system.seed, iteration, slot).
So the examples of an iteration do not depend on the number of DataLoader
workers, on which worker builds them, or on what ran before: a run resumed at
iteration k sees exactly the batches an uninterrupted run sees after k.

Sharding (instead of torch's DistributedSampler): under torchrun each of W
processes takes a contiguous share of the global batch, rank r the slots
[r * b / W, (r + 1) * b / W). DistributedSampler deals out a fixed epoch
index list rank by rank and needs set_epoch plus a skip to resume mid-epoch;
naming examples by (iteration, slot) makes the global batch of every
iteration the same for any W (a 2-GPU run trains on the same examples as a
1-GPU run of the same global batch) and makes resuming a matter of starting
the sampler at k + 1.

Validation examples are un-augmented (`augment=False`, see
sample/kp_detection.py) and therefore fixed: the whole validation split
(or its first `system.val_images` images), each process taking a contiguous
share.

Dense pages: the number of objects of every image is checked against
`db.max_tag_len` when a dataset is built, before any training step, so no
worker fails half-way through a run.
"""

from __future__ import annotations

import os
import random
import sys

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from config import ConfigError, heatmap_channels
from db.image_io import read_image

from . import sampling_function

# Independent random streams derived from system.seed.
_ORDER_STREAM = 0
_AUGMENT_STREAM = 1
_VALIDATION_STREAM = 2

PREFETCH_FACTOR = 2  # batches each worker prepares ahead (DataLoader's default)


class TooManyObjectsError(ConfigError):
    """An image holds more objects than db.max_tag_len allows."""


def check_max_tag_len(db, cfg) -> None:
    """Fail, naming the densest images, if any image has more than
    db.max_tag_len objects."""
    limit = cfg.db.max_tag_len
    densest = db.densest(5, above=limit)
    if not densest:
        return
    over = int((db.object_counts() > limit).sum())
    lines = []
    for count, record in densest:
        where = f"{db.source}:{record.source_line}" if record.source_line else db.source
        lines.append(f"  {count} objects: {record.path} ({where})")
    more = f"\n  ... and {over - len(densest)} more" if over > len(densest) else ""
    raise TooManyObjectsError(
        f"{cfg.path}: db.max_tag_len is {limit}, but {over} image(s) of {db.source} "
        f"have more objects, the most first:\n" + "\n".join(lines) + more +
        f"\nraise db.max_tag_len to at least {densest[0][0]} in {cfg.path}")


class TrainingExamples(Dataset):
    """Augmented examples keyed by (iteration, slot); see the module docstring."""

    def __init__(self, db, cfg):
        if len(db) == 0:
            raise ConfigError(f"{cfg.path}: system.train_split: {db.source} holds no images")
        check_max_tag_len(db, cfg)
        self.db = db
        self.cfg = cfg
        self.sample = sampling_function(cfg)
        self._orders = {}  # epoch -> permutation, the last two epochs

    def __len__(self) -> int:
        return len(self.db)

    def image_index(self, iteration: int, slot: int) -> int:
        position = (iteration - 1) * self.cfg.system.batch_size + slot
        epoch, place = divmod(position, len(self.db))
        if epoch not in self._orders:
            if len(self._orders) >= 2:
                self._orders.pop(min(self._orders))
            order_rng = np.random.default_rng([self.cfg.system.seed, _ORDER_STREAM, epoch])
            self._orders[epoch] = order_rng.permutation(len(self.db))
        return int(self._orders[epoch][place])

    def record_for(self, iteration: int, slot: int):
        return self.db.records[self.image_index(iteration, slot)]

    def rng_for(self, iteration: int, slot: int) -> np.random.Generator:
        return np.random.default_rng([self.cfg.system.seed, _AUGMENT_STREAM, iteration, slot])

    def __getitem__(self, key) -> dict:
        iteration, slot = key
        record = self.record_for(iteration, slot)
        return self.sample(read_image(record.path), record, self.cfg,
                           self.rng_for(iteration, slot), augment=True)


class ValidationExamples(Dataset):
    """Un-augmented examples of a split, by image index."""

    def __init__(self, db, cfg):
        check_max_tag_len(db, cfg)
        self.db = db
        self.cfg = cfg
        self.sample = sampling_function(cfg)

    def __len__(self) -> int:
        return len(self.db)

    def __getitem__(self, index: int) -> dict:
        record = self.db.records[index]
        # augment=False draws nothing; the generator is only part of the signature
        rng = np.random.default_rng([self.cfg.system.seed, _VALIDATION_STREAM, index])
        return self.sample(read_image(record.path), record, self.cfg, rng, augment=False)


class GlobalBatchShards(Sampler):
    """Batches of keys (iteration, slot) for iterations first..last: this
    process's contiguous share of each global batch."""

    def __init__(self, first_iteration: int, last_iteration: int, batch_size: int,
                 rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ConfigError(f"system.batch_size {batch_size} (the global batch) does not "
                              f"split evenly across {world_size} processes")
        share = batch_size // world_size
        self.first, self.last = first_iteration, last_iteration
        self.slots = range(rank * share, (rank + 1) * share)

    def __len__(self) -> int:
        return max(0, self.last - self.first + 1)

    def __iter__(self):
        for iteration in range(self.first, self.last + 1):
            yield [(iteration, slot) for slot in self.slots]


def validation_shard_batches(num_images: int, batch_size: int, rank: int = 0,
                             world_size: int = 1) -> list[list[int]]:
    """This process's contiguous share of images 0..num_images-1, in batches."""
    start = rank * num_images // world_size
    stop = (rank + 1) * num_images // world_size
    return [list(range(i, min(i + batch_size, stop))) for i in range(start, stop, batch_size)]


# --------------------------------------------------------------------------
# DataLoaders
# --------------------------------------------------------------------------

def _init_worker(worker_id: int) -> None:
    # OpenCV's and torch's own thread pools in every worker would fight the
    # training process for cores; the per-example generators do not need
    # seeding, global generators are seeded for any library that uses them.
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)


def example_bytes(cfg) -> int:
    """Bytes of one collated example (image and every target)."""
    db = cfg.db
    (in_h, in_w), (out_h, out_w) = db.input_size, db.output_sizes[0]
    corner_channels, center_channels = heatmap_channels(db)
    boxes = db.classes_from == "boxes"
    heatmaps = (2 * corner_channels + center_channels) * out_h * out_w * 4
    per_object = 3 * 8 + 1 + 3 * 2 * 4  # tags int64, mask bool, offsets float32
    per_object += 2 * 4 if db.center_size else 0  # log sizes
    to_classify = db.boxes_per_image * (4 * 4 + 8) if boxes else 0  # rois, classes
    if boxes and db.box_scale > 1:  # the picture the box classifier reads (box_image)
        to_classify += 3 * int(in_h * db.box_scale) * int(in_w * db.box_scale) * 4
    return 3 * in_h * in_w * 4 + heatmaps + db.max_tag_len * per_object + to_classify


def workers_that_fit(cfg, per_process_batch: int, workers: int, processes: int = 1,
                     shm_dir: str = "/dev/shm") -> tuple[int, str | None]:
    """Worker processes whose batches fit in shared memory, and a note if fewer
    than asked.

    Workers hand batches over through shared memory (/dev/shm); a container's
    default of 64 MB makes them die with a bus error. Every worker keeps
    PREFETCH_FACTOR batches in flight; twice that is asked for, as margin.
    """
    if workers == 0 or not os.path.isdir(shm_dir):
        return workers, None
    stats = os.statvfs(shm_dir)
    free = stats.f_bavail * stats.f_frsize
    per_worker = example_bytes(cfg) * per_process_batch * PREFETCH_FACTOR * 2 * processes
    if per_worker * workers <= free:
        return workers, None
    fit = int(free // per_worker)
    mib = 2 ** 20
    return fit, (f"{shm_dir} has {free / mib:.0f} MiB free, {workers} workers need about "
                 f"{per_worker * workers / mib:.0f} MiB: using {fit} workers (enlarge {shm_dir}, "
                 f"e.g. docker --shm-size, to use more)")


def _loader(dataset, batch_sampler, workers: int, pin_memory: bool) -> DataLoader:
    options = {}
    if workers > 0:
        options = {"worker_init_fn": _init_worker, "prefetch_factor": PREFETCH_FACTOR}
    return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers,
                      pin_memory=pin_memory, **options)


def training_loader(dataset: TrainingExamples, first_iteration: int, last_iteration: int,
                    rank: int = 0, world_size: int = 1, workers: int = 0,
                    pin_memory: bool = False) -> DataLoader:
    """One batch per iteration first..last: this process's share of the global batch."""
    batches = GlobalBatchShards(first_iteration, last_iteration, dataset.cfg.system.batch_size,
                                rank, world_size)
    return _loader(dataset, batches, workers, pin_memory)


def validation_loader(dataset: ValidationExamples, rank: int = 0, world_size: int = 1,
                      workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """This process's share of the fixed validation set, in per-process batches."""
    cfg = dataset.cfg
    limit = cfg.system.val_images
    num_images = len(dataset) if limit == 0 else min(limit, len(dataset))
    batches = validation_shard_batches(num_images, cfg.system.batch_size // world_size,
                                       rank, world_size)
    return _loader(dataset, batches, workers, pin_memory)


def print_note(note: str | None) -> None:
    if note:
        print(note, file=sys.stderr, flush=True)
