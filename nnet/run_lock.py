"""One training run per snapshot folder (README, "Reliability").

    with RunLock(cfg.snapshot_dir, "system.cache_dir", say):   # train.py, train_reader.py
        ...                                                      # RunLockError: another run has it

Two runs writing one folder (`--set system.cache_dir=C` twice, the second
with another learning rate) would write snapshots of both under the same
names and each rewrite log.jsonl: the folder would hold the second run's
weights under the first run's iterations. The first run takes
`<folder>/run.lock`, a small JSON file with its process id, host, start time
and command line; a second run finds it and stops, naming that process.

The lock is made whole and at once: written to a temporary file and linked
to its name (os.link fails when the name exists, on every POSIX file system,
NFS included), so a run never reads half a lock. It is removed when the run
ends, however it ends short of SIGKILL or a power cut; then the next run
finds a lock whose process is gone (same host, no such process, or a process
of that id started at another time: the id was reused) and takes it over,
saying so. A lock of another host cannot be checked from here: the message
names it and says to delete the file once that run is known to be gone.

Holding the lock, the run also removes what a run killed while writing left
in the folder: the hidden temporary files of nnet/snapshot.py
(`.<name>.pkl.<random>.tmp`) and log.jsonl.tmp. No other process writes
them, since no other run holds the folder.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import sys
import tempfile

from outputs import OutputError, check_output_folder

LOCK_NAME = "run.lock"
# What save_snapshot (nnet/snapshot.py) and JsonLog (nnet/engine.py) write
# before renaming: left behind only when the writing process was killed.
_TEMPORARY = re.compile(r"^\..+\.pkl\..+\.tmp$|^log\.jsonl\.tmp$")


class RunLockError(OutputError):
    """Another run holds the folder; the message names it and what to do."""


class RunLock:
    """The lock of `folder` for this process (module doc); `name` says where
    the folder comes from (system.cache_dir), `say` prints a line."""

    def __init__(self, folder: str, name: str, say=print):
        self.folder = os.path.abspath(folder)
        self.path = os.path.join(self.folder, LOCK_NAME)
        self.name, self.say = name, say
        self.pid = None
        self.made = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def acquire(self) -> None:
        """Take the lock, or RunLockError; OutputError when the folder cannot
        be written. Then remove the temporary files of killed runs."""
        check_output_folder(self.folder, self.name)
        self.made = self.folder  # the top folder made here, removed again if left empty
        while not os.path.isdir(os.path.dirname(self.made)):
            self.made = os.path.dirname(self.made)
        if os.path.isdir(self.made):
            self.made = None
        os.makedirs(self.folder, exist_ok=True)
        mine = {"pid": os.getpid(), "host": socket.gethostname(),
                "process_start": _process_start(os.getpid()),
                "started": datetime.datetime.now().isoformat(timespec="seconds"),
                "command": sys.argv}
        fd, temporary = tempfile.mkstemp(prefix=".run.lock.", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(mine, f)
            for _ in range(3):  # a stale lock removed, then taken: normally once
                try:
                    os.link(temporary, self.path)
                    self.pid = os.getpid()
                    break
                except FileExistsError:
                    self._take_over_or_refuse()
            else:
                raise RunLockError(f"{self.path}: could not take the lock of this folder; "
                                   f"another run keeps taking it")
        finally:
            os.remove(temporary)
        removed = remove_stale_temporaries(self.folder)
        if removed:
            self.say(f"removed {len(removed)} partial file(s) of a run killed while writing "
                     f"them: {', '.join(removed)}")

    def _take_over_or_refuse(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                owner = json.load(f)
            pid, host = int(owner["pid"]), str(owner["host"])
        except FileNotFoundError:
            return  # released meanwhile: try again
        except (OSError, ValueError, KeyError, TypeError):
            raise RunLockError(
                f"{self.path} is there but unreadable, so it cannot be told whether another run "
                f"writes to {self.folder}; if none does, delete the file") from None
        since = owner.get("started", "an unknown time")
        if host != socket.gethostname():
            raise RunLockError(
                f"{self.folder} is in use by process {pid} on host {host} (since {since}; "
                f"lock file {self.path}); wait for that run to end, or train into another "
                f"folder (system.cache_dir); if that run is gone, delete the lock file")
        if _alive(pid, owner.get("process_start")):
            command = " ".join(owner.get("command") or [])
            raise RunLockError(
                f"{self.folder} is in use by process {pid} on this host (since {since}"
                + (f": {command}" if command else "") + "); wait for it to end, or train into "
                "another folder (system.cache_dir)")
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        self.say(f"took over {self.path} from process {pid}, which is gone")

    def release(self) -> None:
        """Remove the lock if this process holds it (a forked loader worker
        does not)."""
        if self.pid is None or self.pid != os.getpid():
            return
        self.pid = None
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        if self.made is not None:  # a run refused before it wrote anything leaves no folder
            folder = self.folder
            while True:
                try:
                    os.rmdir(folder)
                except OSError:
                    break  # not empty: the run wrote there
                if folder == self.made:
                    break
                folder = os.path.dirname(folder)


def remove_stale_temporaries(folder: str) -> list[str]:
    """Remove the temporary files writers leave when killed (module doc);
    their names."""
    removed = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if _TEMPORARY.match(name) and os.path.isfile(path):
            os.remove(path)
            removed.append(name)
    return removed


def _alive(pid: int, started) -> bool:
    """Whether process `pid` of this host runs, and is the one that took the
    lock (`started`: its start time then, when known)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return started is None or _process_start(pid) in (None, started)


def _process_start(pid: int):
    """The start time of a process in clock ticks since boot (Linux), which
    tells a reused process id from the original; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            # the command name (field 2) may hold spaces: count from its ')'
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None
