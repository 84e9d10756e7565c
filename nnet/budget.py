"""What a run that its time budget ended long before its planned steps says
about itself (train.py, train_reader.py; test.py's metrics.json and
grade.py's summary.json repeat it).

A time budget makes a run's length depend on the machine: beside other work
a step can take eight times as long (the recognizer's 0.13 s became 1.05 s),
and the run then makes a fraction of its steps and reads or detects worse.
That is worth saying where the results are read, not only in the log.
"""

from __future__ import annotations

# Below this share of its planned steps a run counts as cut short.
SHORT = 0.5


def short_run_note(done: int, planned: int, seconds: float, on_gpu: bool,
                   budget_option: str = "--time-budget") -> str | None:
    """None when `done` steps are at least half of `planned`; else a line
    with the step rate (`seconds` of training for `done` steps) and what to
    do: a quiet machine, a longer budget, a GPU."""
    if not planned or not done or done >= SHORT * planned:
        return None
    per_step = seconds / done
    needed = planned * per_step / 60
    gpu = "" if on_gpu else ", or a GPU (--device cuda)"
    return (f"the time budget ended training after {done} of {planned} planned steps "
            f"({done / planned:.0%}) at {per_step:.2f} s a step, so it falls short of a full "
            f"run: train on a quiet machine (other work slows every step), with {budget_option} "
            f"of about {needed:.0f} min at this rate{gpu}")
