"""ONNX export of a trained network's test pass, and running it back with
onnxruntime in place of the PyTorch network (export.py, demo.py --onnx).

    path = export_onnx(net, cfg, "model.onnx", iteration=5000)    # net.predict as ONNX
    report = compare_with_pytorch(net, path, images)              # max abs difference per map
    net = OnnxNetwork(path, cfg, device)                           # .predict(images) as net's

What is exported is `net.predict`: one input, `images` (B, 3, H, W) float32
normalised as test/kp_detection.py prepares them, with batch, height and
width dynamic; one output per map of the dict `predict` returns, named by
its key ("tl_heat", "br_heat", ..., and the optional heads "ct_size",
when the network has it: heads added later follow by name).
`OnnxNetwork.predict` returns the same dict, so test/ decodes it as it
decodes the network's.

Corner and centre pooling: the network's exact running maximum (slice scan
on CPU, torch.cummax on GPU; models/py_utils/corner_pool.py) has no ONNX
form: ONNX has no CumMax, and a scan traced for one size would be wrong at
another. For export, each pool is replaced by `ExportPool`, the same maximum
computed by log-step doubling (x = max(x, x shifted by 1, 2, 4, ... cells,
the shifted-in cells -inf)): max is exact, so its outputs equal the
network's bit for bit (tests/test_onnx.py), for maps up to
`MAX_POOLED_CELLS` cells along each side (a 16,384-pixel input side) and
for bounded pools (db.pool_window) of any size. Opset `OPSET` (17), through
torch.onnx's TorchScript exporter, which keeps height and width symbolic.
"""

from __future__ import annotations

import copy
import json
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

OPSET = 17
# Unbounded pools are exact up to this many heatmap cells along the pooled axis.
MAX_POOLED_CELLS = 4096
INPUT_NAME = "images"


class ExportPool(nn.Module):
    """A corner pool (running maximum along `dim`, from the end or from the
    start, over `window` cells or to the border) in operators ONNX has."""

    def __init__(self, dim: int, from_end: bool, window: int | None = None):
        super().__init__()
        self.dim, self.from_end = dim, from_end
        self.reach = MAX_POOLED_CELLS - 1 if window is None else window

    def forward(self, x):
        covered = 0  # x[i] holds the max over the `covered` cells beyond i
        while covered < self.reach:
            step = min(covered + 1, self.reach - covered)
            x = torch.maximum(x, self._shifted(x, step))
            covered += step
        return x

    def _shifted(self, x, step):
        """x moved `step` cells along `dim`, -inf shifted in: cell i sees
        x[i + step] (from_end) or x[i - step]."""
        pad = [0, 0, 0, 0]  # F.pad's order: W left, W right, H top, H bottom
        pad[(0 if self.dim == 3 else 2) + (1 if self.from_end else 0)] = step
        padded = F.pad(x, pad, value=float("-inf"))
        keep = slice(step, None) if self.from_end else slice(None, -step)
        return padded[:, :, keep] if self.dim == 2 else padded[:, :, :, keep]


def exportable_copy(net: nn.Module) -> nn.Module:
    """A deep copy of `net` in eval mode, every corner pool an `ExportPool`."""
    from models.py_utils.corner_pool import BottomPool, LeftPool, RightPool, TopPool

    directions = {TopPool: (2, True), BottomPool: (2, False), LeftPool: (3, True),
                  RightPool: (3, False)}
    copied = copy.deepcopy(net).float().eval()
    for name, module in list(copied.named_modules()):
        for child_name, child in list(module.named_children()):
            if type(child) in directions:
                dim, from_end = directions[type(child)]
                setattr(module, child_name, ExportPool(dim, from_end, getattr(child, "window", None)))
    return copied


class _Predict(nn.Module):
    """`net.predict` as a module whose outputs are a tuple in `names` order
    (what torch.onnx.export takes)."""

    def __init__(self, net, names):
        super().__init__()
        self.net, self.names = net, list(names)

    def forward(self, images):
        maps = self.net.predict(images)
        return tuple(maps[name] for name in self.names)


class _Classify(nn.Module):
    """The box classifier (db.classes_from boxes) as a module of two inputs."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, images, rois):
        return self.net.classify(images, rois)


def classifier_path(path: str) -> str:
    """Where the box classifier of the model at `path` is written: beside it."""
    stem = path[:-5] if path.endswith(".onnx") else path
    return stem + ".classifier.onnx"


def output_names(net, images) -> list[str]:
    """The names of net.predict's maps, in its order, from one call on `images`."""
    with torch.inference_mode():
        return list(net.predict(images))


def export_onnx(net, cfg, path: str, images: torch.Tensor, iteration=None) -> str:
    """Write `net.predict` as ONNX to `path` (module doc), traced on `images`
    (B, 3, H, W) on the CPU; the file's metadata names the config, iteration,
    opset and outputs."""
    import onnx

    export_net = exportable_copy(net).cpu()
    images = images.float().cpu()
    names = output_names(export_net, images)
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    dynamic = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
    dynamic.update({name: {0: "batch", 2: "map_height", 3: "map_width"} for name in names})
    # both models are written beside their names and renamed only once both
    # are whole: a failure (a full disk) leaves neither half-written file
    finished = {path + ".tmp": path}
    try:
        temporary = path + ".tmp"
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter's notes on constant folding and tracing
            # are about shapes it keeps symbolic on purpose
            warnings.simplefilter("ignore")
            torch.onnx.export(_Predict(export_net, names), (images,), temporary, dynamo=False,
                              opset_version=OPSET, input_names=[INPUT_NAME], output_names=names,
                              dynamic_axes=dynamic, do_constant_folding=True)
        model = onnx.load(temporary)
        metadata = {"config": cfg.name, "iteration": str(iteration), "opset": str(OPSET),
                    "outputs": json.dumps(names),
                    "categories": str(cfg.db.categories),
                    "max_pooled_cells": str(MAX_POOLED_CELLS)}
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model)
        onnx.save(model, temporary)
        if getattr(export_net, "box_classifier", None) is not None:
            beside = classifier_path(path)
            finished[beside + ".tmp"] = beside
            _export_classifier(export_net, beside + ".tmp", images)
        for written, name in reversed(finished.items()):  # the classifier first, then the model
            os.replace(written, name)
    finally:
        for written in finished:
            if os.path.exists(written):
                os.remove(written)
    return path


