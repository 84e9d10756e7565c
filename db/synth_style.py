"""Styles of the synthetic 口算 pages: which fonts and print sizes a page may use.

A detector is judged on pages from other generators (other fonts, layouts,
print sizes), so the generator keeps part of its own variety out of the
default pages and draws it only in the "holdout" style:

    python -m db.synth --out data/ks --seed 0                     # style "main": train, val, test
    python -m db.synth --out data/ks --style holdout --holdout 100 --train 0 --val 0 --test 0

- "main" (the default set): every installed font except the held-out
  families; print sizes of FULL_SIZE (problems about 9-45 px tall).
- "holdout": only the held-out families (FreeFont's Sans, Serif and Mono for
  print; Kristi and the sjfonts Delphine and SteveHand for handwriting) and
  smaller print (HOLDOUT_SIZE, problems about 10-16 px tall).

Training on "main" and testing on both says how much of the accuracy carries
over to unseen fonts and sizes (README, Results). When a held-out family is
not installed the held-out style falls back to every font and says so.
"""

from __future__ import annotations

import dataclasses
import os
import re

from db.synth_fonts import FontCatalog
from db.synth_page import FULL_SIZE, HOLDOUT_SIZE, SMALL_SIZE, PageSize

HELD_OUT_PRINTED = re.compile(r"free(sans|serif|mono)", re.IGNORECASE)
HELD_OUT_HANDWRITING = re.compile(r"kristi|delphine|stevehand", re.IGNORECASE)

STYLES = ("main", "holdout")


@dataclasses.dataclass(frozen=True)
class Style:
    name: str
    fonts: FontCatalog
    size: PageSize
    note: str = ""     # what fell back, for the generator's log line


def _split(paths, held_out):
    names = [os.path.basename(p) for p in paths]
    kept = tuple(p for p, n in zip(paths, names) if not held_out.search(n))
    taken = tuple(p for p, n in zip(paths, names) if held_out.search(n))
    return kept, taken


def page_style(name: str, fonts: FontCatalog, small: bool = False) -> Style:
    """The fonts and sizes of style `name` ("main" or "holdout") among `fonts`."""
    if name not in STYLES:
        raise ValueError(f"unknown page style {name!r}; use one of {', '.join(STYLES)}")
    printed_kept, printed_held = _split(fonts.printed, HELD_OUT_PRINTED)
    hand_kept, hand_held = _split(fonts.handwriting, HELD_OUT_HANDWRITING)
    if name == "main":
        # a role whose only fonts are held out keeps them: never fall back to
        # Hershey strokes because of the hold-out
        catalog = FontCatalog(printed_kept or fonts.printed, hand_kept or fonts.handwriting,
                              fonts.cjk)
        return Style(name, catalog, SMALL_SIZE if small else FULL_SIZE)
    missing = [role for role, held in (("printed", printed_held), ("handwriting", hand_held))
               if not held]
    catalog = FontCatalog(printed_held or fonts.printed, hand_held or fonts.handwriting, fonts.cjk)
    note = (f"held-out {' and '.join(missing)} fonts not installed: using every installed one"
            if missing else "")
    return Style(name, catalog, SMALL_SIZE if small else HOLDOUT_SIZE, note)
