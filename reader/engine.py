"""Training the recognizer, its snapshots, and reading with a trained one.

    python train_reader.py CRNN-tiny               # config/reader/CRNN-tiny.json
    reader = load_reader(cfg, "latest", device)    # grade.py, bench/bench_grading.py
    readings = reader.read_boxes(image, boxes)     # one Reading (or EmptyCrop) per box

Training data are crops of the ground-truth boxes of ks_<train_split>_text.jsonl's
pages (docs/ks-format.md), jittered as the detector's boxes are
(reader/crops.py). Step `s` draws its crops from a generator seeded with
(system.seed, s): `system.pages_per_batch` pages, decoded once, and
batch_size / pages_per_batch problems of each, so a run is a function of its
config. Loss: nn.CTCLoss of the printed head plus system.answer_weight times
that of the answer head, in fp32 (the network in system.precision: auto is
bf16 where the CPU computes it natively, else fp32); Adam with a linear
warm-up and a cosine decay to 0 at max_iter.

Snapshots: `<cache_dir>/reader/<name>/<name>_<iter>.pkl` every
`system.snapshot` steps and at the end (nnet/snapshot.py: atomic, loaded with
weights_only), each holding the network, the optimizer, the step, the config
and the validation accuracy then; `log.jsonl` beside them. A snapshot carries
its config: a reader is rebuilt from it, so the alphabets and crop geometry
it was trained with are the ones it reads with.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from config import ConfigError
from db import read_image

from .config import reader_config_from_snapshot
from .crops import EmptyCrop, cut_crop, normalize
from .model import build_reader_network
from .text import (
    Alphabet,
    PageText,
    canonical_printed,
    ctc_targets,
    greedy_decode,
    read_text_file,
    text_file,
)

READ_BATCH = 64  # crops per network call when reading


@dataclass(frozen=True)
class Reading:
    printed: str
    answer: str
    printed_confidence: float
    answer_confidence: float
    # (T, C) log-probabilities of each head: other readings can be scored against
    # the crop (reader/decoding.py)
    printed_log_probs: np.ndarray | None = field(default=None, compare=False, repr=False)
    answer_log_probs: np.ndarray | None = field(default=None, compare=False, repr=False)


class Reader:
    """A trained recognizer on a device, with the settings it was trained with."""

    def __init__(self, network: nn.Module, cfg, device="cpu", iteration=None):
        self.cfg = cfg
        self.settings = cfg.reader
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.iteration = iteration
        self.short_of_plan = None  # set from the snapshot by load_reader
        self.printed_alphabet = Alphabet(cfg.reader.printed_alphabet)
        self.answer_alphabet = Alphabet(cfg.reader.answer_alphabet)
        self.right_answer_prior = cfg.reader.right_answer_prior
        # PP-OCR's second opinion (reader/ppocr.py), set by load_reader; None: the recognizer alone
        self.line_reader = None
        self.missing = None              # why PP-OCR was asked for and is not there
        self.second_opinion = "none"     # "none", "where unsure" or "always"
        self.weighing = cfg.reader       # the keys that weigh readings (the config file's)

    @torch.inference_mode()
    def read(self, crops: np.ndarray) -> list[Reading]:
        """(B, H, W, 3) uint8 crops (reader/crops.py) -> one Reading each."""
        readings = []
        for start in range(0, len(crops), READ_BATCH):
            out = self.network(normalize(crops[start:start + READ_BATCH]).to(self.device))
            printed = greedy_decode(out.printed, self.printed_alphabet)
            answers = greedy_decode(out.answer, self.answer_alphabet)
            printed_scores = out.printed.float().permute(1, 0, 2).cpu().numpy()     # (B, T, C)
            answer_scores = out.answer.float().permute(1, 0, 2).cpu().numpy()       # (B, T, C)
            readings += [Reading(p, a, pc, ac, ps, s) for (p, pc), (a, ac), ps, s
                         in zip(printed, answers, printed_scores, answer_scores)]
        return readings

    def read_boxes(self, image: np.ndarray, boxes) -> list:
        """One Reading per box of `image`, or the EmptyCrop saying why it cannot be read."""
        results, crops, where = [], [], []
        for box in boxes:
            try:
                crops.append(cut_crop(image, box, self.settings))
                where.append(len(results))
                results.append(None)
            except EmptyCrop as e:
                results.append(e)
        if crops:
            for k, reading in zip(where, self.read(np.stack(crops))):
                results[k] = reading
        return results


# --------------------------------------------------------------------------
# snapshots
# --------------------------------------------------------------------------

def reader_snapshot_path(cfg, iteration: int) -> str:
    """<cache_dir>/reader/<name>/<name>_<iteration>.pkl (named as the detector's are)."""
    from nnet.checkpoints import snapshot_path
    return snapshot_path(cfg, iteration)


def find_reader_snapshot(cfg, iteration="latest") -> str:
    """The snapshot file of `iteration` (an int or "latest"); SnapshotError
    naming the iterations that have one when there is none."""
    from nnet.checkpoints import available_iterations
    from nnet.snapshot import SnapshotError

    iterations = available_iterations(cfg)
    train = f"train it first: python train_reader.py {cfg.name}"
    if iteration == "latest":
        if not iterations:
            raise SnapshotError(f"no snapshots of reader {cfg.name} in {cfg.snapshot_dir}; {train}")
        iteration = iterations[-1]
    path = reader_snapshot_path(cfg, int(iteration))
    if not os.path.isfile(path):
        raise SnapshotError(f"no reader snapshot {path}; iterations with a snapshot: "
                            f"{', '.join(map(str, iterations)) or f'none; {train}'}")
    return path


def load_reader(cfg, iteration="latest", device="cpu", second_reader: str = "auto") -> Reader:
    """The trained recognizer of `cfg`'s snapshot `iteration` (an int or "latest").

    second_reader: "auto" (reader.second_reader of the config: PP-OCR's
    opinion where the recognizer is not sure, when it is installed; the
    reader's `missing` then says why not), "none", or "only" (PP-OCR reads
    every problem, the recognizer only offers readings: a benchmark's row)."""
    from nnet.snapshot import SnapshotError, load_snapshot

    path = find_reader_snapshot(cfg, iteration)
    state = load_snapshot(path, map_location="cpu")
    if not (isinstance(state, dict) and isinstance(state.get("network"), dict)
            and isinstance(state.get("config"), dict)):
        raise SnapshotError(f"{path} is not a reader snapshot (written by train_reader.py)")
    try:
        trained = reader_config_from_snapshot(state["config"], cfg.name)
        network = build_reader_network(trained.reader)
        network.load_state_dict(state["network"])
    except (ConfigError, RuntimeError) as e:
        raise SnapshotError(f"{path} does not hold a recognizer of this project: {e}") from None
    reader = Reader(network, trained, device, iteration=int(state.get("iteration", 0)))
    # a run its time budget ended far short of its steps (nnet/budget.py): grade.py repeats it
    reader.short_of_plan = state.get("short_of_plan")
    # how readings are weighed is not learned: the config file says, not the snapshot
    reader.right_answer_prior = cfg.reader.right_answer_prior
    reader.weighing = cfg.reader
    reader.missing = None
    if second_reader == "auto" and cfg.reader.second_reader == "none":
        second_reader = "none"
    if second_reader != "none":
        from .ppocr import MISSING, LineReader

        reader.line_reader = LineReader.load()
        if reader.line_reader is None:
            reader.missing = MISSING
        else:
            reader.second_opinion = "always" if second_reader == "only" else "where unsure"
    return reader


# --------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------

class CropSampler:
    """Training crops as a function of (seed, step): ground-truth boxes, jittered."""

    def __init__(self, pages: list[PageText], cfg):
        self.pages = [p for p in pages if len(p.boxes)]
        if not self.pages:
            raise ConfigError(f"{cfg.name}: no page of split {cfg.system.train_split!r} holds a "
                              f"problem to train on")
        self.cfg = cfg

    def batch(self, step: int):
        """(crops (B, H, W, 3) uint8, printed texts, answers) of training step `step`."""
        system = self.cfg.system
        rng = np.random.default_rng([system.seed, step])
        count = min(system.pages_per_batch, system.batch_size)
        chosen = rng.choice(len(self.pages), size=count, replace=count > len(self.pages))
        shares = [system.batch_size // count + (k < system.batch_size % count) for k in range(count)]
        crops, printed, answers = [], [], []
        for page_index, share in zip(chosen, shares):
            page = self.pages[int(page_index)]
            image = read_image(page.image)
            for k in rng.choice(len(page.boxes), size=share, replace=share > len(page.boxes)):
                try:
                    crops.append(cut_crop(image, page.boxes[k], self.cfg.reader, rng))
                except EmptyCrop:
                    continue  # a ground-truth box outside its picture: nothing to learn from
                printed.append(page.printed[k])
                answers.append(page.answers[k])
        return np.stack(crops), printed, answers


def check_alphabets(pages: list[PageText], cfg, source: str) -> None:
    """Every character of the texts must be one the heads can emit."""
    printed, answer = Alphabet(cfg.reader.printed_alphabet), Alphabet(cfg.reader.answer_alphabet)
    missing_printed = printed.unknown("".join(t for p in pages for t in p.printed))
    missing_answer = answer.unknown("".join(t for p in pages for t in p.answers))
    problems = []
    if missing_printed:
        problems.append(f"printed texts hold {missing_printed!r}, not in reader.printed_alphabet")
    if missing_answer:
        problems.append(f"answers hold {missing_answer!r}, not in reader.answer_alphabet")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems) + f" of {cfg.path or cfg.name}")


