"""Our CenterNet-tiny against the peer a user would pick instead, ultralytics
YOLO (YOLOv8n and YOLO11n built from their model yaml, no downloaded
weights), each trained from scratch on the same pages, with the same CPU
threads and the same wall-clock training budget, and scored by this
project's COCO evaluation (test/evaluate.py: pycocotools on the same ks
ground truth, up to db.max_per_image detections a page for both).

    python -m bench.bench_peer --budget 10
    python -m bench.bench_peer --budget 40 --workdir cache/bench_peer_40
    python -m bench.bench_peer --budget 0.5 --train-images 8 --max-images 2 --print-only

Evaluated on the synthetic validation pages (ks_val.txt), the held-out style
(ks_holdout.txt of --data, else generated into the work folder by `python -m
db.synth --style holdout`) and, when ../shared/real is there, 20 pages
composed of real photographed problems (../shared/tools/real_pages.py, seed
7); the section says plainly when that folder is missing. Reported: AP, AP50
and AP50 per category on each, milliseconds per page (network and
post-processing, at batch 1, after the page is read and resized or
letterboxed), the peak resident memory of training and of testing (of the
largest process: train.py, its loader workers, the YOLO process), the steps
and images seen, and the parameters. The results go to the
"peer-<config>-<budget>min" section of BENCHMARKS.md.

Ours: `train.py CONFIG --time-budget B` as users run it (the config's schedule;
it stops at max_iter or at the budget, whichever comes first), its snapshots
under the work folder (--set system.cache_dir=...), so nothing under the
project's cache/ is touched. The YOLO training pages are the same ks file
written by `python -m db.convert --to yolo`. YOLO keeps ultralytics' recipe
(mosaic, colour, flips, scale, EMA, its losses and assigner) except where
a CPU budget of minutes needs a choice, each said in the section: ours'
batch; an optimizer step every batch (nbs = batch; the default 64 would
accumulate 16 batches of 4 into one step); AdamW at lr0 0.002 * 5 / (4 + nc),
which is what optimizer=auto picks for a run under 10,000 iterations (it
would pick SGD here only because time-budgeted runs start with a large epoch
count); ours' warm-up steps; no validation during training; the image size
chosen for the pages' problem size (`choose_imgsz`); amp and plots off, and
YOLO_OFFLINE=1, so nothing is downloaded. ultralytics sets torch to
min(8, CPUs - 1) threads on a CPU; the bench sets it back to --threads, so
both train and test with the same threads.

ultralytics is an optional extra (requirements-peer.txt, AGPL-3.0): the
product never imports it, only this benchmark's own processes do; without it
the benchmark says so and stops (or runs `--detectors ours` alone).
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
REAL = os.path.join(SHARED, "real")
REAL_PAGES_TOOL = os.path.join(SHARED, "tools", "real_pages.py")
REAL_PAGES, REAL_SEED = 20, 7

PEERS = {"yolov8n": ("YOLOv8n", "yolov8n.yaml"), "yolo11n": ("YOLO11n", "yolo11n.yaml")}
FINEST_STRIDE = 8   # YOLO's P3 head: one cell per 8 px of the letterboxed page
CELLS = 2           # the median problem is to be this many P3 cells tall
MARKER = ".bench_peer"  # marks a work folder as this benchmark's (it deletes inside it)

EVALUATION_SETS = (("val", "synthetic validation pages"),
                   ("holdout", "held-out style (fonts and print sizes kept out of training)"),
                   ("real", "pages composed of real photographed problems"))


def ultralytics_missing() -> str | None:
    """Why the peer cannot run (ultralytics not installed), or None."""
    if importlib.util.find_spec("ultralytics") is not None:
        return None
    return ("ultralytics is not installed, so the peer (YOLO) cannot run. It is an optional "
            "extra for this benchmark only (AGPL-3.0; the product never imports it): install "
            f"it with `{os.path.relpath(sys.executable, ROOT)} -m pip install --no-deps -r "
            f"requirements-peer.txt`, or run `--detectors ours` alone")


def choose_imgsz(records, cells: int = CELLS, stride: int = FINEST_STRIDE) -> tuple[int, dict]:
    """The YOLO image size (the long side a page is letterboxed to, a multiple
    of 32) at which the median problem of `records` is `cells` cells of the
    finest stride tall; and the numbers behind it."""
    heights = np.concatenate([(r.boxes[:, 3] - r.boxes[:, 1]).astype(np.float64) / max(r.width, r.height)
                              for r in records if r.num_objects])
    median, low = float(np.median(heights)), float(np.percentile(heights, 5))
    size = 32 * math.ceil(cells * stride / median / 32 - 1e-4)  # a float's last bits
    long_sides = [max(r.width, r.height) for r in records]
    return size, {"median_height": median * size, "p5_height": low * size,
                  "median_native_height": float(np.median(np.concatenate(
                      [r.boxes[:, 3] - r.boxes[:, 1] for r in records if r.num_objects]))),
                  "median_long_side": float(np.median(long_sides))}


# ---------------------------------------------------------------------------
# the pages: one folder of ks files both detectors read, and its YOLO copy
# ---------------------------------------------------------------------------

def prepare_workdir(path: str) -> str:
    path = os.path.abspath(path)
    if os.path.isdir(path) and os.listdir(path) and not os.path.exists(os.path.join(path, MARKER)):
        raise SystemExit(f"bench_peer: {path} holds files this benchmark did not make; it "
                         f"deletes its own snapshots there before training: give another --workdir")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, MARKER), "w", encoding="utf-8") as f:
        f.write("work folder of python -m bench.bench_peer\n")
    return path


def write_pages(source: str, target: str, count: int, categories: int) -> int:
    """The first `count` pages (0: all) of a ks file into `target`, paths absolute."""
    from db.errors import AnnotationError
    from db.ks import ANNOTATED_MARK, format_ks_line, inspect_ks_file

    report = inspect_ks_file(source, categories)
    if report.errors:
        raise AnnotationError(report.source, report.errors)
    lines = report.lines[:count] if count else report.lines
    text = [f"# pages of {source}, written by python -m bench.bench_peer", ANNOTATED_MARK]
    text += [format_ks_line(line.path, line.boxes, line.classes) for line in lines]
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        f.write("\n".join(text) + "\n")
    return len(lines)


def prepare_pages(args, cfg, workdir: str, env) -> tuple[str, dict, list[str]]:
    """WORKDIR/pages/ks_<set>.txt for training and each evaluation set;
    (that folder, {set: pages}, notes for the section)."""
    pages_dir = os.path.join(workdir, "pages")
    shutil.rmtree(pages_dir, ignore_errors=True)
    categories = cfg.db.categories
    counts, notes = {}, []
    counts["train"] = write_pages(os.path.join(args.data, "ks_train.txt"),
                                  os.path.join(pages_dir, "ks_train.txt"), args.train_images,
                                  categories)
    counts["val"] = write_pages(os.path.join(args.data, "ks_val.txt"),
                                os.path.join(pages_dir, "ks_val.txt"), args.max_images, categories)

    holdout = os.path.join(args.data, "ks_holdout.txt")
    if not os.path.isfile(holdout):
        out = os.path.join(workdir, "holdout")
        shutil.rmtree(out, ignore_errors=True)
        command = [sys.executable, "-m", "db.synth", "--out", out, "--style", "holdout",
                   "--holdout", str(args.max_images or 100), "--workers", str(args.threads)]
        print("bench_peer: no ks_holdout.txt in", args.data, "- generating:", " ".join(command),
              flush=True)
        subprocess.run(command, check=True, cwd=ROOT, env=env)
        holdout = os.path.join(out, "ks_holdout.txt")
        notes.append(f"The held-out pages were generated for this run (`python -m db.synth "
                     f"--style holdout`, seed 0), as {args.data} holds no ks_holdout.txt.")
    counts["holdout"] = write_pages(holdout, os.path.join(pages_dir, "ks_holdout.txt"),
                                    args.max_images, categories)

    crops, paper = os.path.join(REAL, "crops-dev"), os.path.join(REAL, "paper")
    if os.path.isdir(crops) and os.path.isdir(paper) and os.path.isfile(REAL_PAGES_TOOL):
        # pictures made of real crops never go into the project's tree (not even
        # cache/): a temporary folder outside it, removed when the run ends
        out = tempfile.mkdtemp(prefix="bench-peer-real-")
        atexit.register(shutil.rmtree, out, ignore_errors=True)
        subprocess.run([sys.executable, REAL_PAGES_TOOL, crops, paper, out, "--pages",
                        str(REAL_PAGES), "--seed", str(REAL_SEED)], check=True, cwd=ROOT, env=env,
                       stdout=subprocess.DEVNULL)
        counts["real"] = write_pages(os.path.join(out, "ks_val.txt"),
                                     os.path.join(pages_dir, "ks_real.txt"), args.max_images,
                                     categories)
    else:
        notes.append(f"No pages of real problems: {REAL} (crops-dev/ and paper/) or "
                     f"{REAL_PAGES_TOOL} is missing on this machine, so that row is not there.")
    return pages_dir, counts, notes


def prepare_yolo(cfg, pages_dir: str, workdir: str) -> str:
    """The training pages as a YOLO folder (python -m db.convert --to yolo) and
    a data.yaml whose val is two of them (ultralytics validates once after
    training; the scores are this project's, on the evaluation sets)."""
    from db.convert import convert
    from db.yolo import data_yaml_text

    yolo_dir = os.path.join(workdir, "yolo")
    shutil.rmtree(yolo_dir, ignore_errors=True)
    names = cfg.db.category_names
    train_ks = os.path.join(pages_dir, "ks_train.txt")
    convert(train_ks, "ks", os.path.join(yolo_dir, "train"), "yolo", names)
    few = os.path.join(yolo_dir, "ks_check.txt")
    with open(train_ks, encoding="utf-8") as f:
        lines = [line for line in f if not line.startswith("#")][:2]
    with open(few, "w", encoding="utf-8") as f:
        f.writelines(lines)
    convert(few, "ks", os.path.join(yolo_dir, "check"), "yolo", names)
    data_yaml = os.path.join(yolo_dir, "data.yaml")
    with open(data_yaml, "w", encoding="utf-8") as f:
        f.write(data_yaml_text(names, "written by python -m bench.bench_peer",
                               train=os.path.join(yolo_dir, "train", "images"),
                               val=os.path.join(yolo_dir, "check", "images")))
    return data_yaml


# ---------------------------------------------------------------------------
# processes: each training and each test runs alone, so that its peak memory is its own
# ---------------------------------------------------------------------------

def run_process(command: list[str], env, log: str) -> dict:
    """Run `command` (its output also into `log`); {seconds, peak_mib} of it
    (ru_maxrss of the process and its children: the largest of them)."""
    print("bench_peer:", " ".join(command), flush=True)
    os.makedirs(os.path.dirname(log), exist_ok=True)
    started = time.perf_counter()
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        for chunk in iter(lambda: process.stdout.read1(65536), b""):
            out.write(chunk)
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"bench_peer: {command[2] if len(command) > 2 else command[0]} failed "
                         f"with status {process.returncode}; its output is in {log}")
    return {"seconds": time.perf_counter() - started, "peak_mib": usage.ru_maxrss / 1024}


