"""Where a CUDA heat solve spends its time: one step (compiled, eager) against a device copy.

From the repository root on a GPU machine (installed or not)::

    PYTHONPATH=. python3 benchmarks/gpu_solver_profile.py

Prints milliseconds for a copy of the (64, 514, 514) float64 buffer, one eager step (one torch
op per stencil point), one compiled step (``torch.compile``, the CUDA default), a 200-step
``solve`` per step with and without compiling (uploads the initial state, downloads the
saved one), and ``torch.profiler``'s top GPU and CPU entries of a 50-step solve. Needs CUDA.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchmarks._uninstalled  # noqa: F401 - gridformer from this checkout if not installed

SAMPLES, N = 64, 512
HEAT = [(0, 0, 0.2), (-1, 0, 0.2), (1, 0, 0.2), (0, -1, 0.2), (0, 1, 0.2)]  # dt D / h^2 = 0.2


def per_call_ms(fn, reps: int = 50) -> float:
    """Milliseconds per call of ``fn``, ``reps`` calls queued, one synchronize."""
    import torch

    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return round((time.perf_counter() - start) / reps * 1e3, 4)


def main() -> int:
    import numpy as np
    import torch
    from gridformer.solvers import solve
    from gridformer.solvers.backend import ArrayBackend

    if not torch.cuda.is_available():
        print("no CUDA GPU: this profile needs one", file=sys.stderr)
        return 2
    src = torch.randn(SAMPLES, N + 2, N + 2, dtype=torch.float64, device="cuda")
    dst = torch.empty_like(src)
    eager = ArrayBackend(torch, "cuda", compile_steps=False)
    compiled = ArrayBackend(torch, "cuda", compile_steps=True)
    print("copy ms", per_call_ms(lambda: dst.copy_(src)))
    print("eager step ms", per_call_ms(lambda: eager.stencil_step(src, dst, HEAT, (1, 1))))
    print("compiled step ms", per_call_ms(lambda: compiled.stencil_step(src, dst, HEAT, (1, 1))),
          "compiling still on:", compiled.compile_steps)
    u0 = np.random.default_rng(1).standard_normal((SAMPLES, N, N))
    kwargs = {"dt": 0.2, "spacing": 1.0, "device": "cuda", "diffusivity": 1.0}
    for flag in ("1", "0"):
        os.environ["GRIDFORMER_SOLVER_COMPILE"] = flag
        solve("heat", u0, steps=2, save_every=2, **kwargs)
        start = time.perf_counter()
        solve("heat", u0, steps=200, save_every=200, **kwargs)
        torch.cuda.synchronize()
        print(f"solve, 200 steps, GRIDFORMER_SOLVER_COMPILE={flag}: ms per step",
              round((time.perf_counter() - start) / 200 * 1e3, 4))
    os.environ["GRIDFORMER_SOLVER_COMPILE"] = "1"
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        solve("heat", u0, steps=50, save_every=50, **kwargs)
        torch.cuda.synchronize()
    for key in ("self_cuda_time_total", "self_cpu_time_total"):
        print(prof.key_averages().table(sort_by=key, row_limit=12, max_name_column_width=60))
    return 0


if __name__ == "__main__":
    sys.exit(main())
