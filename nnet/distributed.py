"""Several processes under torchrun: a thin layer over torch.distributed.

    torchrun --nproc_per_node=N train.py CenterNet-52

torchrun starts N copies of train.py and tells each its place through the
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).
`init_from_env` joins them into one process group (gloo on CPU, nccl on CUDA);
without torchrun it returns a one-process context and nothing here talks to
other processes. Rank 0 logs, shows progress and writes snapshots.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

# Rank 0 alone may evaluate AP for a long time while the others wait at a
# barrier; the default timeout (10 to 30 minutes) would end the run.
_TIMEOUT = datetime.timedelta(hours=3)


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank_from_env() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank_from_env() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_from_env(device: torch.device) -> Context:
    """Join the torchrun process group (if started by torchrun with N > 1)."""
    world_size = world_size_from_env()
    if world_size == 1:
        return Context(device=device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    options = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend=backend, timeout=_TIMEOUT, **options)
    return Context(rank=dist.get_rank(), world_size=dist.get_world_size(),
                   local_rank=local_rank_from_env(), device=device)


def shutdown(context: Context, clean: bool = True) -> None:
    """Leave the process group. After a clean run every rank first waits for
    the others: destroying the group while another rank still sends makes
    gloo abort the process at exit. After an error there may be no one to
    wait for."""
    if not context.enabled or not dist.is_initialized():
        return
    if clean:
        barrier(context)
    dist.destroy_process_group()


def barrier(context: Context) -> None:
    if not context.enabled:
        return
    if context.device.type == "cuda":
        dist.barrier(device_ids=[context.device.index])
    else:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """The sum over ranks of `tensor`, in place (and returned)."""
    if context.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_true(flag: bool, context: Context) -> bool:
    """True on every rank when `flag` is true on any rank."""
    if not context.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=context.device)
    return bool(all_reduce_sum(value, context).item() > 0)


def mean(value: float, context: Context) -> float:
    """The mean over ranks of a number (the same on every rank)."""
    if not context.enabled:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=context.device)
    return all_reduce_sum(total, context).item() / context.world_size


def parameter_digest(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes, in state order."""
    digest = hashlib.sha256()
    for name, parameter in module.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def parameter_digests(module: torch.nn.Module, context: Context) -> list[str]:
    """Every rank's parameter digest, by rank (identical after correct
    data-parallel training: gradients are averaged, updates the same)."""
    mine = parameter_digest(module)
    if not context.enabled:
        return [mine]
    gathered = [None] * context.world_size
    dist.all_gather_object(gathered, mine)
    return gathered