def run_phase(name: str, spec: dict, env, workdir: str) -> dict:
    """`python -m bench.bench_peer --phase NAME --spec FILE` in its own process."""
    spec_path = os.path.join(workdir, "phases", f"{name}.json")
    os.makedirs(os.path.dirname(spec_path), exist_ok=True)
    spec = dict(spec, out=spec_path.replace(".json", ".out.json"))
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1)
    usage = run_process([sys.executable, "-m", "bench.bench_peer", "--phase", spec["phase"],
                         "--spec", spec_path], env, os.path.join(workdir, "logs", f"{name}.log"))
    with open(spec["out"], encoding="utf-8") as f:
        return {**json.load(f), **usage}


def ours_overrides(args, workdir: str, pages_dir: str) -> list[str]:
    return [f"system.cache_dir={os.path.join(workdir, 'cache')}",
            f"system.result_dir={os.path.join(workdir, 'results')}",
            f"system.data_dir={pages_dir}"] + list(args.ours_set)


def train_ours(args, cfg, overrides, env, workdir: str) -> dict:
    from nnet.checkpoints import find_snapshot

    # the work folder's own snapshots only: one of an earlier run would be taken for this one's
    shutil.rmtree(cfg.snapshot_dir, ignore_errors=True)
    command = [sys.executable, os.path.join(ROOT, "train.py"), args.config, "--device", "cpu",
               "--time-budget", f"{args.budget:g}"]
    if args.workers is not None:
        command += ["--workers", str(args.workers)]
    for assignment in overrides:
        command += ["--set", assignment]
    usage = run_process(command, env, os.path.join(workdir, "logs", "train-ours.log"))
    with open(os.path.join(cfg.snapshot_dir, "log.jsonl"), encoding="utf-8") as f:
        entries = [json.loads(line) for line in f]
    steps = [e for e in entries if "step_s" in e]
    minutes = (steps[-1]["time"] - steps[0]["time"] + steps[0]["step_s"]) / 60 if steps else 0.0
    iteration = find_snapshot(cfg, "latest").iteration
    return {"steps": iteration, "images_seen": iteration * cfg.system.batch_size,
            "train_minutes": minutes, "train_peak_mib": usage["peak_mib"],
            "workers": cfg.system.workers if args.workers is None else args.workers}


