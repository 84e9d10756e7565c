"""CenterNet on a GPU, in one prepared run (issue 12 item 4): what precision
"auto" picks there; CenterNet-52 single-scale inference in ms per image, fp32,
bf16 and fp16, one image per network call; a CenterNet-52 training step at
batch 8 (time and peak memory) in each precision; db.test_batch_images 1
against 8; and CenterNet-tiny trained for as many iterations as a few minutes
allow, with its validation AP.

    python -m bench.bench_gpu                        # on the GPU: the "gpu" section of BENCHMARKS.md
    python -m bench.bench_gpu --json gpu.json        # also the raw figures, saved after each stage
    python -m bench.bench_gpu --device cpu --quick   # every measurement at toy sizes on the CPU
                                                     # (well under a minute): tests the script
                                                     # before GPU time is spent; writes no section

Inference is test.py's own pipeline (test/kp_detection.detect_images:
network, decoding, centre check, soft-NMS) on random pages of the config's
input size, at scale 1 with the config's flip; the "network" column is its
network stage alone. Training is train.py's step (NetworkFactory.train_step:
forward, loss, backward, Adam) on a batch whose targets come from the
sampler's own `keypoint_targets` for random boxes, so they have the shapes
the config's heads have (one corner channel with db.class_agnostic_corners).
Precisions go through nnet/device.py as everywhere else; fp16 runs only on
CUDA, so on a CPU its rows say so. Each time is the median of the timed
runs after warm-up runs, with the device synchronised around each.

CenterNet-tiny: a short in-process probe measures its training steps per
second (real sampler batches, the loader's workers), train.py then runs as
many iterations as --tiny-minutes allow (the schedule scaled to them: the
learning rate drops at 80 %), and test.py measures AP on the validation
split. The synthetic set (`python -m db.synth --seed 0`) is generated into
--data first when it is not there.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from bench.timing import median_seconds
from config import load_config
from nnet.device import PRECISIONS, DeviceError, choose_device, choose_precision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --quick: every stage at toy sizes, so that the whole script runs on a CPU
# in well under a minute (the hourglass of CenterNet-52 needs inputs of 127
# or more: five halvings)
QUICK_DB = {"input_size": [127, 127], "output_sizes": [[32, 32]]}
QUICK_TINY_SETTINGS = ["db.input_size=63", "db.output_sizes=[[16,16]]", "db.border=16",
                       "db.test_scales=[1]"]


def training_batch(cfg, batch: int, boxes_per_image: int = 40, seed: int = 0) -> dict:
    """One training batch shaped as the sampler makes it: random images, and
    the targets of random boxes from sample.kp_detection.keypoint_targets."""
    from sample.kp_detection import boxes_to_classify, keypoint_targets

    rng = np.random.default_rng(seed)
    height, width = cfg.db.input_size
    count = min(boxes_per_image, cfg.db.max_tag_len)
    examples = []
    for _ in range(batch):
        x1 = rng.uniform(0, 0.8 * width, count)
        y1 = rng.uniform(0, 0.8 * height, count)
        x2 = np.minimum(x1 + rng.uniform(8, 0.2 * width, count), width - 1)
        y2 = np.minimum(y1 + rng.uniform(8, 0.2 * height, count), height - 1)
        boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)  # (N, 4) input pixels
        classes = rng.integers(0, cfg.db.categories, count)
        example = keypoint_targets(boxes, classes, cfg)
        if cfg.db.classes_from == "boxes":
            example.update(boxes_to_classify(boxes, classes, cfg, rng))
        example["image"] = rng.standard_normal((3, height, width), dtype=np.float32)
        examples.append(example)
    return {name: torch.from_numpy(np.stack([e[name] for e in examples])) for name in examples[0]}


def timed_ms(fn, device, warmup: int, steps: int) -> float:
    """Median milliseconds of `steps` calls of fn after `warmup` calls (bench/timing.py)."""
    from test.timing import device_sync

    return 1000 * median_seconds(fn, steps, warmup, sync=device_sync(device))


def precisions_here(device) -> tuple[list[str], dict]:
    """The precisions this device runs, and {precision: why not} for the others."""
    usable, refused = [], {}
    for name in PRECISIONS:
        try:
            choose_precision(name, device)
            usable.append(name)
        except DeviceError:
            refused[name] = f"not run: {name} needs a CUDA device"
    return usable, refused


def load(config, quick, **system):
    return load_config(config, check_data=False,
                       overrides={"system": system, "db": {"test_scales": [1.0],
                                                           **(QUICK_DB if quick else {})}})


def inference(config, precision, device, images_per_call, warmup, steps, quick) -> dict:
    """ms per image of test.py's pipeline, and of its network stage, with
    `images_per_call` images per network call (db.test_batch_images)."""
    from models import build_network
    from test.kp_detection import Page, detect_images, prepare_image
    from test.timing import StageTimer, device_sync

    cfg = load(config, quick, precision=precision)
    torch.manual_seed(0)
    net = build_network(cfg).to(device).eval()
    if cfg.system.channels_last:
        net = net.to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    height, width = cfg.db.input_size
    # at the scales of the config's pixels (random weights would set any scale on a first look)
    pictures = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                for _ in range(images_per_call)]
    prepared = [Page(prepare_image(p, cfg, [1.0]), p) for p in pictures]
    timer = StageTimer(device_sync(device))

    def run():
        detect_images(net, prepared, cfg, device, timer)

    for _ in range(warmup):
        run()
    timer.seconds = {name: 0.0 for name in timer.seconds}
    total = timed_ms(run, device, 0, steps) / images_per_call
    network = 1000 * timer.seconds["network"] / (steps * images_per_call)
    net = None  # free its memory before emptying the cache (run() holds it too)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"ms_per_image": total, "network_ms_per_image": network}


def training(config, precision, device, batch, warmup, steps, quick) -> dict:
    """One training step's milliseconds and peak memory (GiB, CUDA only)."""
    from nnet.py_factory import NetworkFactory

    cfg = load(config, quick, precision=precision, batch_size=batch)
    factory = NetworkFactory(cfg, device)
    data = training_batch(cfg, batch)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ms = timed_ms(lambda: factory.train_step(data), device, warmup, steps)
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    factory = None  # free its memory before emptying the cache
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"step_ms": ms, "peak_gib": peak}


