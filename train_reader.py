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

Exit status (exit_codes.py): 0 done; 1 the loss became NaN or infinite; 2
unusable arguments, config or data.
"""

from __future__ import annotations

import argparse
import sys

from config import ConfigError
from exit_codes import DONE, PROBLEMS, REFUSED


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
    if args.time_budget is not None and args.time_budget <= 0:
        parser.error(f"--time-budget must be > 0 minutes, got {args.time_budget}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from nnet.device import choose_device
    from reader.config import load_reader_config, parse_reader_assignments
    from reader.engine import train_reader
    from reader.text import TextFileError

    try:
        cfg = load_reader_config(args.config, overrides=parse_reader_assignments(args.set) or None)
        device = choose_device(args.device)
        train_reader(cfg, max_iter=args.max_iter, device=device, progress=not args.no_progress,
                     time_budget=args.time_budget and args.time_budget * 60.0)
    except (ConfigError, TextFileError) as e:
        print(f"train_reader.py: {e}", file=sys.stderr)
        return REFUSED
    except FloatingPointError as e:
        print(f"train_reader.py: {e}", file=sys.stderr)
        return PROBLEMS
    return DONE


if __name__ == "__main__":
    sys.exit(main())
