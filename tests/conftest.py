"""Shared pytest fixtures.

`tiny_ks_dir`: a small synthetic 口算 set (db/synth.py) in the ks format
(docs/ks-format.md), generated once per test session.
"""

import pytest

from db.synth import generate

TINY_KS_COUNTS = {"train": 6, "val": 3, "test": 3}


@pytest.fixture(scope="session")
def tiny_ks_dir(tmp_path_factory) -> str:
    """Folder (a str) holding ks_train.txt (6 pages), ks_val.txt and ks_test.txt (3 pages each).

    Small pages (256-400 px wide, 8-30 problems), seed 0, images under images/<split>/
    with Chinese file names. Shared by the whole session: do not modify it.
    """
    out_dir = tmp_path_factory.mktemp("tiny_ks")
    generate(out_dir, TINY_KS_COUNTS, seed=0, workers=1, small=True, log=lambda message: None)
    return str(out_dir)
