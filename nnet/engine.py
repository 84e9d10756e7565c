"""The training loop (`train`, what train.py runs), its periodic work and
resuming (detectron2's hooks, in the small).

    train(cfg, context, start_iter=None)               # train.py

The loop, in outline:

    last = restore(factory, cfg, start_iter, say)     # --iter, or system.pretrain
    periodic = PeriodicWork(cfg, factory, context, val_set, workers, last, resumed)
    for iteration, batch in ...:
        losses = factory.train_step(batch)
        periodic.after_step(iteration, losses, seconds, waited, progress)
    periodic.finish()

With system.time_budget the loop also stops when the budget is used, and
the learning-rate schedule advances with the budget (nnet/py_factory.py);
every process agrees on both. After each step `PeriodicWork` writes a line of log.jsonl (`JsonLog`),
updates the progress bar, measures the validation loss every
system.val_iter iterations and validation AP every system.val_ap_iter
(keeping `<name>_best.pkl`), and writes a snapshot every system.snapshot
iterations, at system.max_iter and where the run stops early. A snapshot is
written only from finite weights (`NonFiniteWeightsError` otherwise), and
by rank 0 alone under torchrun.

Around it: the snapshot folder is locked for the run (nnet/run_lock.py) and
checked to be writable before anything is read; a snapshot or log line that
cannot be written part-way (a full disk) stops the run naming the file and
the last snapshot (`TrainingWriteError`), and so does Ctrl-C (`Interrupted`).
"""

from __future__ import annotations

import json
import os
import time

from tqdm import tqdm

from config import command_line_name
from db import load_db
from models.py_utils.kp import LOSS_TERMS
from outputs import OutputError, check_output_folder, why_not_writable
from sample.dataset import (
    TrainingExamples,
    ValidationExamples,
    print_note,
    training_loader,
    validation_loader,
    workers_that_fit,
)
from sample.kp_detection import object_height_at_input
from test.scales import object_height_note

from . import distributed
from .budget import short_run_note
from .checkpoints import best_snapshot_path, find_snapshot, read_snapshot, snapshot_path
from .memory import check_step_fits, is_out_of_memory, step_out_of_memory
from .py_factory import NetworkFactory, NonFiniteLossError
from .run_lock import RunLock
from .snapshot import save_snapshot


def train(cfg, context: distributed.Context, start_iter=None, workers: int | None = None,
          memory_check: bool = True) -> None:
    """Train `cfg` on `context`'s device from scratch (or system.pretrain), or
    resumed from the snapshot of `start_iter` (an iteration or "latest"), to
    system.max_iter or the end of system.time_budget; `workers`: loader
    processes (None: system.workers); `memory_check`: estimate a step's
    memory first (nnet/memory.py).

    The snapshot folder is this run's alone while it trains
    (nnet/run_lock.py: RunLockError when another run holds it, OutputError
    when it cannot be written, both before anything is read); a write that
    fails later (a full disk) is a TrainingWriteError, Ctrl-C an Interrupted,
    each saying which snapshot is the last one."""
    say = tqdm.write if context.is_main else (lambda *a, **k: None)
    lock, refused = None, None
    if context.is_main:
        lock = RunLock(cfg.snapshot_dir, "system.cache_dir", say)
        try:
            lock.acquire()
            if cfg.system.val_ap_iter:
                check_output_folder(cfg.result_dir, "system.result_dir")
        except OutputError as e:
            refused = e
    if distributed.any_true(refused is not None, context):  # every rank stops together
        if lock is not None:
            lock.release()
        raise refused or OutputError("rank 0 cannot use the snapshot folder")
    run = _Run()
    try:
        _train(cfg, context, start_iter, workers, memory_check, say, run)
    except KeyboardInterrupt:
        raise Interrupted(run.interrupted(cfg)) from None
    finally:
        if run.progress is not None:  # else its last refresh comes after train.py's message
            run.progress.close()
        if run.periodic is not None and run.periodic.log is not None:
            run.periodic.log.close()  # a run that stopped on an error has it still open
        if lock is not None:
            lock.release()


class Interrupted(Exception):
    """Ctrl-C (SIGINT) during training; the message says where it stopped."""


class TrainingWriteError(RuntimeError):
    """A snapshot or the log could not be written part-way (a full disk);
    the message names the file and the last snapshot, which is intact."""


