"""Attention-weight buffers of the CPU table path, kept for reuse from one step to the next.

A training step through :mod:`gridformer.model.table_attention` writes every layer's
``(B, H, N', N')`` weights into a fresh buffer (16 MiB per layer at 1,024 tokens and 4 heads,
128 MiB at a batch of 8) and frees it after the backward. With glibc's default settings the
freed memory goes back to the kernel and the next step faults every page in again (what
:func:`gridformer.training.tune_cpu_malloc` prevents for the whole process). The buffers
here stay allocated: :func:`weight_buffer` hands out a buffer again once nothing else holds
its memory — no saved tensor of a graph, no returned attention map, no view or numpy array of
them (the storage's reference count says so) — so a buffer is never written while anything
can still read it.

At most :data:`POOL_BYTES` are kept (free buffers of other shapes are dropped first; beyond
it buffers are plain allocations); :func:`release_weight_buffers` drops them all.
"""

from __future__ import annotations

import math
import threading

import torch
from torch import Tensor

__all__ = ["POOL_BYTES", "release_weight_buffers", "weight_buffer"]

#: Bytes of buffers kept for reuse (0: none kept, every buffer a plain allocation).
POOL_BYTES = 2**30

_LOCK = threading.Lock()
_BUFFERS: list[Tensor] = []  # 1-D tensors, each owning its storage
_USE_COUNT = getattr(torch._C, "_storage_Use_Count", None)  # absent: no pooling


def _use_count(buffer: Tensor) -> int:
    return _USE_COUNT(buffer.untyped_storage()._cdata)


_FREE = _use_count(torch.empty(1)) if _USE_COUNT is not None else 0  # held by the buffer alone


def weight_buffer(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """An uninitialised contiguous CPU tensor of ``shape``, from a kept buffer when one is free.

    The tensor is not a view (autograd treats it as a tensor of its own); its memory is handed
    out again only after every tensor and array sharing it is gone.
    """
    numel = math.prod(shape)
    nbytes = numel * torch.empty(0, dtype=dtype).element_size()
    if _USE_COUNT is None or nbytes > POOL_BYTES or numel == 0:
        return torch.empty(shape, dtype=dtype)
    with _LOCK:
        free = [b for b in _BUFFERS if _use_count(b) == _FREE]
        for buffer in free:
            if buffer.numel() == numel and buffer.dtype == dtype:
                return _shaped(buffer, shape)
        kept = sum(b.numel() * b.element_size() for b in _BUFFERS)
        for buffer in free:  # make room: drop free buffers of other shapes
            if kept + nbytes <= POOL_BYTES:
                break
            _BUFFERS.remove(buffer)
            kept -= buffer.numel() * buffer.element_size()
        if kept + nbytes > POOL_BYTES:  # the kept buffers are all in use
            return torch.empty(shape, dtype=dtype)
        buffer = torch.empty(numel, dtype=dtype)
        _BUFFERS.append(buffer)
        return _shaped(buffer, shape)


def _shaped(buffer: Tensor, shape: tuple[int, ...]) -> Tensor:
    return torch.empty(0, dtype=buffer.dtype).set_(buffer.untyped_storage(), 0, shape)


def release_weight_buffers() -> int:
    """Drop every kept buffer (memory in use elsewhere stays with its users); returns the
    number of bytes that were kept."""
    with _LOCK:
        kept = sum(b.numel() * b.element_size() for b in _BUFFERS)
        _BUFFERS.clear()
    return kept
