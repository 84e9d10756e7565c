"""Will a training step fit in memory? train.py asks before the first step
(`check_step_fits`), and words an out-of-memory error met in a step
(`step_out_of_memory`).

What a step needs, beyond what is in use once the network is built
(`estimate_step`):
- activations, what autograd keeps for the backward pass. Measured, not
  modelled: two training examples at a reduced input (127 x 127, a 32 x 32
  heatmap, the smallest that every hourglass takes; the config's own input
  when that is smaller; two, because BatchNorm in training needs more than
  one value at the 1 x 1 bottom of CenterNet-52's hourglass) go through the
  network and the loss on the chosen device and precision, and every tensor
  autograd saves is counted (torch.autograd.graph.saved_tensors_hooks).
  Convolution activations grow with the heatmap area, so the count is
  scaled by it to the config's input, then multiplied by the images of the
  process's batch. The backward pass holds, besides, the gradients of the
  activations it is working through: BACKWARD_MARGIN of the activations.
- gradients (one value per parameter) and the optimizer's state (Adam two,
  SGD with momentum one), made at the first step;
- the batch itself, image and targets (sample/dataset.py `example_bytes`).
The data loader's worker processes are not counted: their batches live in
shared memory, which `workers_that_fit` checks.

What the machine has (`available_memory`): on CUDA the GPU's free memory
(torch.cuda.mem_get_info) plus what PyTorch's cache holds unused; on a CPU
MemAvailable of /proc/meminfo, or less where a cgroup (a container's memory
limit) allows less. Where neither can be read the check is skipped.

The measurement runs the network once at 1/16 or less of the training
input, so it costs a fraction of one step; BatchNorm's running statistics
are put back afterwards, so training from here is the same as without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch.utils.data import default_collate

GiB = 2 ** 30
BACKWARD_MARGIN = 0.25
_MEASURE_INPUT = 127  # -> a 32 x 32 heatmap


class NotEnoughMemoryError(RuntimeError):
    """A training step will not fit in the memory of the chosen device."""


class StepOutOfMemoryError(RuntimeError):
    """A training step ran out of memory."""


@dataclass(frozen=True)
class StepEstimate:
    """Bytes one training step needs beyond what is already allocated."""

    activations_per_image: int
    images: int               # the batch of this process
    gradients_and_optimizer: int
    batch: int

    @property
    def activations(self) -> int:
        return int(self.activations_per_image * self.images * (1 + BACKWARD_MARGIN))

    @property
    def total(self) -> int:
        return self.activations + self.gradients_and_optimizer + self.batch

    def images_that_fit(self, available: int) -> int:
        per_image = self.activations_per_image * (1 + BACKWARD_MARGIN) + self.batch / self.images
        return max(0, int((available - self.gradients_and_optimizer) // per_image))

    def describe(self) -> str:
        return (f"activations {_gib(self.activations_per_image * (1 + BACKWARD_MARGIN))} per image "
                f"x {self.images} images = {_gib(self.activations)}, gradients and optimizer "
                f"state {_gib(self.gradients_and_optimizer)}, batch {_gib(self.batch)}")


def _gib(count: float) -> str:
    return f"{count / GiB:.1f} GiB" if count >= GiB / 10 else f"{count / 2 ** 20:.0f} MiB"


# --------------------------------------------------------------------------
# the estimate
# --------------------------------------------------------------------------

def estimate_step(factory, train_set, images: int, measure_input: int = _MEASURE_INPUT) -> StepEstimate:
    """What a step of `images` examples of `train_set` (a TrainingExamples)
    needs on `factory`'s device and precision; see the module docstring."""
    from sample.dataset import example_bytes

    cfg = factory.cfg
    parameters = sum(p.numel() * p.element_size() for p in factory.network.parameters()
                     if p.requires_grad)
    states = 2 if cfg.system.opt_algo == "adam" else (1 if cfg.system.momentum else 0)
    return StepEstimate(activations_per_image=activation_bytes_per_image(factory, train_set,
                                                                         measure_input),
                        images=images, gradients_and_optimizer=parameters * (1 + states),
                        batch=example_bytes(cfg) * images)


def activation_bytes_per_image(factory, train_set, measure_input: int = _MEASURE_INPUT) -> int:
    """Bytes autograd keeps for one training image at the config's input size:
    measured at `measure_input` (or the config's input, if smaller), scaled by
    the heatmap area."""
    from sample.dataset import TrainingExamples

    cfg = factory.cfg
    (in_h, in_w), (out_h, out_w) = cfg.db.input_size, cfg.db.output_sizes[0]
    small = cfg
    if in_h * in_w > measure_input ** 2:
        small = _with_input(cfg, measure_input)
    examples = TrainingExamples(train_set.db, small)
    saved = _saved_bytes(factory, default_collate([examples[(1, 0)], examples[(1, 1)]])) / 2
    small_h, small_w = small.db.output_sizes[0]
    return int(saved * (out_h * out_w) / (small_h * small_w))


def _with_input(cfg, input_side: int):
    from config import config_from_dict

    # output_sizes null: derived again from the new input size
    return config_from_dict(cfg.to_dict(), name=cfg.name, path=cfg.path, check_data=False,
                            overrides={"db": {"input_size": [input_side, input_side],
                                              "output_sizes": None}})