class _Run:
    """How far a run got, for the message of an interruption."""

    def __init__(self):
        self.factory = None
        self.periodic = None
        self.progress = None

    def interrupted(self, cfg) -> str:
        if self.factory is None or self.periodic is None:
            return "interrupted before the first training step; nothing was written"
        return (f"interrupted at iteration {self.factory.iteration} of {cfg.system.max_iter}; "
                + self.periodic.last_snapshot_words(cfg))


def _train(cfg, context, start_iter, workers, memory_check, say, run) -> None:
    system = cfg.system
    train_db = load_db(cfg, system.train_split)
    train_set = TrainingExamples(train_db, cfg)  # checks db.max_tag_len before any step
    val_set = None
    if system.val_iter or system.val_ap_iter:
        val_db = load_db(cfg, system.val_split)
        val_set = ValidationExamples(val_db, cfg)
        shared = same_pages(train_db, val_db)
        if shared:
            say(f"warning: {shared} of the {len(val_db)} pages of system.val_split "
                f"{system.val_split!r} are pages of system.train_split {system.train_split!r}: "
                f"the validation loss and AP measure how well those pages were learned, not "
                f"how well new pages are read; validate on other pages")

    factory = NetworkFactory(cfg, context.device, context)  # system.precision, as main() printed
    say(f"{cfg.name}: network {cfg.network_name}, {factory.num_parameters:,} parameters, "
        f"{len(train_db)} training images, {context.world_size} process(es) on "
        f"{context.device.type}, {factory.precision}")
    if cfg.overrides:
        say("over the config file: " + ", ".join(f"{key}={json.dumps(value)}"
                                                 for key, value in cfg.overrides.items()))
    height_note = object_height_note(object_height_at_input(train_db.records, cfg), cfg)
    if height_note:
        say(height_note)
    last_snapshot = restore(factory, cfg, start_iter, say)
    run.factory = factory

    requested = system.workers if workers is None else workers
    per_process_batch = system.batch_size // context.world_size
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    workers = workers_for_cores(requested, local_processes, "system.workers" if workers is None
                                else "--workers", say)
    workers, note = workers_that_fit(cfg, per_process_batch, workers, local_processes)
    if context.is_main:
        print_note(note)

    start = factory.iteration
    if start >= system.max_iter:
        say(f"nothing to do: the snapshot is at iteration {start}, system.max_iter is {system.max_iter}")
        return
    if memory_check:
        check_step_fits(factory, train_set, per_process_batch, local_processes)
    loader = training_loader(train_set, start + 1, system.max_iter, context.rank,
                             context.world_size, workers, context.device.type == "cuda")
    periodic = PeriodicWork(cfg, factory, context, val_set, workers, last_snapshot,
                            resumed=start_iter is not None)
    run.periodic = periodic
    progress = run.progress = tqdm(total=system.max_iter, initial=start,
                                   disable=not context.is_main, dynamic_ncols=True, desc=cfg.name)

    budget = system.time_budget
    if budget is not None:
        say(f"time budget: {budget:g} min of training (stops at iteration {system.max_iter} "
            f"if that comes first)")
    tick = time.perf_counter()
    for iteration, batch in enumerate(loader, start + 1):
        waited = time.perf_counter() - tick
        try:
            losses = factory.train_step(batch)
            seconds = time.perf_counter() - tick
            factory.train_seconds += seconds
            out_of_time = False
            if budget is not None:
                # every process must agree on the schedule and on when to stop
                factory.budget_used = distributed.mean(factory.train_seconds / (60 * budget),
                                                       context)
                out_of_time = factory.budget_used >= 1
            periodic.after_step(iteration, losses, seconds, waited, progress, last=out_of_time)
        except NonFiniteLossError as e:
            e.hint = periodic.last_good()
            raise
        except RuntimeError as e:  # torch.cuda.OutOfMemoryError is one
            if not is_out_of_memory(e):
                raise
            raise step_out_of_memory(e, iteration, factory, per_process_batch,
                                     periodic.last_good()) from None
        tick = time.perf_counter()
        if out_of_time:
            say(f"time budget of {budget:g} min used: stopped at iteration {iteration} of "
                f"{system.max_iter}")
            break
    progress.close()
    periodic.finish()
    if budget is not None:
        note = short_run_note(factory.iteration, system.max_iter, factory.train_seconds,
                              context.device.type == "cuda")
        if note:
            say(f"warning: {note}")