def learning_rate(cfg, step: int, progress: float) -> float:
    """Linear warm-up over the first warmup_iter steps, then a cosine from the
    peak to 0 as `progress` (the share of the run done) goes from 0 to 1."""
    system = cfg.system
    warm = min(1.0, (step + 1) / system.warmup_iter) if system.warmup_iter else 1.0
    return system.learning_rate * warm * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def evaluate_reader(reader: Reader, pages: list[PageText]) -> dict:
    """Exact-match accuracy on the ground-truth boxes of `pages` (no jitter)."""
    total = printed_right = answer_right = both = 0
    for page in pages:
        if not len(page.boxes):
            continue
        readings = reader.read_boxes(read_image(page.image), page.boxes)
        for reading, printed, answer in zip(readings, page.printed, page.answers):
            total += 1
            if isinstance(reading, Reading):
                printed_right += canonical_printed(reading.printed) == printed
                answer_right += reading.answer == answer
                both += canonical_printed(reading.printed) == printed and reading.answer == answer
    share = (lambda n: round(n / total, 4)) if total else (lambda n: None)
    return {"problems": total, "printed_exact": share(printed_right),
            "answer_exact": share(answer_right), "both_exact": share(both)}


def train_reader(cfg, max_iter: int | None = None, device="cpu", progress: bool = True,
                 log=print, time_budget: float | None = None) -> dict:
    """Train `cfg`'s recognizer; returns the last validation metrics.

    `max_iter` shortens the run (the schedule stays that of system.max_iter).
    `time_budget` (seconds) bounds it in time: the schedule then follows
    whichever is further along, the steps or the time, and the run ends, with
    a snapshot, when either is done (so its length depends on the machine;
    a run that makes less than half its steps says so, in its last line and
    in its snapshot, which grade.py's summary.json repeats).

    The snapshot folder is this run's alone (nnet/run_lock.py: RunLockError,
    an OutputError, when another run holds it or it cannot be written)."""
    from nnet.run_lock import RunLock

    with RunLock(cfg.snapshot_dir, "system.cache_dir", log):
        return _train_reader(cfg, max_iter, device, progress, log, time_budget)