def _sets_spec(counts) -> list[list]:
    return [[name, counts[name]] for name, _ in EVALUATION_SETS if name in counts]


# ---------------------------------------------------------------------------
# the phases (each in its own process)
# ---------------------------------------------------------------------------

def _phase_cfg(spec):
    from config import load_config, parse_assignments

    return load_config(spec["config"], overrides=parse_assignments(spec["overrides"]) or None)


def phase_test_ours(spec) -> dict:
    import torch

    from db import load_db
    from nnet.checkpoints import find_snapshot, load_trained_network
    from test.run import detect_split

    torch.set_num_threads(spec["threads"])
    cfg = _phase_cfg(spec)
    snapshot = find_snapshot(cfg, "latest")
    net = load_trained_network(cfg, snapshot, torch.device("cpu"))
    out = {"parameters": sum(p.numel() for p in net.parameters()), "sets": {}}
    warmed = False
    for name, pages in spec["sets"]:
        db = load_db(cfg, name)
        with tempfile.TemporaryDirectory() as scratch:
            if not warmed:  # oneDNN picks its kernels on the first call: not timed
                detect_split(net, cfg, db, "cpu", scratch, max_images=1)
                warmed = True
            run = detect_split(net, cfg, db, "cpu", scratch, max_images=pages)
        pages_done = max(run.timer.images, 1)
        seconds = run.timer.seconds
        out["sets"][name] = {
            "detections": {str(k): np.asarray(v).tolist() for k, v in run.detections.items()},
            "network_ms": 1000 * seconds.get("network", 0.0) / pages_done,
            "post_ms": 1000 * sum(v for k, v in seconds.items()
                                  if k not in ("preparation", "network")) / pages_done,
            "threads": torch.get_num_threads()}
    return out


