"""The exit status of every command, one table for all of them: train.py,
test.py, demo.py, grade.py, train_reader.py, export.py and `python -m db.ks`,
`db.convert`, `nnet.plot` (README, "Exit codes").

    0  DONE      it did what was asked
    1  PROBLEMS  it ran and stopped on, or found, a problem in what it was
                 given: training stopped (NaN or infinite loss or weights,
                 out of memory in a step; the last snapshot is intact);
                 db.ks found errors in the file; test.py met an unreadable
                 image part-way; demo.py --strict could not read some images
    2  REFUSED   it did not start: unusable arguments, config, annotation
                 data or snapshot (missing, corrupt, of another network), a
                 training step that cannot fit in memory, or, for demo.py, not
                 one readable image; an output that cannot be written or
                 would replace an input or a file the command did not write;
                 a snapshot folder another training run holds; argparse's
                 usage errors are 2 as well
  130  INTERRUPTED  stopped by Ctrl-C (SIGINT), 128 + 2 as shells report it;
                 train.py says the last snapshot, which --iter latest resumes

A script that chains the commands can tell "fix the input" (2) from "look at
the run" (1).
"""

DONE = 0
PROBLEMS = 1
REFUSED = 2
INTERRUPTED = 130
