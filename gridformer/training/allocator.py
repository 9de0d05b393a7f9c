"""glibc ``malloc`` settings for training on the CPU: keep freed attention buffers for reuse.

A training step with a learned position bias (or with ``return_attention=True``) writes its
attention out as ``(B, H, N, N)`` tensors: 16 MiB each at 1,024 tokens and 4 heads, several per
layer and step. glibc hands memory blocks this large back to the kernel when they are freed
(``munmap``, or trimming the top of the heap), so the next step faults every page in again
and the kernel zeroes it. On the 2-core benchmark machine this made the same step take
122-205 ms from one step and run to the next; with the settings below 119-143 ms (medians 125-143
instead of 175-195; ``benchmarks/RESULTS.md``). A batch's attention is larger still (128 MiB at
8 samples), above the largest mmap threshold glibc accepts (32 MiB), so mmap is turned off
altogether (``M_MMAP_MAX=0``). The relative-bias step at a batch of 8 took 1,440-1,520 ms
(1.8-1.9x ``nn.TransformerEncoder``) before, 850-1,070 ms (1.04-1.3x) with this and the
attention's in-place add of a bias shared by the batch (measured together). PyTorch's CPU
tuning guide recommends another allocator (jemalloc, tcmalloc) for the same reason; these
settings need no extra library.

:func:`tune_cpu_malloc` is called by ``gridformer train`` and by
:func:`gridformer.training.fit` on the CPU (``GRIDFORMER_CPU_MALLOC=0`` turns it off); call
it yourself at the start of a notebook or script that trains on the CPU with its own loop.
It changes the whole process and cannot be undone, and holds on to up to about
``M_TRIM_THRESHOLD`` of freed memory instead of returning it to the system.
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["MALLOC_SETTINGS", "tune_cpu_malloc"]

#: mallopt parameters (glibc ``malloc.h`` numbers) and values.
MALLOC_SETTINGS = {
    "M_MMAP_THRESHOLD": (-3, 32 * 2**20),  # glibc's upper limit: blocks below it come from the heap
    "M_TRIM_THRESHOLD": (-1, 2**30),  # return the heap's free top to the system only above 1 GiB
    "M_TOP_PAD": (-2, 256 * 2**20),  # grow the heap in 256 MiB steps
    "M_MMAP_MAX": (-4, 0),  # no mmap: blocks above 32 MiB (a batch's attention) reuse the heap
}


def tune_cpu_malloc() -> dict[str, int] | None:
    """Apply :data:`MALLOC_SETTINGS` with glibc's ``mallopt``.

    Returns
    -------
    dict or None
        The settings applied (name -> value), or None where the C library is not glibc, or
        ``GRIDFORMER_CPU_MALLOC=0`` is set.

    Raises
    ------
    ValueError
        ``GRIDFORMER_CPU_MALLOC`` is set to something other than ``0`` or ``1``.
    RuntimeError
        glibc refused a setting (names it).
    """
    flag = os.environ.get("GRIDFORMER_CPU_MALLOC", "").strip()
    if flag not in ("", "0", "1"):
        msg = f"GRIDFORMER_CPU_MALLOC={flag!r} must be 1 (tune), 0 (leave malloc alone) or unset"
        raise ValueError(msg)
    if flag == "0" or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL("libc.so.6")
    applied = {}
    for name, (param, value) in MALLOC_SETTINGS.items():
        if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1:
            msg = f"glibc's mallopt refused {name}={value}"
            raise RuntimeError(msg)
        applied[name] = value
    return applied
