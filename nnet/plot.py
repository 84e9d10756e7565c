"""Training curves: a picture of a run's log.jsonl (train.py writes one line
per iteration, validation losses every system.val_iter, validation AP every
system.val_ap_iter).

    python -m nnet.plot cache/nnet/CenterNet-tiny/log.jsonl     # -> training_curves.png beside it
    python -m nnet.plot LOG --out curves.png

One panel per loss term (`models.py_utils.kp.LOSS_TERMS`: total, focal, pull,
push, offsets), the training values faint with their moving average over
them and the validation loss as dots; the learning rate (log scale);
validation AP and AP50; images per second. train.py draws it when training
ends (train.py, PeriodicWork.finish). Drawn with matplotlib's object API
(`matplotlib.figure.Figure`, rendered by Agg), so it needs no display and
touches no global pyplot state.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

CURVES_FILE = "training_curves.png"

# Panels beside the loss terms: (log key, label) pairs drawn together.
_AP_KEYS = (("val_AP", "AP"), ("val_AP50", "AP50"))
_LOSS_TITLES = {"total": "total loss", "focal": "focal (heatmaps)", "pull": "pull (embeddings)",
                "push": "push (embeddings)", "regr": "offsets (smooth L1)"}


class LogError(ValueError):
    """A log that holds nothing to draw; the message names the file."""


def read_log(path: str) -> list[dict]:
    """The iteration lines of a log.jsonl, in file order; a line cut short
    when a run was killed (the last one) is skipped, as train.py's resume does.
    A line whose "iteration" is not a number is no line train.py writes: a
    LogError naming it."""
    entries = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    entry = json.loads(line)
                except (json.JSONDecodeError, RecursionError):
                    continue
                if isinstance(entry, dict) and "iteration" in entry and "event" not in entry:
                    iteration = entry["iteration"]
                    if not (isinstance(iteration, (int, float)) and not isinstance(iteration, bool)
                            and math.isfinite(iteration)):
                        raise LogError(f"{path}:{number}: \"iteration\" is "
                                       f"{json.dumps(iteration)[:40]}, not a number: this is not "
                                       f"a log.jsonl that train.py wrote, or it was edited")
                    entries.append(entry)
    except UnicodeDecodeError as e:
        raise LogError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset "
                       f"{e.start}): not a log.jsonl that train.py wrote") from None
    return entries


def series(entries: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(iterations, values) of the lines that hold a finite `key`."""
    points = [(e["iteration"], e[key]) for e in entries
              if isinstance(e.get(key), (int, float)) and math.isfinite(e[key])]
    if not points:
        return np.zeros(0), np.zeros(0)
    iterations, values = zip(*points)
    return np.asarray(iterations, dtype=np.float64), np.asarray(values, dtype=np.float64)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of the last `window` values at each point (fewer at the start),
    so a curve of a few hundred noisy steps shows its trend."""
    if window <= 1 or len(values) == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_log(log_path: str, out_path: str | None = None) -> str:
    """Draw the curves of `log_path` into `out_path` (default
    training_curves.png beside the log); returns the picture's path."""
    from matplotlib.figure import Figure

    from models.py_utils.kp import LOSS_TERMS

    entries = read_log(log_path)
    if not entries:
        raise LogError(f"{log_path}: no training iterations in this log")
    out_path = out_path or os.path.join(os.path.dirname(os.path.abspath(log_path)), CURVES_FILE)

    panels = len(LOSS_TERMS) + 3  # + learning rate, validation AP, images/s
    columns = 4
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    steps = len(entries)
    window = max(1, steps // 50)

    for ax, name in zip(axes, LOSS_TERMS):
        iterations, values = series(entries, name)
        if len(values):
            ax.plot(iterations, values, color="tab:blue", alpha=0.25, linewidth=0.8)
            ax.plot(iterations, moving_average(values, window), color="tab:blue",
                    label=f"train (mean of {window})" if window > 1 else "train")
        val_iterations, val_values = series(entries, f"val_{name}")
        if len(val_values):
            ax.plot(val_iterations, val_values, "o-", color="tab:orange", markersize=3,
                    label="validation")
        _finish(ax, _LOSS_TITLES.get(name, name), has_data=len(values) + len(val_values) > 0)

    rest = iter(axes[len(LOSS_TERMS):])
    ax = next(rest)
    iterations, values = series(entries, "lr")
    if len(values):
        ax.plot(iterations, values, color="tab:green")
        # a log axis over one value (a single iteration, a constant rate)
        # has no height: matplotlib warns and widens it; linear shows it plainly
        if (values > 0).all() and values.max() > values.min():
            ax.set_yscale("log")
    _finish(ax, "learning rate", has_data=len(values) > 0, legend=False)

    ax = next(rest)
    drawn = 0
    for key, label in _AP_KEYS:
        iterations, values = series(entries, key)
        if len(values):
            ax.plot(iterations, values, "o-", markersize=3, label=label)
            drawn += 1
    _finish(ax, "validation AP", has_data=drawn > 0,
            empty="no validation AP in this log\n(system.val_ap_iter is 0)")

    ax = next(rest)
    iterations, values = series(entries, "images_per_s")
    if len(values):
        ax.plot(iterations, moving_average(values, window), color="tab:gray")
    _finish(ax, "images / s", has_data=len(values) > 0, legend=False)

    for ax in rest:
        ax.set_visible(False)
    figure.suptitle(f"{os.path.basename(os.path.dirname(os.path.abspath(log_path)))}: "
                    f"{steps} iterations ({int(entries[0]['iteration'])}-"
                    f"{int(entries[-1]['iteration'])})")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    figure.savefig(out_path, dpi=100)
    return out_path


def _finish(ax, title, has_data, legend=True, empty="not in this log"):
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("iteration", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    if not has_data:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes,
                color="gray", fontsize=9)
    elif legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper right")  # "best" searches every point: slow on long runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nnet.plot",
        description="Draw the training curves of a log.jsonl written by train.py.")
    parser.add_argument("log", help="the log, e.g. cache/nnet/CenterNet-tiny/log.jsonl")
    parser.add_argument("--out", default=None,
                        help=f"the picture (default: {CURVES_FILE} beside the log)")
    args = parser.parse_args(argv)
    from exit_codes import DONE, PROBLEMS, REFUSED
    from outputs import OutputError, check_output_file, why_not_writable

    if not os.path.isfile(args.log):
        print(f"nnet.plot: no such file: {args.log}", file=sys.stderr)
        return REFUSED
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.log)), CURVES_FILE)
    try:
        check_output_file(out, "--out" if args.out else "the picture beside the log")
        path = plot_log(args.log, out)
    except OutputError as e:
        print(f"nnet.plot: {e}", file=sys.stderr)
        return REFUSED
    except LogError as e:
        print(f"nnet.plot: {e}", file=sys.stderr)
        return PROBLEMS
    except OSError as e:
        print(f"nnet.plot: cannot write {e.filename or out}: {why_not_writable(e)}",
              file=sys.stderr)
        return PROBLEMS
    print(path)
    return DONE


if __name__ == "__main__":
    sys.exit(main())
