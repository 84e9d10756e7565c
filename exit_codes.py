"""The exit status of every command, one table for all of them: train.py,
test.py, demo.py and `python -m db.ks` (README, "Exit codes").

    0  DONE      it did what was asked
    1  PROBLEMS  it ran and stopped on, or found, a problem in what it was
                 given: training stopped (NaN or infinite loss or weights,
                 out of memory in a step; the last snapshot is intact);
                 db.ks found errors in the file; test.py met an unreadable
                 image part-way; demo.py --strict could not read some images
    2  REFUSED   it did not start: unusable arguments, config, annotation
                 data or snapshot (missing, corrupt, of another network), a
                 training step that cannot fit in memory, or, for demo.py, not
                 one readable image; argparse's usage errors are 2 as well

A script that chains the commands can tell "fix the input" (2) from "look at
the run" (1).
"""

DONE = 0
PROBLEMS = 1
REFUSED = 2
