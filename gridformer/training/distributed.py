"""torch.distributed glue: start a process group under ``torchrun`` and wrap the model in DDP.

Under ``torchrun --nproc_per_node=K`` the environment holds ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; with ``WORLD_SIZE > 1`` :func:`setup` starts a process group (``nccl`` on CUDA,
``gloo`` on CPU) unless one is already running. Single-process runs touch nothing.

Why :class:`DistributedContext` holds on to the tensors it all-reduces: in torch 2.13 a tensor
whose Python object exists keeps that object alive while C++ holds further references, and the
thread that drops the last of those must take the GIL to let go of it. ``all_reduce`` returns
once the result is there, often (9 and 57 of 200 calls in two runs on 2 cores) before the gloo
worker thread has dropped its reference; if that thread gets to it while the interpreter is
shutting down it cannot take the GIL and the process aborts ("terminate called without an
active exception") after a successful run. DistributedDataParallel keeps the process group,
and so gloo's worker threads, alive after ``destroy_process_group``, so this can happen at any
exit. The context therefore holds a second C++ reference to each tensor it sends (a view),
drops it on the calling thread once the backend's reference is gone, and
:meth:`DistributedContext.close` waits for that. Collectives DistributedDataParallel makes
itself (its broadcast of module buffers before each forward) are not covered; the last of
those comes a backward, an optimizer step, two collectives and a barrier before the end.
"""

from __future__ import annotations

import ctypes
import os
import time
import warnings
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistributedContext", "setup", "wrap"]

RELEASE_TIMEOUT_S = 5.0  # how long close() waits for a backend thread to let go of a tensor


def _holders(tensor: torch.Tensor) -> int | None:
    """How many C++ references the tensor has (its Python object holds one); None if unknown."""
    use_count = getattr(tensor, "_use_count", None)  # a private torch method: may disappear
    return int(use_count()) if use_count is not None else None


@dataclass(eq=False)
class _SentTensor:
    """A tensor handed to a collective, with a reference of our own that outlives the backend's.

    ``anchor`` is a view of ``tensor`` (a view holds a C++ reference to its base), so the
    backend thread's release is never the one that brings the count down to the Python object's
    own reference; ``idle`` is the count with only the Python object and the anchor left.
    ``idle`` is None where that cannot be told (torch does not expose the count, or the view
    holds no reference, as in inference mode): the tensor is then kept until
    :meth:`DistributedContext.close`, which drops it without waiting.
    """

    tensor: torch.Tensor
    anchor: torch.Tensor | None
    idle: int | None

    @classmethod
    def hold(cls, tensor: torch.Tensor) -> _SentTensor:
        """Take our own reference to ``tensor`` before it is sent."""
        before = _holders(tensor)
        anchor = tensor.view_as(tensor)  # with a grad_fn a view holds its base twice
        after = _holders(tensor)
        if before is None or after is None or after <= before:
            warnings.warn(
                "cannot tell when the process-group backend lets go of a tensor (torch "
                f"{torch.__version__} exposes no reference count, or a view holds no "
                "reference to its base); a rank may abort at interpreter exit",
                RuntimeWarning, stacklevel=3)
            return cls(tensor, anchor, None)
        return cls(tensor, anchor, after)

    def released(self) -> bool:
        """Whether the backend is known to hold no reference to the tensor any more."""
        now = _holders(self.tensor)
        return self.idle is not None and now is not None and now <= self.idle


@dataclass
class DistributedContext:
    """Who this process is: ``world`` processes, this one is ``rank``."""

    world: int = 1
    rank: int = 0
    owns_group: bool = False  # this context started the process group (and ends it)
    # every tensor sent to a collective that a backend thread may still hold
    _sent: list[_SentTensor] = field(default_factory=list, init=False, repr=False,
                                     compare=False)

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
        self._all_reduce(t, dist.ReduceOp.SUM)
        return float(t.item()) / self.world

    def all_true(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` holds on every process (identity when single-process).

        Used for the non-finite-loss check, so that all ranks stop together instead of the
        healthy ones waiting forever in the next gradient all-reduce.
        """
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
        self._all_reduce(t, dist.ReduceOp.MIN)
        return bool(t.item())

    def _all_reduce(self, tensor: torch.Tensor, op: dist.ReduceOp) -> None:
        """``dist.all_reduce`` in place, holding ``tensor`` until the backend lets go of it.

        See the module docstring: the backend thread may drop its reference after this returns.
        """
        self._sent = [s for s in self._sent if not s.released()]
        self._sent.append(_SentTensor.hold(tensor))  # before the call: it may raise mid-way
        dist.all_reduce(tensor, op=op)

    def synchronize(self) -> None:
        """Wait until every rank gets here (no-op when single-process).

        Called at the end of a successful run, before :meth:`close`: otherwise a fast rank can
        tear down its gloo transport while a slower one is still talking to it, which aborts
        the slower process at exit ("terminate called without an active exception").
        """
        if self.enabled:
            dist.barrier()

    def close(self, timeout: float = RELEASE_TIMEOUT_S) -> None:
        """End the process group this context started (no barrier: also used on errors).

        Then wait (up to ``timeout`` seconds) until the backend's threads hold none of the
        tensors this context sent, so that none of them is left for a thread to free while the
        interpreter shuts down; a tensor still held after that is kept referenced for the life
        of the process, with a ``RuntimeWarning``.

        Parameters
        ----------
        timeout : float
            Seconds to wait for the backend's threads (default :data:`RELEASE_TIMEOUT_S`).
        """
        try:
            if self.owns_group and dist.is_initialized():
                dist.destroy_process_group()
        finally:
            self._let_go_of_sent(timeout)

    def _let_go_of_sent(self, timeout: float) -> None:
        """Drop the sent tensors once no backend thread holds them (see :meth:`close`)."""
        deadline = time.monotonic() + timeout
        # those whose count cannot be read are dropped now: waiting would tell nothing
        held = [s for s in self._sent if s.idle is not None and not s.released()]
        while held and time.monotonic() < deadline:
            time.sleep(0.001)
            held = [s for s in held if not s.released()]
        self._sent = []
        if held:
            # a Python reference nobody gives back (shutdown clears module globals, so a list
            # would not do): the anchor outlives the backend's reference, even at exit
            for sent in held:
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(sent))
            warnings.warn(
                f"{len(held)} tensor(s) sent to a collective were still held by the "
                f"process-group backend {timeout:g} s after the run; keeping them referenced "
                "until the process exits", RuntimeWarning, stacklevel=3)


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