def same_pages(train_db, val_db) -> int:
    """How many validation pages are also training pages (the same files)."""
    training = {os.path.realpath(r.path) for r in train_db.records}
    return sum(os.path.realpath(r.path) in training for r in val_db.records)


def workers_for_cores(requested: int, processes: int, named: str, say) -> int:
    """At most as many loader workers per process as the machine has CPU
    cores for it; more only wait their turn, each with its own memory."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    most = max(1, cores // processes)
    if requested <= most:
        return requested
    say(f"{named} {requested}: this machine has {cores} CPU cores"
        + (f" for {processes} processes" if processes > 1 else "")
        + f"; using {most} loader workers" + (" per process" if processes > 1 else ""))
    return most


class NonFiniteWeightsError(RuntimeError):
    """The weights became NaN or infinite."""


def restore(factory, cfg, start_iter, say) -> str | None:
    """Resume from the snapshot of `start_iter` (train.py --iter: an iteration
    or "latest"), or, without one, start from system.pretrain; returns the
    snapshot resumed from. A snapshot that cannot be used is a SnapshotError."""
    if start_iter is not None:
        path = find_snapshot(cfg, start_iter).path
        state = read_snapshot(path)
        factory.load_state_dict(state, source=path)
        changed = _changed_settings(state.get("config") or {}, cfg.to_dict())
        say(f"resuming from {path} (iteration {factory.iteration})"
            + (f"; settings changed since: {', '.join(changed)}" if changed else ""))
        return path
    if cfg.system.pretrain:
        skipped = factory.load_pretrained(cfg.system.pretrain)
        say(f"starting from {cfg.system.pretrain}"
            + (f"; kept the initial values of {len(skipped)} tensors that do not fit: "
               f"{', '.join(skipped)}" if skipped else ""))
    return None


def _changed_settings(old: dict, new: dict) -> list[str]:
    return [f"{section}.{key}" for section in new for key in new[section]
            if old.get(section, {}).get(key, new[section][key]) != new[section][key]]


class PeriodicWork:
    """What happens every N iterations, apart from the step itself: log,
    progress, validation loss, validation AP (best snapshot), snapshots."""

    def __init__(self, cfg, factory, context, val_set, workers, last_snapshot, resumed):
        self.cfg, self.factory, self.context = cfg, factory, context
        self.val_set, self.workers = val_set, workers
        self.last_snapshot = last_snapshot
        self.best_ap = _best_ap(cfg) if resumed else None
        log_path = os.path.join(cfg.snapshot_dir, "log.jsonl")
        try:
            self.log = (JsonLog(log_path, resume_at=factory.iteration if resumed else None)
                        if context.is_main else None)
        except OSError as e:
            raise self.write_error(log_path, e) from None

    def after_step(self, iteration, losses, seconds, waited, progress, last=False):
        system = self.cfg.system
        entry = {"iteration": iteration, **losses,
                 "images_per_s": system.batch_size / seconds, "step_s": seconds,
                 "data_wait_s": waited, "time": time.time()}
        if self.val_set is not None and system.val_iter and iteration % system.val_iter == 0:
            entry.update(self.validation_loss())
        if self.val_set is not None and system.val_ap_iter and iteration % system.val_ap_iter == 0:
            entry.update(self.validation_ap(iteration))
        if self.context.is_main:
            try:
                self.log.write(entry)
            except OSError as e:
                raise self.write_error(self.log.file.name, e) from None
            progress.set_postfix({name: f"{losses[name]:.3f}" for name in LOSS_TERMS}
                                 | {"lr": f"{losses['lr']:.2e}",
                                    "img/s": f"{entry['images_per_s']:.1f}"}, refresh=False)
            progress.update(1)
        if iteration % system.snapshot == 0 or iteration == system.max_iter or last:
            self.save(snapshot_path(self.cfg, iteration), entry)

    def validation_loss(self) -> dict:
        loader = validation_loader(self.val_set, self.context.rank, self.context.world_size,
                                   self.workers, self.context.device.type == "cuda")
        losses = self.factory.validation_loss(loader)
        return {f"val_{name}": value for name, value in losses.items()}

    def validation_ap(self, iteration) -> dict:
        metrics = {}
        if self.context.is_main:
            from test.run import run_test
            out_dir = os.path.join(self.cfg.result_dir, f"val_{iteration}")
            metrics = run_test(self.factory.network, self.cfg, self.val_set.db, self.context.device,
                               out_dir, max_images=self.cfg.system.val_ap_images) or {}
            metrics = {f"val_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}
            ap = metrics.get("val_AP")
            # -1: no ground truth on those pages, AP undefined (test/evaluate.py)
            if ap is not None and ap >= 0 and (self.best_ap is None or ap > self.best_ap):
                self.best_ap = ap
                self.save(best_snapshot_path(self.cfg), {"iteration": iteration, **metrics},
                          quiet=True)
                tqdm.write(f"iteration {iteration}: best validation AP so far, {ap:.4f}")
        distributed.barrier(self.context)
        return metrics

    def save(self, path, metrics, quiet=False):
        # checked on every rank (the weights are the same), so all stop together
        if not self.factory.weights_are_finite():
            error = NonFiniteWeightsError(
                f"the weights became non-finite by iteration {self.factory.iteration} "
                f"({os.path.basename(path)} not written)")
            error.hint = self.last_good()
            raise error
        if self.context.is_main:
            try:
                save_snapshot(path, self.factory.state_dict(metrics))
            except OSError as e:
                raise self.write_error(path, e) from None
            if not quiet:
                self.last_snapshot = path

    def write_error(self, path, error: OSError) -> TrainingWriteError:
        return TrainingWriteError(f"{why_not_writable(error)} writing {path}; "
                                  + self.last_snapshot_words(self.cfg))

    def last_snapshot_words(self, cfg) -> str:
        """Which snapshot a stopped run leaves, and how to go on from it."""
        if not self.last_snapshot:
            return "no snapshot of this run was written yet: nothing to resume, train again"
        iteration = os.path.splitext(self.last_snapshot)[0].rsplit("_", 1)[-1]
        return (f"the last snapshot, iteration {iteration} ({self.last_snapshot}), is intact: "
                f"resume with `python train.py {command_line_name(cfg)} --iter latest`")

    def last_good(self) -> str:
        if self.last_snapshot:
            return (f"The last good snapshot is {self.last_snapshot}: resume from it with --iter, "
                    f"perhaps with a lower system.learning_rate.")
        return "No snapshot of this run was written yet."

    def finish(self):
        digests = distributed.parameter_digests(self.factory.network, self.context)
        if len(set(digests)) > 1:
            raise RuntimeError(f"the processes ended with different weights: {digests}")
        if self.context.is_main:
            self.log.write({"iteration": self.factory.iteration, "event": "finished",
                            "parameter_digests": digests, "time": time.time()})
            self.log.close()
            tqdm.write(f"done: {self.last_snapshot}")
            self.plot_curves()

    def plot_curves(self):
        """training_curves.png beside the log (nnet/plot.py); the snapshots are
        already written, so a picture that cannot be drawn only gets a note."""
        from nnet.plot import plot_log
        log_path = os.path.join(self.cfg.snapshot_dir, "log.jsonl")
        try:
            tqdm.write(f"curves: {plot_log(log_path)}")
        except (ImportError, OSError, ValueError) as e:
            tqdm.write(f"curves not drawn ({e}); draw them with `python -m nnet.plot {log_path}`")


def _best_ap(cfg):
    path = best_snapshot_path(cfg)
    if not os.path.isfile(path):
        return None
    return read_snapshot(path).get("metrics", {}).get("val_AP")


class JsonLog:
    """log.jsonl: one JSON object a line, flushed as written.

    A fresh run starts a new file; a run resumed at iteration k keeps the
    lines up to k (rewritten atomically) and drops the rest."""

    def __init__(self, path: str, resume_at: int | None):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        kept = []
        if resume_at is not None and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut short when the earlier run was killed
                    if entry.get("iteration", 0) <= resume_at:
                        kept.append(line if line.endswith("\n") else line + "\n")
        temporary = path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            f.writelines(kept)
        os.replace(temporary, path)
        self.file = open(path, "a", encoding="utf-8")

    def write(self, entry: dict) -> None:
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()