def _saved_bytes(factory, batch) -> int:
    """Bytes of the tensors autograd saves in the forward pass and loss of
    `batch`, as train_step runs them; the weights (already allocated) apart."""
    network = factory.network
    weights = {p.untyped_storage().data_ptr() for p in network.parameters()}
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights and storage.device.type != "meta":
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    buffers = {name: b.detach().clone() for name, b in network.named_buffers()}
    was_training = network.training
    network.train()
    try:
        inputs, targets = factory._to_device(batch)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            with factory._autocast():
                outs = network(*inputs)
            factory.loss(outs, targets)
    finally:
        # the measurement must not move BatchNorm's running statistics
        with torch.no_grad():
            for name, value in network.named_buffers():
                value.copy_(buffers[name])
        network.train(was_training)
    return sum(saved.values())


# --------------------------------------------------------------------------
# what the machine has
# --------------------------------------------------------------------------

def available_memory(device: torch.device, meminfo: str = "/proc/meminfo",
                     cgroup_root: str = "/sys/fs/cgroup") -> tuple[int, str] | None:
    """(bytes free for this process, where the figure comes from), or None
    when it cannot be told."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return free + cached, f"free on {torch.cuda.get_device_name(device)} (torch.cuda.mem_get_info)"
    if device.type != "cpu":
        return None
    found = _meminfo_available(meminfo)
    limited = _cgroup_available(cgroup_root)
    if limited is not None and (found is None or limited < found):
        return limited, f"left under the cgroup memory limit ({cgroup_root})"
    if found is not None:
        return found, f"MemAvailable in {meminfo}"
    return None


def _meminfo_available(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available(root: str) -> int | None:
    """Limit minus usage (the reclaimable page cache not counted as used), for
    cgroup v2 (memory.max) or v1 (memory/memory.limit_in_bytes)."""
    for limit_file, usage_file, stat_file, inactive_key in (
            ("memory.max", "memory.current", "memory.stat", "inactive_file"),
            ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes",
             "memory/memory.stat", "total_inactive_file")):
        try:
            with open(os.path.join(root, limit_file), encoding="ascii") as f:
                limit = f.read().strip()
            if limit == "max" or int(limit) >= 2 ** 60:  # no limit (v1 writes a huge number)
                return None
            with open(os.path.join(root, usage_file), encoding="ascii") as f:
                used = int(f.read().strip())
            inactive = 0
            with open(os.path.join(root, stat_file), encoding="ascii") as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == inactive_key:
                        inactive = int(value)
            return max(0, int(limit) - (used - inactive))
        except (OSError, ValueError):
            continue
    return None


# --------------------------------------------------------------------------
# the check and the messages
# --------------------------------------------------------------------------

def check_step_fits(factory, train_set, images: int, processes_here: int = 1) -> StepEstimate | None:
    """Raise NotEnoughMemoryError when a step of `images` examples per process
    cannot fit; `processes_here`: processes of this run sharing the memory (CPU
    under torchrun). Returns the estimate (None when the machine cannot tell)."""
    device = factory.device
    have = available_memory(device)
    if have is None:
        return None
    available, source = have
    estimate = estimate_step(factory, train_set, images)
    shares = processes_here if device.type == "cpu" else 1
    if estimate.total * shares <= available:
        return estimate
    cfg = factory.cfg
    fit = estimate.images_that_fit(available // shares)
    batch = (f"lower system.batch_size in {cfg.path or cfg.name} (now {cfg.system.batch_size}; "
             + (f"about {fit * (cfg.system.batch_size // images)} fit)" if fit
                else "not even one image fits)"))
    ways = [batch]
    if device.type == "cpu":
        ways.append("train on a GPU (--device cuda)")
    else:
        ways.append("use a GPU with more memory, or several under torchrun")
    if factory.precision == "fp32":
        ways.append("use --precision " + ("bf16" if device.type == "cpu" else "fp16 or bf16")
                    + " (activations in 16 bits, about half)")
    together = f" for each of {shares} processes" if shares > 1 else ""
    raise NotEnoughMemoryError(
        f"a training step of {cfg.name} needs about {_gib(estimate.total)} on {device}{together} "
        f"({estimate.describe()}; input {cfg.db.input_size[0]}x{cfg.db.input_size[1]}, "
        f"{factory.precision}), but {_gib(available)} is available ({source}). "
        f"To fit: {'; or '.join(ways)}. (--no-memory-check starts anyway.)")


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA out-of-memory error, or the CPU allocator's refusal."""
    return (isinstance(error, torch.cuda.OutOfMemoryError)
            or (isinstance(error, RuntimeError) and "can't allocate memory" in str(error)))


def step_out_of_memory(error: BaseException, iteration: int, factory, images: int,
                       last_good: str) -> StepOutOfMemoryError:
    """The error to stop with when iteration `iteration` ran out of memory."""
    cfg, device = factory.cfg, factory.device
    ways = [f"lower system.batch_size in {cfg.path or cfg.name} (now {cfg.system.batch_size})"]
    if factory.precision == "fp32":
        ways.append("use --precision " + ("bf16" if device.type == "cpu" else "fp16 or bf16"))
    ways.append("use a GPU with more memory" if device.type == "cuda" else "train on a GPU")
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return StepOutOfMemoryError(
        f"out of memory on {device} in iteration {iteration} ({images} images per process, input "
        f"{cfg.db.input_size[0]}x{cfg.db.input_size[1]}, {factory.precision}): {first_line}. "
        f"To fit: {'; or '.join(ways)}. No snapshot was written from this step. {last_good}")
