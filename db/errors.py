"""The errors of the dataset readers, and how a problem is worded.

A reader never stops at the first mistake: it collects every `Problem`
(`file:line: reason`) in one pass and raises one `AnnotationError` that lists
them all, so a user fixes a file in one round (ks-format.md, "What bad input
gets"). `ImageReadError` is the one error of reading a single image;
`ImageTooLargeError`, one of them, says it is over db.max_image_pixels.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One mistake (or warning) at one place of an annotation file.

    `line` is 1-based; 0 when the place is not a line (a JSON entry, the
    file as a whole), and then `where` may name the entry.
    """

    file: str
    line: int
    message: str
    where: str = ""

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line > 0 else self.file
        if self.where:
            place += f" ({self.where})"
        return f"{place}: {self.message}"


class AnnotationError(ValueError):
    """An annotation file that cannot be used; the message lists every problem.

    `.source` is the annotation file and `.problems` the list of `Problem`s.
    """

    def __init__(self, source: str, problems: list[Problem], hint: str = ""):
        self.source = source
        self.problems = list(problems)
        self.hint = hint
        lines = [f"{source}: {plural(len(self.problems), 'problem')}"
                 + (f" ({hint})" if hint else "") + ":"]
        lines += [f"  {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))

    def __reduce__(self):
        # DataLoader workers and multiprocessing pickle exceptions.
        return (type(self), (self.source, self.problems, self.hint))


class ImageReadError(OSError):
    """An image file that is missing or cannot be decoded."""

    def __init__(self, path: str, reason: str | None = None):
        self.path = path
        self.reason = reason
        # With one argument the text is already a full message: that is how
        # torch's DataLoader re-raises a worker's exception.
        super().__init__(path if reason is None else f"cannot read image {path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class ImageTooLargeError(ImageReadError):
    """An image with more pixels than db.max_image_pixels (db/image_io.py)."""


def split_keys(cfg, split: str) -> str:
    """The config keys that name `split` (for messages): e.g. 'system.val_split'."""
    keys = [f"system.{role}_split" for role in ("train", "val", "test")
            if cfg.system[f"{role}_split"] == split]
    return " / ".join(keys) if keys else "system.train_split / val_split / test_split"


def plural(count: int, word: str) -> str:
    """'1 image', '3 images'."""
    return f"{count:,} {word}{'s' if count != 1 else ''}"