def _export_classifier(export_net, path: str, images: torch.Tensor) -> None:
    """The box classifier as its own model at `path`: images (B, 3, H, W) and
    rois (N, 5) in, logits (N, categories) out (RoiAlign of opset >= 16)."""
    import onnx

    rois = torch.tensor([[0, 2.0, 3.0, 40.0, 12.0], [0, 10.0, 20.0, 60.0, 30.0]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Classify(export_net), (images[:1], rois), path, dynamo=False,
                          opset_version=OPSET, input_names=[INPUT_NAME, "rois"],
                          output_names=["logits"],
                          dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                                        "rois": {0: "boxes"}, "logits": {0: "boxes"}},
                          do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


def compare_with_pytorch(net, path: str, images: torch.Tensor) -> dict:
    """{map name: max abs difference} between `net.predict` (PyTorch, CPU,
    float32) and the ONNX model at `path` (onnxruntime) on `images`."""
    session = _session(path, torch.device("cpu"))
    names = [o.name for o in session.get_outputs()]
    images = images.float().cpu()
    with torch.inference_mode():
        reference = copy.deepcopy(net).float().cpu().eval().predict(images)
    onnx_maps = session.run(names, {INPUT_NAME: images.numpy()})
    return {name: float(np.abs(reference[name].numpy() - got).max())
            for name, got in zip(names, onnx_maps)}


def _session(path, device):
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider"] if device.type == "cuda" else []
    providers = [p for p in wanted if p in available] + ["CPUExecutionProvider"]
    return ort.InferenceSession(path, providers=providers)


def _first_line(error) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class OnnxModelError(RuntimeError):
    """An exported model that cannot be used: missing, unreadable, onnxruntime
    not installed, or of another category count; the message says what to do."""


class OnnxNetwork:
    """An exported model that stands in for the network at test time:
    `predict(images)` returns the maps by name as `net.predict` does, torch
    tensors on the images' device."""

    training = False

    def __init__(self, path: str, cfg, device):
        self.path = path
        if not os.path.isfile(path):
            raise OnnxModelError(f"no ONNX model {path}; write one with "
                                 f"`python export.py {cfg.name} --testiter N`")
        try:
            self.session = _session(path, torch.device(device))
        except ImportError as e:
            raise OnnxModelError(f"{e.name} is not installed: pip install -r "
                                 f"requirements-onnx.txt") from None
        except Exception as e:  # onnxruntime's own errors: not a model, a newer opset, ...
            raise OnnxModelError(f"onnxruntime cannot load {path}: {_first_line(e)}") from None
        self.names = [o.name for o in self.session.get_outputs()]
        metadata = self.session.get_modelmeta().custom_metadata_map
        categories = metadata.get("categories")
        if categories is not None and int(categories) != cfg.db.categories:
            raise OnnxModelError(f"{path} was exported from a network of {categories} categories "
                                 f"(config {metadata.get('config')}), but db.categories of "
                                 f"{cfg.name} is {cfg.db.categories}: use that config")
        self.max_cells = int(metadata.get("max_pooled_cells", MAX_POOLED_CELLS))
        self.classifier = None
        if cfg.db.classes_from == "boxes":
            beside = classifier_path(path)
            if not os.path.isfile(beside):
                raise OnnxModelError(f"{cfg.name} names boxes with its box classifier, exported "
                                     f"beside the model as {beside}, which is missing: export "
                                     f"again with `python export.py {cfg.name} --testiter N`")
            try:
                self.classifier = _session(beside, torch.device(device))
            except Exception as e:  # onnxruntime's own errors, as for the model above
                raise OnnxModelError(f"onnxruntime cannot load {beside}, the box classifier "
                                     f"exported beside {path}: {_first_line(e)}; export again "
                                     f"with `python export.py {cfg.name} --testiter N`") from None

    def classify(self, images: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """The box classifier's logits (N, categories), as `net.classify`."""
        if self.classifier is None:
            raise ValueError(f"{self.path}: this model has no box classifier")
        logits, = self.classifier.run(["logits"], {INPUT_NAME: images.float().cpu().numpy(),
                                                   "rois": rois.float().cpu().numpy()})
        return torch.from_numpy(logits).to(images.device)

    def predict(self, images: torch.Tensor):
        cells = max((s - 1) // 4 + 1 for s in images.shape[-2:])
        if cells > self.max_cells:
            raise ValueError(f"{self.path}: an input of {tuple(images.shape[-2:])} pixels gives "
                             f"{cells} heatmap cells a side; this export pools exactly over at "
                             f"most {self.max_cells}: lower db.test_max_side (or, with "
                             f"db.test_scale_mode pixels, db.test_scales)")
        arrays = self.session.run(self.names, {INPUT_NAME: images.float().cpu().numpy()})
        return {name: torch.from_numpy(a).to(images.device) for name, a in zip(self.names, arrays)}

    # what test/run.py asks of a network
    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self
