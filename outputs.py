"""Where a command may write, checked before it starts: the one place that
decides whether an output path can be written and may be replaced
(README, "Reliability").

    check_output_folder(folder, "--out")        # OutputError unless files can be made there
    plan = OutputPlan("demo.py", out, inputs)    # demo.py, grade.py
    plan.check(["a.jpg", "a.json", ...])         # before the work: OutputError naming the path
    plan.begin(); ...; plan.wrote("a.jpg", "a.json"); ...; plan.finish()
    stems = unique_stems(["a", "a", "a_2"])      # ["a", "a_3", "a_2"]

Folders: a folder can be written when it exists and a file can be created
in it, or when it can be made (its nearest existing ancestor is a folder in
which a file can be created). Permission bits say nothing to root and
nothing of a read-only mount, so the check creates and removes a small file
instead of asking os.access.

Files of demo.py and grade.py: they write `<stem>.jpg` and `<stem>.json` per
image into the user's `--out`, which may hold anything, the pictures
themselves included. An output path is refused when it is one of the inputs
(an image, the ks list, its side file), or when a file is there that the
tool did not write. A tool tells its own files by a manifest it keeps in the
folder, `.<tool>-outputs.json` (`.demo-outputs.json`, `.grade-outputs.json`):
every file it wrote there with the SHA-256 of what it wrote. A file listed
there and unchanged since is the tool's own and may be replaced by a later
run; one that is not listed, or that was changed since (its bytes differ),
is the user's and is never touched. Files the next run is about to write are
listed before any is written (with no digest yet), so a run killed half-way
leaves nothing the following run would refuse.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile

SHOWN = 3  # refused paths named in the one line of an OutputError; the rest are counted


class OutputError(Exception):
    """An output path that cannot or may not be written; the message names it
    and says what to do. Raised before any work, so nothing has changed."""


def why_not_writable(error: OSError) -> str:
    """An OSError of writing, in words for a person."""
    reasons = {errno.EROFS: "it is on a read-only file system",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is used up",
               errno.ENOTDIR: "a part of the path is a file, not a folder"}
    return reasons.get(error.errno, error.strerror or str(error))


def check_output_folder(folder: str, name: str) -> None:
    """OutputError unless files can be created in `folder` (made when missing);
    `name` says where the folder comes from (`--out`, `system.cache_dir`).
    Leaves nothing behind: a missing folder is not made here."""
    why = _folder_problem(os.path.abspath(folder))
    if why:
        raise OutputError(f"{name} {os.path.abspath(folder)} cannot be written: {why}")


def check_output_file(path: str, name: str) -> None:
    """OutputError unless the file `path` can be written (its folder made when
    missing); `name` says where the path comes from (`--out`)."""
    path = os.path.abspath(path)
    why = (f"{path} is a folder" if os.path.isdir(path)
           else _folder_problem(os.path.dirname(path)))
    if why:
        raise OutputError(f"{name} {path} cannot be written: {why}")


def _folder_problem(folder: str) -> str:
    """Why no file can be created in `folder` (absolute), or ''."""
    existing = folder
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if os.path.islink(existing) and not os.path.exists(existing):
        return f"{existing} is a symbolic link that leads nowhere"
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        where = "" if existing == folder else f" (in {existing}, where it would be made)"
        return why_not_writable(e) + where
    return ""


def unique_stems(stems: list[str], reserved=()) -> list[str]:
    """`stems` made unique: the first of each keeps its own, the others get
    _2, _3, ... chosen so as to be no other image's own stem (a.jpg, a.png and
    a_2.jpg give a, a_3 and a_2) and none of `reserved` (summary: grade.py's
    summary.json). Compared without case, as on the file systems of macOS and
    Windows, where A.jpg and a.jpg are one file."""
    claimed = {s.casefold() for s in stems} | {s.casefold() for s in reserved}
    used = {s.casefold() for s in reserved}
    unique = []
    for stem in stems:
        chosen, n = stem, 1
        # a number added must not make another image's own name
        while chosen.casefold() in used or (n > 1 and chosen.casefold() in claimed):
            n += 1
            chosen = f"{stem}_{n}"
        used.add(chosen.casefold())
        claimed.add(chosen.casefold())
        unique.append(chosen)
    return unique


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OutputPlan:
    """The files one run of `tool` writes into `out_dir`, checked against the
    inputs and against what the folder holds (module doc), and its manifest."""

    def __init__(self, tool: str, out_dir: str, inputs):
        self.tool = tool
        self.out_dir = os.path.abspath(out_dir)
        self.manifest_path = os.path.join(self.out_dir, manifest_name(tool))
        self.inputs = {os.path.realpath(p): p for p in inputs}
        self.planned: list[str] = []
        self.files: dict[str, str | None] = {}

    def check(self, relative_paths) -> None:
        """OutputError, naming the first paths and counting the rest, unless
        every one of `relative_paths` (below `out_dir`) may be written."""
        check_output_folder(self.out_dir, "--out")
        self.files = self._read_manifest()
        problems = []
        for relative in relative_paths:
            why = self._problem(relative)
            if why:
                problems.append(why)
        if problems:
            more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
            raise OutputError(f"--out {self.out_dir}: " + "; ".join(problems[:SHOWN]) + more
                              + "; nothing was written: choose another --out, or move those "
                                "files away")
        self.planned = list(relative_paths)

    def _problem(self, relative: str) -> str:
        path = os.path.join(self.out_dir, relative)
        folder = os.path.dirname(path)
        while folder != self.out_dir and not os.path.isdir(folder):
            if os.path.lexists(folder):
                return f"{folder} is a file, and {relative} would go in a folder of that name"
            folder = os.path.dirname(folder)
        source = self.inputs.get(os.path.realpath(path))
        if source is not None:
            return f"{path} would replace the input {source}"
        if not os.path.lexists(path):
            return ""
        if os.path.isdir(path):
            return f"{path} is a folder"
        if os.path.islink(path):
            return f"{path} is a symbolic link, which {self.tool} did not make"
        if relative not in self.files:
            return f"{path} exists and {self.tool} did not write it"
        digest = self.files[relative]
        if digest is not None and file_digest(path) != digest:
            return f"{path} was changed since {self.tool} wrote it"
        return ""

    def _read_manifest(self) -> dict:
        try:
            with open(self.manifest_path, encoding="utf-8") as f:
                files = json.load(f).get("files", {})
        except (OSError, ValueError, AttributeError):
            return {}  # none, or unreadable: then no file of the folder is known to be ours
        return {k: v for k, v in files.items() if isinstance(k, str)
                and (v is None or isinstance(v, str))} if isinstance(files, dict) else {}

    def begin(self) -> None:
        """Make the folder and list the planned files in the manifest, before
        any of them is written."""
        os.makedirs(self.out_dir, exist_ok=True)
        for relative in self.planned:
            self.files[relative] = None
        self._save()

    def wrote(self, *relative_paths: str) -> None:
        """Record what was just written (its digest) in the manifest."""
        for relative in relative_paths:
            self.files[relative] = file_digest(os.path.join(self.out_dir, relative))
        self._save()

    def finish(self) -> None:
        """Drop planned files that were not written (an image that could not
        be decoded); keep the digest of the tool's files from earlier runs."""
        for relative, digest in list(self.files.items()):
            path = os.path.join(self.out_dir, relative)
            if digest is None:
                if os.path.isfile(path) and not os.path.islink(path):
                    self.files[relative] = file_digest(path)
                else:
                    del self.files[relative]
        self._save()

    def _save(self) -> None:
        temporary = self.manifest_path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump({"tool": self.tool,
                       "about": f"the files {self.tool} wrote in this folder, with the SHA-256 "
                                f"of each; it replaces only these, and only while unchanged",
                       "files": dict(sorted(self.files.items()))}, f, ensure_ascii=False,
                      indent=1)
        os.replace(temporary, self.manifest_path)


def manifest_name(tool: str) -> str:
    """`.demo-outputs.json` for demo.py."""
    return f".{os.path.splitext(tool)[0]}-outputs.json"