def _ultralytics(threads: int):
    """ultralytics, with its CPU thread count (min(8, CPUs - 1), set by its
    select_device on every training and first prediction) made `threads`."""
    import ultralytics.utils.torch_utils as torch_utils
    from ultralytics import YOLO

    torch_utils.NUM_THREADS = threads
    return YOLO


def phase_train_yolo(spec) -> dict:
    import torch

    YOLO = _ultralytics(spec["threads"])
    model = YOLO(spec["model"])
    clock = {"batches": 0, "start": None, "end": None, "threads": set()}

    def started(trainer):
        torch.set_num_threads(spec["threads"])
        clock["start"] = time.time()

    def batch_done(trainer):
        clock["batches"] += 1
        clock["end"] = time.time()
        clock["threads"].add(torch.get_num_threads())

    model.add_callback("on_train_start", started)
    model.add_callback("on_train_batch_end", batch_done)
    settings = dict(data=spec["data"], imgsz=spec["imgsz"], batch=spec["batch"],
                    epochs=10_000, time=spec["budget"] / 60, device="cpu", workers=0, amp=False,
                    plots=False, val=False, project=spec["project"], name=spec["name"],
                    exist_ok=True, seed=0, deterministic=True, optimizer="AdamW",
                    lr0=spec["lr0"], momentum=0.9, warmup_bias_lr=0.0, nbs=spec["batch"],
                    warmup_epochs=spec["warmup_epochs"], verbose=True)
    settings.update(spec["settings"])
    model.train(**settings)
    trainer = model.trainer
    return {"weights": str(trainer.last), "steps": clock["batches"],
            "images_seen": clock["batches"] * spec["batch"],
            "train_minutes": (clock["end"] - clock["start"]) / 60 if clock["end"] else 0.0,
            "parameters": sum(p.numel() for p in trainer.model.parameters()),
            "train_threads": sorted(clock["threads"]), "settings": settings}


