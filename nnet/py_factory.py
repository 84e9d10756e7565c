"""The network wrapped for training: built from the config, on a device, with
its loss, optimizer, learning-rate schedule, mixed precision and the state a
snapshot needs to resume exactly (the original CenterNet's `NetworkFactory`).

    factory = NetworkFactory(cfg, device)            # + context under torchrun
    losses = factory.train_step(batch)               # one optimizer step
    val = factory.validation_loss(val_loader)        # BatchNorm in eval mode
    save_snapshot(path, factory.state_dict())        # see nnet/checkpoints.py
    factory.load_state_dict(read_snapshot(path), path)

Learning rate of the step after `it` finished iterations:
learning_rate / decay_rate ** (d // stepsize), times (it + 1) / warmup_iter
during the first warmup_iter steps, where d = it, or with a time budget
(system.time_budget, train.py sets `budget_used`) the larger of it and
budget_used * max_iter: on a machine too slow to reach max_iter in the
budget, the drops come at the same fractions of the budget instead.

Precision (system.precision, or train.py --precision / --amp), chosen by
nnet/device.py: auto (bf16 where the hardware computes it natively, else
fp32); fp32; bf16 = autocast to bfloat16, no grad scaler (CPU and CUDA);
fp16 = autocast to float16 with a grad scaler (CUDA only; refused on a CPU).
The loss is always computed in float32.

Validation loss runs the bare network in eval mode (BatchNorm with its
running statistics, as at test time) under no_grad, so the figure does not
depend on how the validation images are batched (the original's did:
docs/differences-from-the-original.md).

A loss that is NaN or infinite stops training before the optimizer step
(`NonFiniteLossError`), so the weights are never updated from it.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from models import build_network
from models.py_utils.kp import LOSS_TERMS, AELoss

from . import distributed
from .checkpoints import load_weights
from .device import autocast, choose_precision, precision_for
from .snapshot import load_network_weights

# kp.forward's arguments, in order; box_rois and box_image only when the sampler gives them
_INPUT_KEYS = ("image", "tl_tags", "br_tags", "ct_tags", "box_rois", "box_image")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, iteration: int, losses: dict):
        self.iteration = iteration
        self.losses = losses
        bad = [name for name in LOSS_TERMS[1:] if not math.isfinite(losses[name])]
        terms = ", ".join(f"{name}={losses[name]}" for name in LOSS_TERMS)
        super().__init__(f"the loss became non-finite at iteration {iteration} "
                         f"(in {', '.join(bad) or 'total'}: {terms})")


class NetworkFactory:
    """Network, loss, optimizer and grad scaler on one device."""

    def __init__(self, cfg, device: torch.device, context: distributed.Context | None = None,
                 precision: str | None = None):
        self.cfg = cfg
        self.device = torch.device(device)
        self.context = context or distributed.Context(device=self.device)
        # the precision the network runs in: "fp32", "bf16" or "fp16" ("auto" resolved)
        self.precision = (choose_precision(precision, self.device, "precision") if precision
                          else precision_for(cfg, self.device)).name
        self.memory_format = (torch.channels_last if cfg.system.channels_last
                              else torch.contiguous_format)

        torch.manual_seed(cfg.system.seed)  # the same initial weights on every run
        self.network = build_network(cfg).to(self.device, memory_format=self.memory_format)
        self.model = self.network
        if self.context.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.network, device_ids=device_ids)
        self.loss = AELoss(pull_weight=cfg.system.pull_weight, push_weight=cfg.system.push_weight,
                           regr_weight=cfg.system.regr_weight, size_weight=cfg.system.size_weight,
                           class_weight=cfg.system.class_weight,
                           focal_alpha=cfg.system.focal_alpha, focal_beta=cfg.system.focal_beta)
        self.optimizer = build_optimizer(cfg, [p for p in self.network.parameters() if p.requires_grad])
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.iteration = 0  # optimizer steps done
        self.budget_used = 0.0  # fraction of system.time_budget spent (train.py)
        self.train_seconds = 0.0  # seconds of training so far, over resumes

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.network.parameters())

    # --- one step ------------------------------------------------------

    def learning_rate(self, iterations_done: int) -> float:
        system = self.cfg.system
        progress = max(iterations_done, int(self.budget_used * system.max_iter))
        rate = system.learning_rate / system.decay_rate ** (progress // system.stepsize)
        if iterations_done < system.warmup_iter:
            rate *= (iterations_done + 1) / system.warmup_iter
        return rate

    def train_step(self, batch: dict) -> dict:
        """One optimizer step on a batch of `sample.kp_detection` examples.

        Returns the losses (averaged over processes) as floats and the
        learning rate used; raises NonFiniteLossError without stepping.
        """
        rate = self.learning_rate(self.iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.model.train()
        inputs, targets = self._to_device(batch)
        with self._autocast():
            outs = self.model(*inputs)
        losses = self.loss(outs, targets)

        values = torch.stack([losses[name].detach() for name in LOSS_TERMS])
        distributed.all_reduce_sum(values, self.context).div_(self.context.world_size)
        reported = dict(zip(LOSS_TERMS, values.tolist()))
        # every rank sees the same averaged values, so all of them stop together
        if not all(math.isfinite(v) for v in reported.values()):
            raise NonFiniteLossError(self.iteration + 1, reported)

        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.iteration += 1
        reported["lr"] = rate
        return reported

    @torch.no_grad()
    def val_loss(self, batch: dict) -> dict:
        """Losses of one batch, bare network in eval mode, no gradients."""
        self.network.eval()
        try:
            inputs, targets = self._to_device(batch)
            with self._autocast():
                outs = self.network(*inputs)
            losses = self.loss(outs, targets)
            return {name: losses[name].item() for name in LOSS_TERMS}
        finally:
            self.network.train()

    def validation_loss(self, loader) -> dict:
        """Mean losses over the images of `loader` (every process's share):
        per-batch losses weighted by the batch's image count."""
        sums = torch.zeros(len(LOSS_TERMS) + 1, dtype=torch.float64, device=self.device)
        for batch in loader:
            count = len(batch["image"])
            losses = self.val_loss(batch)
            sums += torch.tensor([losses[n] * count for n in LOSS_TERMS] + [count],
                                 dtype=torch.float64, device=self.device)
        distributed.all_reduce_sum(sums, self.context)
        images = sums[-1].item()
        if images == 0:
            return {}
        return {name: value / images for name, value in zip(LOSS_TERMS, sums[:-1].tolist())}

    def weights_are_finite(self) -> bool:
        return all(torch.isfinite(p).all().item() for p in self.network.parameters())

    def _autocast(self):
        return autocast(self.precision, self.device)

    def _to_device(self, batch):
        non_blocking = self.device.type == "cuda"
        inputs = [batch[k].to(self.device, non_blocking=non_blocking)
                  for k in _INPUT_KEYS if k in batch]
        inputs[0] = inputs[0].contiguous(memory_format=self.memory_format)
        # every other array of the sampler is a target, by name
        targets = {k: v.to(self.device, non_blocking=non_blocking)
                   for k, v in batch.items() if k not in _INPUT_KEYS}
        return inputs, targets

    # --- state ---------------------------------------------------------

    def state_dict(self, metrics: dict | None = None) -> dict:
        """Everything a snapshot holds (keys of nnet/checkpoints.py)."""
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "iteration": self.iteration,
            "train_seconds": self.train_seconds,
            "rng": rng_state(self.device),
            "config": self.cfg.to_dict(),
            "metrics": dict(metrics or {}),
        }

    def load_state_dict(self, state: dict, source: str = "snapshot") -> None:
        """Resume from a snapshot (nnet/checkpoints.py `read_snapshot`): weights,
        optimizer, scaler, iteration, RNGs."""
        load_weights(self.network, state, self.cfg, source)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        if state.get("rng"):
            set_rng_state(state["rng"], self.device)

    def load_pretrained(self, path: str) -> list[str]:
        """Start from the weights of another snapshot (system.pretrain):
        tensors whose name and shape match are loaded, the others keep their
        initial values (e.g. the heads of an 80-class MSCOCO model in a
        6-class network). Returns the skipped keys."""
        return load_network_weights(self.network, path, strict=False)


def build_optimizer(cfg, parameters, fused=True):
    """The optimizer of system.opt_algo over `parameters`, with
    system.learning_rate and system.weight_decay (and system.momentum for
    SGD). `fused` (Adam): one kernel over every tensor instead of a dozen
    small ops per parameter, the same updates (why:
    docs/differences-from-the-original.md, "Measurements")."""
    system = cfg.system
    if system.opt_algo == "adam":
        return torch.optim.Adam(parameters, lr=system.learning_rate,
                                weight_decay=system.weight_decay, fused=fused)
    return torch.optim.SGD(parameters, lr=system.learning_rate, momentum=system.momentum,
                           weight_decay=system.weight_decay)


# --------------------------------------------------------------------------
# random-generator states as tensors and plain numbers (loadable with
# torch.load(weights_only=True))
# --------------------------------------------------------------------------

def rng_state(device: torch.device) -> dict:
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {"keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "python": {"version": int(py_version),
                   "state": torch.tensor(py_internal, dtype=torch.int64),
                   "gauss_next": py_gauss},
    }


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"].tolist()),
                     python_state["gauss_next"]))