def run_command(command, log) -> None:
    log("$ " + " ".join(command))
    completed = subprocess.run(command, cwd=ROOT)
    if completed.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed with exit status {completed.returncode}")


def tiny_training(device, minutes, data_dir, workers, quick, log) -> dict:
    """CenterNet-tiny trained for about `minutes` on `device`, and its val AP."""
    from db import load_db
    from nnet.py_factory import NetworkFactory
    from sample.dataset import TrainingExamples, training_loader

    scratch = tempfile.mkdtemp(prefix="bench_gpu_tiny_")
    if quick:
        data_dir = os.path.join(scratch, "data")
        from db.synth import generate
        generate(data_dir, {"train": 6, "val": 3, "test": 3}, seed=0, workers=1, small=True,
                 log=lambda message: None)
    elif not os.path.isfile(os.path.join(data_dir, "ks_train.txt")):
        run_command([sys.executable, "-m", "db.synth", "--out", data_dir, "--seed", "0"], log)
    config_path = os.path.join(scratch, "CenterNet-tiny-gpu.json")
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump({"base": "CenterNet-tiny",
                   "system": {"data_dir": os.path.abspath(data_dir),
                              "cache_dir": os.path.join(scratch, "cache"),
                              "result_dir": os.path.join(scratch, "results")}}, f)
    settings = QUICK_TINY_SETTINGS if quick else []

    # probe: steps per second with real batches from the loader
    from config import parse_assignments
    cfg = load_config(config_path, overrides=parse_assignments(settings) or None)
    factory = NetworkFactory(cfg, device)
    probe_warmup, probe_steps = (1, 2) if quick else (5, 30)
    loader = training_loader(TrainingExamples(load_db(cfg, cfg.system.train_split), cfg), 1,
                             probe_warmup + probe_steps, workers=workers,
                             pin_memory=device.type == "cuda")
    from test.timing import device_sync
    sync = device_sync(device)
    for step, batch in enumerate(loader):
        if step == probe_warmup:
            sync()
            start = time.perf_counter()
        factory.train_step(batch)
    sync()
    seconds_per_step = (time.perf_counter() - start) / probe_steps
    precision = factory.precision
    del factory, loader
    iterations = 3 if quick else max(100, int(0.9 * 60 * minutes / seconds_per_step))
    log(f"CenterNet-tiny probe: {seconds_per_step * 1000:.0f} ms a step with data "
        f"({precision}); training {iterations} iterations")

    schedule = [f"system.max_iter={iterations}", f"system.snapshot={iterations}",
                f"system.stepsize={max(1, int(0.8 * iterations))}", "system.val_iter=0"]
    if quick:
        schedule.append("system.warmup_iter=1")
    sets = [part for setting in settings + schedule for part in ("--set", setting)]
    device_flag = ["--device", device.type]
    started = time.perf_counter()
    run_command([sys.executable, "train.py", config_path, *device_flag, "--workers", str(workers),
                 "--time-budget", f"{1.1 * minutes:g}", *sets], log)
    train_seconds = time.perf_counter() - started
    test_flags = ["--max-images", "2"] if quick else []
    run_command([sys.executable, "test.py", config_path, "--testiter", "latest", "--split", "val",
                 *device_flag, *test_flags, *sets], log)
    found = sorted(glob.glob(os.path.join(scratch, "results", "**", "metrics.json"),
                             recursive=True))
    if not found:
        raise RuntimeError(f"test.py wrote no metrics.json under {scratch}/results")
    with open(found[-1], encoding="utf-8") as f:
        metrics = json.load(f)
    log_path = os.path.join(scratch, "cache", "nnet", "CenterNet-tiny-gpu", "log.jsonl")
    with open(log_path, encoding="utf-8") as f:
        done = max((json.loads(line).get("iteration", 0) for line in f if line.strip()), default=0)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"iterations": done, "planned_iterations": iterations, "precision": precision,
            "train_minutes": train_seconds / 60, "probe_ms_per_step": 1000 * seconds_per_step,
            "batch_size": cfg.system.batch_size, "workers": workers,
            "AP": metrics["AP"], "AP50": metrics["AP50"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None,
                        help="cuda (default when available), cuda:N, or cpu with --quick")
    parser.add_argument("--quick", action="store_true",
                        help="every measurement at toy sizes, one timed run each; writes no section")
    parser.add_argument("--config", default="CenterNet-52")
    parser.add_argument("--batch", type=int, default=8, help="training batch (default 8)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--test-batch", type=int, default=8,
                        help="db.test_batch_images compared with 1 (default 8)")
    parser.add_argument("--tiny-minutes", type=float, default=5.0)
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "ks"),
                        help="the synthetic set for CenterNet-tiny (generated when missing)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="loader workers of the CenterNet-tiny run")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    try:
        device = choose_device(args.device)
    except DeviceError as e:
        parser.error(str(e))
    if device.type != "cuda" and not args.quick:
        parser.error(f"--device {device.type}: the full run needs a CUDA device; "
                     f"on a CPU use --quick to test the script")
    if args.quick:
        args.batch, args.steps, args.warmup = 2, 1, 0
        args.test_batch, args.workers = 2, 0
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes in every stage here

    def log(message):
        print(message, flush=True)

    auto = choose_precision("auto", device)
    figures = {"device": str(device), "quick": args.quick, "auto": {"precision": auto.name,
                                                                   "reason": auto.reason},
               "card": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "inference": {}, "training": {}, "test_batch_images": {}, "refused": {}}
    log(str(auto))

    def save():
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(figures, f, indent=1)

    usable, figures["refused"] = precisions_here(device)
    started = time.perf_counter()
    for precision in usable:
        figures["inference"][precision] = inference(args.config, precision, device, 1,
                                                    args.warmup, args.steps, args.quick)
        log(f"inference {precision}: {figures['inference'][precision]}")
        save()
    for images in (1, args.test_batch):
        figures["test_batch_images"][images] = inference(args.config, auto.name, device, images,
                                                         min(args.warmup, 1), max(args.steps // 2, 1),
                                                         args.quick)
        log(f"test_batch_images {images} ({auto.name}): {figures['test_batch_images'][images]}")
        save()
    for precision in usable:
        figures["training"][precision] = training(args.config, precision, device, args.batch,
                                                  args.warmup, args.steps, args.quick)
        log(f"training {precision}: {figures['training'][precision]}")
        save()
    figures["tiny"] = tiny_training(device, args.tiny_minutes, args.data, args.workers,
                                    args.quick, log)
    figures["seconds"] = time.perf_counter() - started
    save()
    log(json.dumps(figures, indent=1))
    body = report_body(figures, args)
    if args.quick:
        log(f"{body}\n\nquick run on {device} done in {figures['seconds']:.0f} s; "
            f"no section written")
    else:
        from bench.report import write_section
        write_section("gpu", body)


def report_body(figures, args) -> str:
    """The "gpu" section of BENCHMARKS.md from the figures of main()."""
    from bench.report import markdown_table

    def gib(value):
        return "n/a" if value is None else f"{value:.2f}"

    fp32 = figures["inference"]["fp32"]["ms_per_image"]
    infer_rows = [[p, f"{v['ms_per_image']:.1f}", f"{v['network_ms_per_image']:.1f}",
                   f"{fp32 / v['ms_per_image']:.2f}x"] for p, v in figures["inference"].items()]
    step32 = figures["training"]["fp32"]["step_ms"]
    train_rows = [[p, f"{v['step_ms']:.0f}", gib(v["peak_gib"]),
                   f"{step32 / v['step_ms']:.2f}x"] for p, v in figures["training"].items()]
    one = figures["test_batch_images"][1]["ms_per_image"]
    batch_rows = [[n, f"{v['ms_per_image']:.1f}", f"{one / v['ms_per_image']:.2f}x"]
                  for n, v in figures["test_batch_images"].items()]
    auto, tiny = figures["auto"], figures["tiny"]
    auto_ratio = fp32 / figures["inference"][auto["precision"]]["ms_per_image"]
    refused = "".join(f" {p}: {why}." for p, why in figures["refused"].items())
    return (
        f"Card: {figures['card']}. `auto` picks **{auto['precision']}** here ({auto['reason']}): "
        f"{auto_ratio:.2f}x the speed of fp32 in inference below. Random inputs; medians of "
        f"{args.steps} runs after {args.warmup} warm-up runs.{refused}\n\n"
        f"{args.config} inference, one image per call at its input size, scale 1 with the "
        f"config's flip: test.py's pipeline (network, decoding, centre check, soft-NMS) and "
        f"its network stage. The original reports 270 ms per image for CenterNet-52 on a "
        f"Tesla P100, another card.\n\n"
        + markdown_table(["precision", "ms per image", "network ms per image",
                          "speed-up over fp32"], infer_rows)
        + f"\n\n{args.config} training step (forward, loss, backward, Adam), batch "
          f"{args.batch}:\n\n"
        + markdown_table(["precision", "step (ms)", "peak memory (GiB)", "speed-up over fp32"],
                         train_rows)
        + f"\n\n`db.test_batch_images` ({auto['precision']}):\n\n"
        + markdown_table(["images per call", "ms per image", "speed-up over 1"], batch_rows)
        + f"\n\nCenterNet-tiny trained {tiny['train_minutes']:.1f} min ({tiny['iterations']} "
          f"iterations of batch {tiny['batch_size']}, {tiny['precision']}, {tiny['workers']} "
          f"loader workers, learning rate divided by 10 at 80 %): validation AP "
          f"{tiny['AP']:.3f}, AP50 {tiny['AP50']:.3f}.")


if __name__ == "__main__":
    main()