def phase_test_yolo(spec) -> dict:
    import torch

    from db import load_db, read_image

    YOLO = _ultralytics(spec["threads"])
    model = YOLO(spec["weights"])
    cfg = _phase_cfg(spec)
    predict = dict(imgsz=spec["imgsz"], conf=0.001, iou=0.7, max_det=cfg.db.max_per_image,
                   device="cpu", verbose=False)
    out = {"parameters": sum(p.numel() for p in model.model.parameters()), "sets": {}}
    warmed = False
    for name, pages in spec["sets"]:
        db = load_db(cfg, name)
        records = db.records[:pages] if pages else db.records
        detections, network, post, threads = {}, 0.0, 0.0, set()
        for record in records:
            image = read_image(record.path)
            if not warmed:  # sets up the predictor (and its threads) and the kernels: not timed
                model.predict(image, **predict)
                torch.set_num_threads(spec["threads"])
                warmed = True
            result = model.predict(image, **predict)[0]
            threads.add(torch.get_num_threads())
            network += result.speed["inference"]
            post += result.speed["postprocess"]
            boxes = result.boxes
            detections[str(record.image_id)] = np.concatenate(
                [boxes.xyxy.numpy(), boxes.conf.numpy()[:, None], boxes.cls.numpy()[:, None]],
                axis=1).tolist()
        out["sets"][name] = {"detections": detections, "network_ms": network / len(records),
                             "post_ms": post / len(records), "threads": sorted(threads)}
    return out


PHASES = {"test-ours": phase_test_ours, "train-yolo": phase_train_yolo,
          "test-yolo": phase_test_yolo}


