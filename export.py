#!/usr/bin/env python
"""Export a trained CenterNet's test pass to ONNX and check it against PyTorch.

    python export.py CenterNet-tiny --testiter latest                 # beside the snapshots
    python export.py CenterNet-52 --testiter 5000 --out centernet52.onnx --image page.jpg

Writes `<cache_dir>/nnet/<config>/<config>_<iteration>.onnx` (or --out): the
network's `predict`, images (B, 3, H, W) in, its maps out by name, batch,
height and width dynamic, opset 17 (nnet/onnx_model.py says how corner
pooling is exported exactly). Then runs the file with onnxruntime on a page
(--image, default the first page of the val split) prepared as test.py
prepares it, compares every map with PyTorch's and prints the largest
absolute differences; exit status 1 when one exceeds --tolerance. Run the
export with `python demo.py <config> --onnx <file> --images ...`.

Needs the optional packages onnx and onnxruntime (requirements-onnx.txt;
scripts/setup.sh installs them).
"""

from __future__ import annotations

import argparse
import os
import sys

from config import ConfigError


def parse_args(argv=None):
    from test.cli import iteration_argument

    parser = argparse.ArgumentParser(description="Export a trained CenterNet to ONNX.")
    parser.add_argument("config", help="config name (config/<name>.json) or path to a .json")
    parser.add_argument("--testiter", type=iteration_argument, required=True,
                        help="snapshot to export: an iteration, 'best' or 'latest'")
    parser.add_argument("--out", default=None,
                        help="the .onnx file, or a folder to write <config>_<iter>.onnx in "
                             "(default: beside the snapshot); the box classifier goes beside it "
                             "as <name>.classifier.onnx")
    parser.add_argument("--image", default=None,
                        help="page to check the export on (default: the first of the val split)")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="largest absolute difference allowed between a map of PyTorch and "
                             "of onnxruntime (default: %(default)g)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="change one setting of the config (as train.py --set)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        print(f"export.py: {e.name} is not installed: pip install -r requirements-onnx.txt",
              file=sys.stderr)
        return 2

    import torch

    from db import load_db, read_image
    from db.errors import AnnotationError, ImageReadError
    from nnet.checkpoints import find_snapshot, load_trained_network
    from nnet.onnx_model import OPSET, compare_with_pytorch, export_onnx
    from nnet.snapshot import SnapshotError
    from outputs import OutputError, check_output_file, why_not_writable
    from test.cli import load_test_config
    from test.kp_detection import prepare_image

    try:
        cfg = load_test_config(args.config, None, check_data=args.image is None,
                               assignments=args.set)
        snapshot = find_snapshot(cfg, args.testiter)
        out = output_path(args.out, cfg, snapshot.iteration)
        check_output_file(out, "--out" if args.out else "the model beside the snapshots")
        net = load_trained_network(cfg, snapshot, torch.device("cpu"))
        # FileNotFoundError: no annotation file; IndexError: a split without pages
        page = args.image or load_db(cfg, cfg.system.val_split).records[0].path
        images = prepare_image(read_image(page), cfg)[0].images  # first test scale, with its flip
    except (ConfigError, SnapshotError, FileNotFoundError, AnnotationError, ImageReadError,
            IndexError, OutputError) as e:
        print(f"export.py: {e}", file=sys.stderr)
        return 2

    iteration = snapshot.iteration
    try:
        export_onnx(net, cfg, out, images, iteration=iteration)
    except OSError as e:  # the folder was checked at the start: a disk filling up
        print(f"export.py: cannot write {e.filename or out}: {why_not_writable(e)}; nothing "
              f"was left half-written", file=sys.stderr)
        return 1
    differences = compare_with_pytorch(net, out, images)
    print(f"wrote {out} (opset {OPSET}; outputs {', '.join(differences)})")
    print(f"onnxruntime against PyTorch on {page}, input {tuple(images.shape)}: largest absolute "
          f"difference per map:")
    for name, difference in differences.items():
        print(f"  {name:<8} {difference:.3g}")
    worst = max(differences.values())
    if worst > args.tolerance:
        print(f"export.py: the maps differ by up to {worst:.3g}, more than --tolerance "
              f"{args.tolerance:g}", file=sys.stderr)
        return 1
    return 0


def output_path(out: str | None, cfg, iteration) -> str:
    """The .onnx file: --out, inside --out when that is a folder, or beside
    the snapshots (<config>_<iteration>.onnx)."""
    name = f"{cfg.name}_{iteration}.onnx"
    if out is None:
        return os.path.join(cfg.snapshot_dir, name)
    if os.path.isdir(out):
        return os.path.join(out, name)
    return out


if __name__ == "__main__":
    sys.exit(main())
