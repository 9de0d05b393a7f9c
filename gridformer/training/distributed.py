"""torch.distributed glue: start a process group under ``torchrun`` and wrap the model in DDP.

Under ``torchrun --nproc_per_node=K`` the environment holds ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; with ``WORLD_SIZE > 1`` :func:`setup` starts a process group (``nccl`` on CUDA,
``gloo`` on CPU) unless one is already running. Single-process runs touch nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistributedContext", "setup", "wrap"]


@dataclass
class DistributedContext:
    """Who this process is: ``world`` processes, this one is ``rank``."""

    world: int = 1
    rank: int = 0
    owns_group: bool = False  # this context started the process group (and ends it)

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, value: float, device: torch.device) -> float:
        """Average a number over the processes (identity when single-process)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def all_true(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` holds on every process (identity when single-process).

        Used for the non-finite-loss check, so that all ranks stop together instead of the
        healthy ones waiting forever in the next gradient all-reduce.
        """
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def synchronize(self) -> None:
        """Wait until every rank gets here (no-op when single-process).

        Called at the end of a successful run, before :meth:`close`: otherwise a fast rank can
        tear down its gloo transport while a slower one is still talking to it, which aborts
        the slower process at exit ("terminate called without an active exception").
        """
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        """End the process group this context started (no barrier: also used on errors)."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def setup(device: torch.device) -> tuple[DistributedContext, torch.device]:
    """Join (or start) the process group when launched with ``WORLD_SIZE > 1``.

    Returns the context and the device this process should use (``cuda:LOCAL_RANK`` on GPUs).
    """
    if dist.is_available() and dist.is_initialized():
        ctx = DistributedContext(dist.get_world_size(), dist.get_rank(), owns_group=False)
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        ctx = DistributedContext(dist.get_world_size(), dist.get_rank(), owns_group=True)
    else:
        return DistributedContext(), device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return ctx, device


def wrap(model: nn.Module, ctx: DistributedContext, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` when distributed, else the model itself."""
    if not ctx.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)