def phase_main(argv) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_peer --phase")
    parser.add_argument("--phase", required=True, choices=sorted(PHASES))
    parser.add_argument("--spec", required=True)
    args = parser.parse_args(argv)
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    result = PHASES[args.phase](spec)
    with open(spec["out"], "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


# ---------------------------------------------------------------------------
# scoring and the section
# ---------------------------------------------------------------------------

def score(cfg, pages_dir: str, tested: dict) -> dict:
    """{set: metrics} of one detector's detections, by test/evaluate.py."""
    from db import load_db
    from test.evaluate import coco_results, evaluate

    scores = {}
    for name, found in tested["sets"].items():
        db = load_db(cfg, name)
        detections = {int(k): np.asarray(v, np.float32).reshape(-1, 6)
                      for k, v in found["detections"].items()}
        results = coco_results(detections, db.category_ids)
        scores[name] = evaluate(results, db, cfg, list(detections))
    return scores


def _number(value) -> str:
    return "-" if value is None or value == -1 else f"{value:.3f}"


def report(rows, cfg, args, counts, imgsz, why, notes, yolo_settings) -> str:
    from bench.report import markdown_table

    names = cfg.db.category_names
    header = ["detector", "parameters", "steps", "images seen", "training (min)",
              "peak memory, training (MiB)", "ms/page network", "ms/page post", "ms/page",
              "peak memory, testing (MiB)"]
    table = []
    for r in rows:
        val = r["test"]["sets"]["val"]
        table.append([r["name"], f"{r['parameters']:,}", r["steps"], r["images_seen"],
                      f"{r['train_minutes']:.1f}", f"{r['train_peak_mib']:.0f}",
                      f"{val['network_ms']:.0f}", f"{val['post_ms']:.0f}",
                      f"{val['network_ms'] + val['post_ms']:.0f}", f"{r['test']['peak_mib']:.0f}"])
    scored = []
    for name, label in EVALUATION_SETS:
        if name not in counts:
            continue
        for r in rows:
            m = r["scores"][name]
            scored.append([f"{name} ({counts[name]})", r["name"], _number(m["AP"]),
                           _number(m["AP50"])]
                          + [_number(m["per_category_AP50"].get(n)) for n in names])
    ours = next((r for r in rows if r["key"] == "ours"), None)
    peers = [r for r in rows if r["key"] != "ours"]
    lines = [
        f"Training budget: {args.budget:g} minutes of wall-clock training each, from scratch, "
        f"on the same {counts['train']} training pages of `{os.path.relpath(args.data, ROOT)}` "
        f"(for YOLO written by `python -m db.convert --to yolo`), every process with "
        f"{args.threads} torch thread{'s' if args.threads != 1 else ''}. Scored by "
        f"test/evaluate.py (pycocotools on the same ks ground truth, COCO AP at up to "
        f"{cfg.db.max_per_image} detections a page for both) "
        f"on: " + "; ".join(f"{name}: {label}, {counts[name]} pages" for name, label in
                            EVALUATION_SETS if name in counts) + "."]
    if ours is not None:
        from nnet.device import precision_for

        precision = precision_for(cfg, "cpu")
        lines.append(
            f"\nOurs: `train.py {args.config} --time-budget {args.budget:g}` with its config's "
            f"schedule, in {precision.name} ({precision.reason}; YOLO trains and tests in fp32, "
            f"amp off) (batch {cfg.system.batch_size}, {cfg.system.opt_algo} "
            f"{cfg.system.learning_rate:g}, warm-up {cfg.system.warmup_iter}, max_iter "
            f"{cfg.system.max_iter}: it stops at max_iter or the budget, whichever comes first), "
            f"{ours['workers']} loader worker(s); tested at scales {cfg.db.test_scales}"
            + (f"; changed: {', '.join(args.ours_set)}" if args.ours_set else "") + ".")
    if peers:
        s = yolo_settings
        lines.append(
            f"\nYOLO (ultralytics {peers[0]['version']}: {', '.join(r['label'] for r in peers)} "
            f"built from their yaml, no weights downloaded): ultralytics' recipe (mosaic, colour, flips, "
            f"scale, EMA) except batch {s['batch']} (ours'), nbs {s['nbs']} (an optimizer step "
            f"each batch, as ours; the default 64 would accumulate {64 // s['batch']} batches), "
            f"AdamW lr0 {s['lr0']:g} (what optimizer=auto picks for a run under 10,000 "
            f"iterations), a warm-up of {cfg.system.warmup_iter} batches as ours' "
            f"(warmup_epochs {s['warmup_epochs']:.3g}), 0 loader workers (ultralytics' choice on a CPU), "
            f"amp and plots off, no validation while training; the EMA weights of last.pt "
            f"tested at conf 0.001, NMS IoU 0.7, max_det {cfg.db.max_per_image}. ultralytics "
            f"would set torch to min(8, CPUs - 1) threads on a CPU; set back to {args.threads}"
            + (f"; changed: {', '.join(args.yolo_set)}" if args.yolo_set else "") + ".")
        lines.append(
            f"\nImage size {imgsz}{' (given)' if args.imgsz else ''}: the long side a page is "
            f"letterboxed to. Chosen so that the median problem of the training pages "
            f"({why['median_native_height']:.0f} px tall on pages of median long side "
            f"{why['median_long_side']:.0f} px) is {CELLS} cells of YOLO's finest stride "
            f"({FINEST_STRIDE} px) tall: {why['median_height']:.0f} px, the 5th percentile "
            f"{why['p5_height']:.0f} px. Smaller, problems fall under one cell; larger costs CPU "
            f"time the budget does not have. Ours sees the pages at scale "
            f"{cfg.db.test_scales[0]:g} (about {why['median_native_height'] * cfg.db.test_scales[0]:.0f} px "
            f"for the median problem) with an output stride of "
            f"{round(cfg.db.input_size[0] / cfg.db.output_sizes[0][0])}.")
    lines.append(
        "\nms/page: one page at batch 1, the mean over the validation pages after a warm-up "
        "page: the network, then post-processing (ours: decoding, centre check, "
        "soft-NMS, box classifier; YOLO: NMS), after the page is read and resized (ours) or "
        "letterboxed (YOLO). Peak memory: the largest resident set of one process (train.py "
        "or a loader worker; the YOLO process), from the kernel's ru_maxrss.")
    lines += [f"\n{note}" for note in notes]
    lines.append(
        "\nThe FCOS rows of the accuracy sections stay as they are: they measure something "
        "else (a torchvision detector fed exactly our crops and augmentation, at our input "
        "size, on the code of their date); this section is the comparison with the detector "
        "a user would pick instead.")
    body = "\n".join(lines) + "\n\n" + markdown_table(header, table)
    body += ("\n\nAP and AP50 on each evaluation set (pages), AP50 per category:\n\n"
             + markdown_table(["set", "detector", "AP", "AP50"] + names, scored))
    return body


# ---------------------------------------------------------------------------

def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--phase"]:
        return phase_main(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.bench_peer",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=10.0, metavar="MINUTES",
                        help="wall-clock training minutes for each detector (default %(default)s)")
    parser.add_argument("--detectors", default="ours," + ",".join(PEERS),
                        help="comma-separated, of ours, " + ", ".join(PEERS) + " (default: all)")
    parser.add_argument("--config", default="CenterNet-tiny")
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "ks"),
                        help="folder of ks_train.txt, ks_val.txt (and ks_holdout.txt)")
    parser.add_argument("--workdir", default=os.path.join(ROOT, "cache", "bench_peer"),
                        help="this benchmark's folder: pages, YOLO data, snapshots, logs "
                             "(default %(default)s)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads of every process (default: the CPUs, %(default)s)")
    parser.add_argument("--workers", type=int, default=None,
                        help="ours' loader workers (default: the config's system.workers)")
    parser.add_argument("--imgsz", type=int, default=0,
                        help="YOLO image size (default 0: chosen from the pages, choose_imgsz)")
    parser.add_argument("--train-images", type=int, default=0,
                        help="training pages (default 0: all of ks_train.txt)")
    parser.add_argument("--max-images", type=int, default=0,
                        help="pages scored of each evaluation set (default 0: all)")
    parser.add_argument("--ours-set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a change to ours' config (train.py --set), e.g. system.max_iter=3600")
    parser.add_argument("--yolo-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a change to YOLO's training arguments, e.g. mosaic=0 (JSON, "
                             "else a string)")
    parser.add_argument("--print-only", action="store_true",
                        help="print the section instead of writing it into BENCHMARKS.md")
    args = parser.parse_args(argv)

    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    unknown = [d for d in detectors if d != "ours" and d not in PEERS]
    if unknown or not detectors:
        parser.error(f"--detectors: {', '.join(unknown) or 'none'}: choose from ours, "
                     f"{', '.join(PEERS)}")
    missing = ultralytics_missing() if any(d in PEERS for d in detectors) else None
    if missing:
        print(f"bench_peer: {missing}.", file=sys.stderr)
        return 2
    args.data = os.path.abspath(args.data)
    if not os.path.isfile(os.path.join(args.data, "ks_val.txt")):
        parser.error(f"no synthetic set in {args.data}: python -m db.synth --out {args.data}")
    yolo_extra = {}
    for assignment in args.yolo_set:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            parser.error(f"--yolo-set {assignment!r}: KEY=VALUE")
        try:
            yolo_extra[key] = json.loads(value)
        except json.JSONDecodeError:
            yolo_extra[key] = value

    from bench.report import write_section
    from config import load_config, parse_assignments
    from db import load_db

    workdir = prepare_workdir(args.workdir)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               YOLO_OFFLINE="1", YOLO_CONFIG_DIR=os.path.join(workdir, "ultralytics-settings"),
               PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    base_cfg = load_config(args.config, check_data=False)
    pages_dir, counts, notes = prepare_pages(args, base_cfg, workdir, env)
    overrides = ours_overrides(args, workdir, pages_dir)
    cfg = load_config(args.config, overrides=parse_assignments(overrides))
    train_records = load_db(cfg, "train").records
    imgsz, why = choose_imgsz(train_records)
    imgsz = args.imgsz or imgsz
    batches_per_epoch = math.ceil(len(train_records) / cfg.system.batch_size)
    yolo_settings = {"batch": cfg.system.batch_size, "nbs": cfg.system.batch_size,
                     "lr0": round(0.002 * 5 / (4 + cfg.db.categories), 6),
                     "warmup_epochs": cfg.system.warmup_iter / batches_per_epoch}
    sets = _sets_spec(counts)
    common = {"config": args.config, "overrides": overrides, "threads": args.threads, "sets": sets}

    rows = []
    if "ours" in detectors:
        trained = train_ours(args, cfg, overrides, env, workdir)
        tested = run_phase("test-ours", {**common, "phase": "test-ours"}, env, workdir)
        rows.append({"key": "ours", "name": f"{args.config} (ours)", **trained,
                     "parameters": tested["parameters"], "test": tested})
    if any(d in PEERS for d in detectors):
        data_yaml = prepare_yolo(cfg, pages_dir, workdir)
        from importlib.metadata import version
        for key in (d for d in detectors if d in PEERS):
            label, model_yaml = PEERS[key]
            shutil.rmtree(os.path.join(workdir, "yolo-runs", key), ignore_errors=True)
            trained = run_phase(f"train-{key}", {
                **common, "phase": "train-yolo", "model": model_yaml, "data": data_yaml,
                "imgsz": imgsz, "budget": args.budget, "project": os.path.join(workdir, "yolo-runs"),
                "name": key, "settings": yolo_extra, **yolo_settings}, env, workdir)
            tested = run_phase(f"test-{key}", {**common, "phase": "test-yolo",
                                               "weights": trained["weights"], "imgsz": imgsz},
                               env, workdir)
            rows.append({"key": key, "name": f"{label} (ultralytics)", "label": label,
                         "version": version("ultralytics"),
                         **{k: trained[k] for k in ("steps", "images_seen", "train_minutes",
                                                    "parameters")},
                         "train_peak_mib": trained["peak_mib"], "test": tested})
    for row in rows:
        row["scores"] = score(cfg, pages_dir, row["test"])
    body = report(rows, cfg, args, counts, imgsz, why, notes, yolo_settings)
    with open(os.path.join(workdir, "rows.json"), "w", encoding="utf-8") as f:
        json.dump([{**{k: v for k, v in r.items() if k not in ("test", "scores")},
                    "scores": {name: {k: v for k, v in m.items() if k != "pr_curves"}
                               for name, m in r["scores"].items()}} for r in rows],
                  f, indent=1, default=str)
    if args.print_only:
        print(body)
    else:
        print(write_section(f"peer-{args.config}-{args.budget:g}min", body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
