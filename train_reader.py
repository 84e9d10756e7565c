#!/usr/bin/env python
"""Train the recognizer that grade.py reads problems with (reader/, issue 14).

    python train_reader.py CRNN-tiny                      # config/reader/CRNN-tiny.json
    python train_reader.py CRNN-tiny --max-iter 100       # a short run (the schedule stays)
    python train_reader.py CRNN-tiny --time-budget 9      # at most 9 minutes (grade.sh)
    python train_reader.py CRNN-tiny --set system.max_iter=4000 --set reader.hidden=128

It trains on the ground-truth boxes of ks_<train_split>_text.jsonl (written by
`python -m db.synth` beside ks_<split>.txt; docs/ks-format.md), cut as
reader/crops.py cuts them and jittered as the detector's boxes are, and
writes snapshots to <cache_dir>/reader/<name>/ (reader/engine.py). At each
snapshot it prints the exact-match accuracy of the printed part and of the
answer on the first system.val_pages validation pages.

One run at a time per snapshot folder (nnet/run_lock.py). A run that its
--time-budget ends before half its steps says so, with the step rate.

Exit status (exit_codes.py): 0 done; 1 the loss became NaN or infinite, or a
snapshot could not be written (a full disk); 2 unusable arguments, config or
data, a snapshot folder that cannot be written or that another run holds;
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import math
import sys

from config import ConfigError
from exit_codes import DONE, INTERRUPTED, PROBLEMS, REFUSED


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train the 口算 problem recognizer (CRNN, CTC).")
    parser.add_argument("config", help="reader config name (config/reader/<name>.json) or path")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="stop after this many steps (the learning-rate schedule stays that "
                             "of system.max_iter)")
    parser.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                        help="end training after this many minutes, with a snapshot; the "
                             "learning rate then decays with the time as well as the steps")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="change one setting, e.g. --set system.max_iter=4000 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.max_iter is not None and args.max_iter < 1:
        parser.error(f"--max-iter must be >= 1, got {args.max_iter}")
    if args.time_budget is not None and not (math.isfinite(args.time_budget)
                                             and args.time_budget > 0):
        parser.error(f"--time-budget must be a number of minutes > 0, got {args.time_budget}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from db import ImageReadError
    from nnet.device import choose_device
    from outputs import OutputError, why_not_writable
    from reader.config import load_reader_config, parse_reader_assignments
    from reader.engine import train_reader
    from reader.text import TextFileError

    cfg = None
    try:
        cfg = load_reader_config(args.config, overrides=parse_reader_assignments(args.set) or None)
        device = choose_device(args.device)
        train_reader(cfg, max_iter=args.max_iter, device=device, progress=not args.no_progress,
                     time_budget=args.time_budget and args.time_budget * 60.0)
    except (ConfigError, TextFileError, OutputError) as e:
        print(f"train_reader.py: {e}", file=sys.stderr)
        return REFUSED
    except FloatingPointError as e:
        print(f"train_reader.py: {e}", file=sys.stderr)
        return PROBLEMS
    except ImageReadError as e:  # an OSError too, but of reading a page
        print(f"train_reader.py: {e}", file=sys.stderr)
        return PROBLEMS
    except OSError as e:  # the folder was checked at the start: a disk filling up
        print(f"train_reader.py: stopped: {why_not_writable(e)} writing {e.filename}; the "
              f"snapshots written before are intact", file=sys.stderr)
        return PROBLEMS
    except KeyboardInterrupt:
        where = f"; the snapshots written so far are in {cfg.snapshot_dir}" if cfg else ""
        print(f"train_reader.py: interrupted{where} (a run does not resume: train again)",
              file=sys.stderr)
        return INTERRUPTED
    return DONE


if __name__ == "__main__":
    sys.exit(main())