def _train_reader(cfg, max_iter, device, progress, log, time_budget) -> dict:
    from nnet.budget import short_run_note
    from nnet.snapshot import save_snapshot

    system = cfg.system
    train_pages = read_text_file(text_file(system.data_dir, system.train_split))
    check_alphabets(train_pages, cfg, text_file(system.data_dir, system.train_split))
    val_path = text_file(system.data_dir, system.val_split)
    val_pages = read_text_file(val_path) if os.path.isfile(val_path) else []
    if system.val_pages:
        val_pages = val_pages[:system.val_pages]
    sampler = CropSampler(train_pages, cfg)

    from nnet.device import autocast, precision_for

    torch.manual_seed(system.seed)
    device = torch.device(device)
    precision = precision_for(cfg, device)   # a DeviceError (a ConfigError) names the key
    log(str(precision))
    network = build_reader_network(cfg.reader).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=system.learning_rate,
                                 weight_decay=system.weight_decay)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    printed_alphabet = Alphabet(cfg.reader.printed_alphabet)
    answer_alphabet = Alphabet(cfg.reader.answer_alphabet)
    steps = system.max_iter if max_iter is None else min(max_iter, system.max_iter)
    os.makedirs(cfg.snapshot_dir, exist_ok=True)
    log_path = os.path.join(cfg.snapshot_dir, "log.jsonl")
    log(f"training reader {cfg.name}: {len(sampler.pages)} pages of {system.train_split}, "
        f"{steps} steps of {system.batch_size} crops, validation on {len(val_pages)} pages of "
        f"{system.val_split}; snapshots in {cfg.snapshot_dir}")

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=steps, desc="reader", unit="step", dynamic_ncols=True)
    metrics, started, window, short = {}, time.perf_counter(), [], None
    with open(log_path, "a", encoding="utf-8") as log_file:
        for step in range(steps):
            network.train()
            done = step / system.max_iter
            if time_budget:
                done = max(done, (time.perf_counter() - started) / time_budget)
            crops, printed, answers = sampler.batch(step)
            rate = learning_rate(cfg, step, done)
            for group in optimizer.param_groups:
                group["lr"] = rate
            with autocast(precision.name, device):
                out = network(normalize(crops).to(device))
            lengths = torch.full((len(crops),), out.printed.shape[0], dtype=torch.long)
            printed_targets, printed_lengths = ctc_targets(printed, printed_alphabet)
            answer_targets, answer_lengths = ctc_targets(answers, answer_alphabet)
            printed_loss = ctc(out.printed.float(), printed_targets.to(device), lengths,
                               printed_lengths)
            answer_loss = ctc(out.answer.float(), answer_targets.to(device), lengths,
                              answer_lengths)
            loss = printed_loss + system.answer_weight * answer_loss
            if not torch.isfinite(loss):
                raise FloatingPointError(f"reader {cfg.name}: the loss is {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(network.parameters(), 5.0)
            optimizer.step()
            window.append((printed_loss.item(), answer_loss.item()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(printed=f"{printed_loss.item():.3f}", answer=f"{answer_loss.item():.3f}")
            out_of_time = bool(time_budget) and time.perf_counter() - started >= time_budget
            last = step + 1 == steps or out_of_time
            if (step + 1) % 50 == 0 or last:
                mean = np.mean(window, axis=0)
                window = []
                log_file.write(json.dumps({"iteration": step + 1, "printed_loss": round(float(mean[0]), 5),
                                           "answer_loss": round(float(mean[1]), 5),
                                           "lr": rate,
                                           "seconds": round(time.perf_counter() - started, 1)}) + "\n")
                log_file.flush()
            if (step + 1) % system.snapshot == 0 or last:
                reader = Reader(network, cfg, device, iteration=step + 1)
                metrics = evaluate_reader(reader, val_pages) if val_pages else {}
                seconds = time.perf_counter() - started
                short = (short_run_note(step + 1, steps, seconds, device.type == "cuda")
                         if last and out_of_time else None)
                save_snapshot(reader_snapshot_path(cfg, step + 1), {
                    "network": network.state_dict(), "optimizer": optimizer.state_dict(),
                    "iteration": step + 1, "config": cfg.to_dict(), "metrics": metrics,
                    "planned_iterations": steps, "train_seconds": seconds,
                    "short_of_plan": short})
                log_file.write(json.dumps({"iteration": step + 1, "validation": metrics}) + "\n")
                log_file.flush()
                message = (f"step {step + 1}: validation on {metrics.get('problems', 0)} problems: "
                           f"printed {metrics.get('printed_exact')}, answer {metrics.get('answer_exact')}"
                           if metrics else f"step {step + 1}: snapshot written")
                if bar is not None:
                    bar.write(message)
                else:
                    log(message)
            if last:
                break
    if bar is not None:
        bar.close()
    why = f" (--time-budget {time_budget / 60:g} min reached)" if step + 1 < steps else ""
    log(f"reader {cfg.name}: {step + 1} steps in {time.perf_counter() - started:.0f} s{why}; "
        f"snapshot {reader_snapshot_path(cfg, step + 1)}")
    if short:
        log(f"warning: {short}")
    return metrics
