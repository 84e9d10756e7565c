"""Accuracy and speed at an equal training budget: our small CenterNet against
a torchvision detector (FCOS with a ResNet-18 FPN, no pretrained weights),
both trained from scratch on the same synthetic 口算 pages for the same
wall-clock minutes on this machine, and evaluated on the same validation
pages with the same pycocotools code (test/evaluate.py).

    python -m bench.bench_accuracy --budget 10            # both, 10 minutes each
    python -m bench.bench_accuracy --budget 10 --only ours

Same data, input size and augmentation: the peer trains on exactly the crops
our sampler makes (sample.kp_detection.augmented_input: crop scale, resize to
db.input_size, flip, colour and lighting as the config says, the same
normalisation), drawn with the same seeds, and is tested on whole pages at the
config's test scales, like test.py. The peer keeps torchvision's recipe where
ours has no counterpart: FCOS's head and losses, SGD with momentum, a linear
warm-up, trainable BatchNorm in the backbone (frozen BatchNorm, torchvision's
default for fine-tuning, cannot train from scratch).

Reported, for both: iterations and images seen in the budget, AP, AP50, AP75,
per-category AP, AP and AP50 on the dense pages (more than 100 problems), and
milliseconds per page at batch 1 (the whole test pipeline: network, decoding,
NMS; FCOS: its forward with its post-processing), after the page is read and
resized. The results go to the "accuracy" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import torch

from bench.report import markdown_table, write_section
from config import load_config
from db import load_db, read_image
from nnet.checkpoints import find_snapshot, load_trained_network
from sample.dataset import TrainingExamples
from sample.kp_detection import augmented_input
from test.evaluate import coco_results, evaluate
from test.run import detect_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DENSE = 100  # pages with more problems than this count as dense


def bench_config(args) -> str:
    """A config extending args.config whose files stay under the work folder."""
    os.makedirs(args.workdir, exist_ok=True)
    path = os.path.join(args.workdir, f"bench-{args.config}.json")
    settings = {"base": args.config,
                "system": {"data_dir": os.path.abspath(args.data),
                           "cache_dir": os.path.join(args.workdir, "cache"),
                           "result_dir": os.path.join(args.workdir, "results"),
                           "max_iter": 10 ** 7, "snapshot": 10 ** 7,
                           "val_iter": 0, "val_ap_iter": 0}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=1)
    return path


# ---------------------------------------------------------------------------
# ours: train.py and the test pipeline, as users run them
# ---------------------------------------------------------------------------

def run_ours(cfg_path, args):
    cfg = load_config(cfg_path)
    # the work folder is the benchmark's own: a snapshot of an earlier run
    # would be taken for this run's result
    shutil.rmtree(cfg.snapshot_dir, ignore_errors=True)
    command = [sys.executable, os.path.join(ROOT, "train.py"), cfg_path, "--device", "cpu",
               "--workers", str(args.workers), "--time-budget", str(args.budget)]
    print("ours:", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    train_minutes = (time.perf_counter() - started) / 60
    snapshot = find_snapshot(cfg, "latest")
    iteration = snapshot.iteration
    net = load_trained_network(cfg, snapshot, torch.device("cpu"))
    db = load_db(cfg, cfg.system.val_split)
    out_dir = os.path.join(cfg.result_dir, f"val_{iteration}")
    run = detect_split(net, cfg, db, "cpu", out_dir, max_images=args.val_images)
    # everything after the page is read and resized: network, decoding, centre check, NMS
    seconds = sum(v for k, v in run.timer.seconds.items() if k != "preparation")
    per_page_ms = 1000 * seconds / max(1, run.timer.images)
    return summary("CenterNet-tiny (ours)" if args.config == "CenterNet-tiny" else args.config,
                   cfg, db, run.detections, iteration, train_minutes, per_page_ms,
                   parameters=sum(p.numel() for p in net.parameters()))


# ---------------------------------------------------------------------------
# the peer: torchvision FCOS, ResNet-18 FPN, from scratch
# ---------------------------------------------------------------------------

def build_peer(cfg):
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5,
                                   returned_layers=[2, 3, 4], norm_layer=torch.nn.BatchNorm2d,
                                   extra_blocks=LastLevelP6P7(256, 256))
    side = max(cfg.db.input_size)
    # inputs arrive normalised by our sampler/test code: no second normalisation
    return FCOS(backbone, num_classes=cfg.db.categories + 1, min_size=side, max_size=side,
                image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0],
                score_thresh=0.05, detections_per_img=cfg.db.max_per_image, topk_candidates=1000)


class PeerExamples(torch.utils.data.Dataset):
    """Our training crops, as (image tensor, torchvision target): the same
    images, seeds and augmentation as TrainingExamples gives CenterNet."""

    def __init__(self, examples: TrainingExamples):
        self.examples = examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, key):
        iteration, slot = key
        record = self.examples.record_for(iteration, slot)
        rng = self.examples.rng_for(iteration, slot)
        image, boxes, classes = augmented_input(read_image(record.path), record,
                                                self.examples.cfg, rng, augment=True)
        target = {"boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                  "labels": torch.as_tensor(classes + 1, dtype=torch.int64)}
        return torch.from_numpy(image), target


def run_peer(cfg_path, args):
    cfg = load_config(cfg_path)
    torch.manual_seed(cfg.system.seed)
    model = build_peer(cfg)
    train_db = load_db(cfg, cfg.system.train_split)
    examples = PeerExamples(TrainingExamples(train_db, cfg))
    batch = cfg.system.batch_size
    keys = ([(it, slot) for slot in range(batch)] for it in range(1, 10 ** 7))
    loader = torch.utils.data.DataLoader(examples, batch_sampler=keys, num_workers=args.workers,
                                         collate_fn=lambda items: tuple(zip(*items)))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=args.peer_lr, momentum=0.9, weight_decay=1e-4)
    warmup = cfg.system.warmup_iter
    model.train()
    started = time.perf_counter()
    deadline = started + 60 * args.budget
    iteration = 0
    for iteration, (images, targets) in enumerate(loader, 1):
        for group in optimizer.param_groups:
            group["lr"] = args.peer_lr * min(1.0, iteration / max(1, warmup))
        losses = model(list(images), list(targets))
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise RuntimeError(f"peer: loss became {loss.item()} at iteration {iteration}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 10.0)
        optimizer.step()
        if iteration % 10 == 0:
            print(f"peer: iteration {iteration}, loss {loss.item():.3f}, "
                  f"{(time.perf_counter() - started) / 60:.1f} min", flush=True)
        if time.perf_counter() > deadline:
            break
    train_minutes = (time.perf_counter() - started) / 60

    model.eval()
    db = load_db(cfg, cfg.system.val_split)
    records = db.records[:args.val_images] if args.val_images else db.records
    detections, seconds = {}, 0.0
    mean = np.asarray(cfg.db.mean, np.float32)
    std = np.asarray(cfg.db.std, np.float32)
    with torch.inference_mode():
        for record in records:
            image = read_image(record.path)
            found = []
            for scale in cfg.db.test_scales:
                height, width = int(record.height * scale), int(record.width * scale)
                resized = cv2.resize(image, (width, height)) if scale != 1 else image
                tensor = torch.from_numpy(((resized.astype(np.float32) / 255 - mean) / std)
                                          .transpose(2, 0, 1).copy())
                model.transform.min_size = (min(height, width),)
                model.transform.max_size = max(height, width)
                start = time.perf_counter()
                output = model([tensor])[0]
                seconds += time.perf_counter() - start
                boxes = output["boxes"].numpy() / np.array([width / record.width,
                                                            height / record.height] * 2)
                found.append(np.concatenate([boxes, output["scores"].numpy()[:, None],
                                             output["labels"].numpy()[:, None] - 1], axis=1))
            merged = np.concatenate(found)
            merged = merged[np.argsort(-merged[:, 4])][:cfg.db.max_per_image]
            detections[record.image_id] = merged.astype(np.float32)
    per_page_ms = 1000 * seconds / max(1, len(records))
    return summary("FCOS ResNet-18 FPN (torchvision)", cfg, db, detections, iteration,
                   train_minutes, per_page_ms,
                   parameters=sum(p.numel() for p in model.parameters()))


# ---------------------------------------------------------------------------

def summary(name, cfg, db, detections, iterations, train_minutes, per_page_ms, parameters):
    image_ids = list(detections)
    results = coco_results(detections, db.category_ids)
    metrics = evaluate(results, db, cfg, image_ids)
    dense_ids = [r.image_id for r in db.records if r.image_id in detections and r.num_objects > DENSE]
    dense = None
    if dense_ids:
        dense_results = [r for r in results if r["image_id"] in set(dense_ids)]
        dense = evaluate(dense_results, db, cfg, dense_ids)
    print(f"{name}: AP {metrics['AP']:.3f} AP50 {metrics['AP50']:.3f} after {iterations} "
          f"iterations ({train_minutes:.1f} min)", flush=True)
    return {"name": name, "metrics": metrics, "dense": dense, "dense_pages": len(dense_ids),
            "iterations": iterations, "images": iterations * cfg.system.batch_size,
            "train_minutes": train_minutes, "per_page_ms": per_page_ms,
            "parameters": parameters, "pages": len(image_ids)}


def report(rows, cfg, args):
    def number(value):
        return "-" if value is None else f"{value:.3f}"

    header = ["detector", "parameters", "iterations", "images seen", "AP", "AP50", "AP75",
              f"dense AP (>{DENSE})", f"dense AP50 (>{DENSE})", "ms/page"]
    table = [[r["name"], f"{r['parameters']:,}", r["iterations"], r["images"],
              number(r["metrics"]["AP"]), number(r["metrics"]["AP50"]),
              number(r["metrics"]["AP75"]),
              number(r["dense"]["AP"] if r["dense"] else None),
              number(r["dense"]["AP50"] if r["dense"] else None),
              f"{r['per_page_ms']:.0f}"] for r in rows]
    names = cfg.db.category_names
    per_category = [[r["name"]] + [number(r["metrics"]["per_category"].get(n)) for n in names]
                    for r in rows]
    body = (f"Training budget: {args.budget:g} minutes of wall-clock time each, on this machine "
            f"(`torch` threads: {torch.get_num_threads()}), from scratch, config "
            f"`{args.config}` (batch {cfg.system.batch_size}, input {cfg.db.input_size}, crop "
            f"scales {cfg.db.rand_scales}), {args.workers} loader worker(s). Evaluated on "
            f"{rows[0]['pages']} validation pages of `{args.data}` at test scales "
            f"{cfg.db.test_scales} ({rows[0]['dense_pages']} dense pages), COCO AP at up to "
            f"{cfg.db.max_per_image} detections per page. ms/page: one page at batch 1 "
            f"from the resized page to the final boxes.\n\n"
            + markdown_table(header, table)
            + "\n\nAP per category:\n\n" + markdown_table(["detector"] + names, per_category))
    # one section per budget, so that runs at several budgets stand side by side
    write_section(f"accuracy-{args.config}-{args.budget:g}min", body)
    print(body)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=10.0, help="training minutes for each")
    parser.add_argument("--config", default="CenterNet-tiny")
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "ks"))
    parser.add_argument("--workdir", default=os.path.join(ROOT, "cache", "bench_accuracy"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--val-images", type=int, default=0, help="0: the whole val split")
    parser.add_argument("--peer-lr", type=float, default=0.005,
                        help="SGD learning rate of the peer (torchvision's FCOS recipe: 0.01 at batch 16)")
    parser.add_argument("--only", choices=("ours", "peer"), default=None)
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.data, "ks_val.txt")):
        parser.error(f"no synthetic set in {args.data}: python -m db.synth --out {args.data}")
    cfg_path = bench_config(args)
    rows = []
    if args.only in (None, "ours"):
        rows.append(run_ours(cfg_path, args))
    if args.only in (None, "peer"):
        rows.append(run_peer(cfg_path, args))
    report(rows, load_config(cfg_path), args)


if __name__ == "__main__":
    main()
