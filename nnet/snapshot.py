"""Writing and reading snapshot files: the one place that touches their bytes.

    save_snapshot(path, state)           # atomic: a reader never sees half a file
    state = load_snapshot(path)          # torch.load(weights_only=True)
    skipped = load_network_weights(net, state_or_path, strict=False)

A config's snapshots are found, checked and loaded into its network by
nnet/checkpoints.py (`find_snapshot`, `read_snapshot`, `load_trained_network`),
on top of these; every problem is a `SnapshotError` naming the file.

A snapshot is written to a temporary file in the destination folder
(`.<name>.<random>.tmp`), flushed and fsync'ed, then renamed onto its name with
os.replace, which is atomic on POSIX and Windows: after a crash, a full disk or
a kill, `path` holds either the previous snapshot or the new one, whole. A
write that fails (a full disk) removes the temporary file and raises the
OSError naming `path`; one killed leaves it, and the next training run in the
folder removes it (nnet/run_lock.py).

Reading uses `torch.load(weights_only=True)`, which unpickles only tensors,
dicts, lists, tuples, strings, numbers, booleans and None, so a snapshot from
elsewhere cannot run code. The same limit applies to what a snapshot may hold:
convert anything else before saving (a numpy random state becomes a tensor
and plain ints; see nnet/py_factory.py `rng_state`), or loading it back fails.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping

import torch


class SnapshotError(RuntimeError):
    """A snapshot that cannot be read (missing, truncated, not a snapshot, or
    holding objects weights_only refuses); the message names the file."""


def save_snapshot(path, state: dict) -> None:
    """Write `state` to `path` atomically (temporary file, flush, fsync, rename)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            sink = _Sink(f)
            try:
                torch.save(state, sink)
            except RuntimeError:
                # torch words a failed write as "[enforce fail at
                # inline_container.cc] unexpected pos": say what the OS said
                if sink.error is None:
                    raise
                raise OSError(sink.error.errno, sink.error.strerror, path) from None
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except OSError as e:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        # name the snapshot, not its temporary (an OSError of a message alone stays as it is)
        if e.errno is not None and e.filename in (None, tmp_path):
            raise OSError(e.errno, e.strerror, path) from None
        raise
    except BaseException:
        # the previous snapshot under `path` is untouched; leave no partial file
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    _fsync_folder(folder)


class _Sink:
    """The file torch.save writes to, keeping the OSError of a failed write
    (a full disk), which torch replaces with a message of its own."""

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.file.flush()


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX; Windows cannot open folders)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_snapshot(path, map_location="cpu"):
    """Read a snapshot written by `save_snapshot` (or any torch.save file of
    tensors and plain containers); tensors go to `map_location`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SnapshotError(f"no snapshot file {path}")
    # Bytes of another kind go to torch.load's unpickler as if they were a
    # pickle, and fail there in any of a dozen ways (KeyError, IndexError,
    # "Unsupported operand", a warning about the protocol): name them here.
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_HEAD))
    if not (zipfile.is_zipfile(path) or head == _LEGACY_HEAD):
        raise SnapshotError(_corrupt(path, "neither the zip archive nor the legacy format "
                                           "that torch.save writes"))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        refused = _refusal(e)
        if refused.startswith(_REFUSED_OBJECT):
            raise SnapshotError(
                f"cannot load snapshot {path}: it holds objects other than tensors and plain "
                f"containers (torch.load with weights_only=True refuses them): {refused}") from e
        raise SnapshotError(_corrupt(path, refused)) from e
    except Exception as e:  # zip, storage and device errors all mean "unusable file"
        detail = f"{type(e).__name__}: {_first_line(e)}"
        # IndexError and KeyError: the unpickler's stack and memo on garbage
        if isinstance(e, (EOFError, UnicodeDecodeError, IndexError, KeyError)) or any(
                sign in str(e) for sign in _DAMAGED_FILE):
            raise SnapshotError(_corrupt(path, detail)) from e
        raise SnapshotError(f"cannot load snapshot {path}: {detail}") from e


# How a legacy torch.save file (_use_new_zipfile_serialization=False) begins:
# its pickled magic number; since PyTorch 1.6 a snapshot is a zip archive.
_LEGACY_HEAD = pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=2)[:-1]  # less its STOP

# How weights_only words a well-formed pickle of a refused object; any other
# unpickling error means bytes that are no pickle at all.
_REFUSED_OBJECT = ("Unsupported global", "Unsupported class", "Trying to call reduce")
# How torch.load words a file cut short or not of its format.
_DAMAGED_FILE = ("PytorchStreamReader", "zip archive", "magic number")


def _corrupt(path, detail):
    return (f"cannot load snapshot {path}: not a snapshot, or a corrupt one (truncated, damaged "
            f"in a copy, or not written by torch.save); use another snapshot, or train again "
            f"({detail})")


def _refusal(error):
    """What a weights_only refusal says was refused (without its boilerplate)."""
    text, marker = str(error), "WeightsUnpickler error:"
    if marker in text:
        detail = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
        return " ".join(detail.split()) or _first_line(error)
    return _first_line(error)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def load_network_weights(net: torch.nn.Module, source, strict: bool = True,
                         name: str | None = None, described: str = "the network") -> list[str]:
    """Load network weights from a state dict, a snapshot dict (its "network"
    entry) or a snapshot file.

    strict=True: every key must match in name and shape (load_state_dict).
    strict=False: loads the tensors whose name and shape match and leaves the
    rest of the network at its current values, e.g. an 80-category MSCOCO
    model into a 6-category network keeps the new heads' initialisation.
    Keys saved from a DataParallel/DDP wrapper ("module." prefix, as the
    original CenterNet's snapshots are) are matched without the prefix.

    Returns the skipped keys, sorted: keys of the network that were not
    loaded and keys of the source that fit nowhere (empty when strict).
    A SnapshotError names the source (`name`, or its path) and the network
    (`described`).
    """
    where = name or "state dict"
    if isinstance(source, (str, os.PathLike)):
        where = name or os.fspath(source)
        source = load_snapshot(source, map_location="cpu")
    if isinstance(source, Mapping) and isinstance(source.get("network"), Mapping):
        source = source["network"]
    if not isinstance(source, Mapping):
        raise SnapshotError(f"{where}: expected a state dict of tensors, got {type(source).__name__}")

    own = net.state_dict()
    prefix = "module."
    if (source and all(k.startswith(prefix) for k in source)
            and not any(k.startswith(prefix) for k in own)):
        source = {k[len(prefix):]: v for k, v in source.items()}

    if strict:
        try:
            net.load_state_dict(source, strict=True)
        except RuntimeError as e:
            raise SnapshotError(f"{where} does not fit {described}: {e}") from None
        return []

    fitting = {k: v for k, v in source.items()
               if k in own and isinstance(v, torch.Tensor) and v.shape == own[k].shape}
    net.load_state_dict(fitting, strict=False)
    skipped = (set(own) - set(fitting)) | (set(source) - set(fitting))
    return sorted(skipped)
