"""Attention-weight buffers of the CPU table path, kept for reuse from one step to the next.

A training step through :mod:`gridformer.model.table_attention` writes every layer's
``(B, H, N', N')`` weights into a fresh buffer (16 MiB per layer at 1,024 tokens and 4 heads,
128 MiB at a batch of 8) and frees it after the backward. With glibc's default settings the
freed memory goes back to the kernel and the next step faults every page in again (what
:func:`gridformer.training.tune_cpu_malloc` prevents for the whole process). The buffers
here stay allocated: :func:`weight_buffer` hands a buffer out again only once nothing else
holds its memory — no saved tensor of a graph, no returned attention map, no view, numpy
array or storage object of them (the storage's C++ reference count and its Python object's
reference count are both back where they were when the buffer was made) — and never a buffer
whose memory was shared with another process. So a buffer is not written while anything can
still read it.

At most :data:`POOL_BYTES` are kept (free buffers are dropped to make room for a new shape;
beyond it buffers are plain allocations); :func:`release_weight_buffers` drops them all.
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["POOL_BYTES", "release_weight_buffers", "weight_buffer"]

#: Bytes of buffers kept for reuse (0: none kept, every buffer a plain allocation).
POOL_BYTES = 2**30

_LOCK = threading.Lock()
_USE_COUNT = getattr(torch._C, "_storage_Use_Count", None)  # absent: no pooling


@dataclass(eq=False)  # kept buffers are told apart by identity (`in`, eviction)
class _Kept:
    """A kept buffer: its storage and the reference counts it has when nothing holds it."""

    storage: torch.UntypedStorage
    dtype: torch.dtype
    numel: int
    idle: tuple[int, int] = (0, 0)

    @classmethod
    def new(cls, numel: int, dtype: torch.dtype) -> _Kept:
        kept = cls(torch.empty(numel, dtype=dtype).untyped_storage(), dtype, numel)
        kept.idle = kept.holders()
        return kept

    def holders(self) -> tuple[int, int]:
        """(C++ references to the storage, Python references to its object)."""
        return _USE_COUNT(self.storage._cdata), sys.getrefcount(self.storage)


_KEPT: list[_Kept] = []


def weight_buffer(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """An uninitialised contiguous CPU tensor of ``shape``, from a kept buffer when one is free.

    The tensor is not a view (autograd treats it as a tensor of its own); its memory is handed
    out again only after every tensor, array and storage object sharing it is gone.
    """
    numel = math.prod(shape)
    nbytes = numel * dtype.itemsize
    if _USE_COUNT is None or nbytes > POOL_BYTES or numel == 0:
        return torch.empty(shape, dtype=dtype)
    with _LOCK:
        _KEPT[:] = [k for k in _KEPT if not k.storage.is_shared()]  # another process maps it
        free = [k for k in _KEPT if k.holders() == k.idle]
        for kept in free:
            if kept.numel == numel and kept.dtype == dtype:
                return _shaped(kept, shape)
        held = sum(k.storage.nbytes() for k in _KEPT if k not in free)
        if held + nbytes > POOL_BYTES:  # the buffers in use leave no room: not kept
            return torch.empty(shape, dtype=dtype)
        total = held + sum(k.storage.nbytes() for k in free)
        for kept in free:  # make room: drop free buffers (of other shapes)
            if total + nbytes <= POOL_BYTES:
                break
            _KEPT[:] = [k for k in _KEPT if k is not kept]
            total -= kept.storage.nbytes()
        kept = _Kept.new(numel, dtype)
        _KEPT.append(kept)
        return _shaped(kept, shape)


def _shaped(kept: _Kept, shape: tuple[int, ...]) -> Tensor:
    return torch.empty(0, dtype=kept.dtype).set_(kept.storage, 0, shape)


def release_weight_buffers() -> int:
    """Drop every kept buffer (memory in use elsewhere stays with its users); returns the
    number of bytes that were kept."""
    with _LOCK:
        kept = sum(k.storage.nbytes() for k in _KEPT)
        _KEPT.clear()
    return kept
