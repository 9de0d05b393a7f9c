"""Finite-difference solvers: gridformer's fused numba kernels against what users would pick.

``run()`` (used by ``python -m benchmarks``) times, in one process:

* 2-D heat, 256 x 256 float64, FTCS, periodic: gridformer vs py-pde (its numba backend and
  its default threading), in million cell updates per second (target: >= 2x py-pde);
* a batch of 64 fields of 128 x 128 float64 (heat): gridformer vs the memory-bandwidth bound,
  a streaming copy of the same bytes measured in the same run (numpy and a numba ``prange``
  copy, the faster counts); one update must read and write 8 bytes per cell, so the bound is
  ``copy bytes/s / 16`` cell updates per second (target: >= 0.5 of it);
* advection (upwind), Burgers (Godunov), Fisher-KPP and Gray-Scott reaction-diffusion on
  8 x 256 x 256: gridformer's numba path vs the same solve with plain numpy array expressions.

With ``device="cuda"`` the batch case runs on the GPU (torch, float64) against a device copy,
and again with 512 x 512 fields, with compiled steps (the CUDA default) and eager ones.

Run alone, it compares the backends side by side (numba, numpy, torch on CPU) and prints JSON.
After ``make demo`` and ``source .venv/bin/activate``::

    python benchmarks/bench_solvers.py [--grid 256,256] [--samples 8] [--steps 500]

The first numba call compiles its kernels; a warm-up solve runs before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

try:
    import numpy as np
    import xarray as xr

    from gridformer import solvers
    from gridformer.cli.common import parse_int_tuple
except ImportError as error:  # run with a Python that lacks the package
    sys.exit(f"{error}: run `make install` and `source .venv/bin/activate` first "
             f"(or use .venv/bin/python); this is {sys.executable}")

if __package__:
    from benchmarks._common import compare, row, skipped_row, time_calls
else:  # python benchmarks/bench_solvers.py
    from _common import compare, row, skipped_row, time_calls  # type: ignore[no-redef]

BACKENDS = ("numpy", "cpu", "torch-cpu")  # "cpu" is the numba path
MEGA = 1e6


def _initial_field(grid: tuple[int, int], samples: int, seed: int) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    u0 = rng.standard_normal((samples, *grid))  # (S, Y, X)
    return xr.DataArray(u0, dims=("sample", "y", "x"),
                        coords={"y": np.arange(grid[0], dtype=float),
                                "x": np.arange(grid[1], dtype=float)})


def _time_solve(equation: str, u0: xr.DataArray, steps: int, device: str, repeats: int,
                **params: object) -> float:
    solvers.solve(equation, u0, steps=2, save_every=2, device=device, **params)  # warm-up / JIT
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        solvers.solve(equation, u0, steps=steps, save_every=steps, device=device, **params)
        best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------------------- run() cases
def _heat_vs_pypde(quick: bool, repeats: int) -> dict[str, Any]:
    """256 x 256 periodic heat, FTCS, dt = 0.2, D = 1: gridformer vs py-pde's Euler stepper."""
    case = "heat 256x256 float64 FTCS periodic (1 field)"
    try:
        import pde
        from pde.solvers import EulerSolver
    except ImportError as error:
        return skipped_row(case, "py-pde", f"py-pde is not installed ({error}); "
                           "pip install -e '.[bench]'")
    n, dt = 256, 0.2
    steps = 500 if quick else 4000
    u0 = np.random.default_rng(0).standard_normal((n, n))
    grid = pde.CartesianGrid([[0, n], [0, n]], [n, n], periodic=True)
    state = pde.ScalarField(grid, u0.copy())
    stepper = EulerSolver(pde.DiffusionPDE(diffusivity=1.0), backend="numba").make_stepper(
        state, dt=dt)  # compiles once; not timed
    field = state.copy()

    def theirs() -> None:
        field.data[...] = u0
        stepper(field, 0.0, steps * dt)

    def ours() -> xr.Dataset:
        return solvers.solve("heat", u0, steps=steps, dt=dt, spacing=1.0, save_every=steps,
                             diffusivity=1.0)

    mine, other = compare(ours, theirs, repeats)
    diff = float(np.abs(ours().u.values[-1] - field.data).max())
    return row(case, ours=mine, peer=f"py-pde {pde.__version__} (numba, default threads)",
               theirs=other, work=n * n * steps / MEGA, units="M cell-updates/s", target=2.0,
               steps=steps, max_abs_difference=diff)


def _copy_kernel():
    from numba import njit, prange

    @njit(parallel=True)
    def parallel_copy(src, dst):  # pragma: no cover - jit
        flat_src = src.reshape(-1)
        flat_dst = dst.reshape(-1)
        for i in prange(flat_src.size):
            flat_dst[i] = flat_src[i]

    return parallel_copy


def _batch_vs_bandwidth(quick: bool, repeats: int, device: str, n: int = 128,
                        steps: int = 1000, marginal: bool = False) -> dict[str, Any]:
    """64 x n x n heat against a streaming copy of the same buffer bytes.

    ``marginal``: the time per step is that of a ``2 steps`` solve minus a ``steps`` solve
    (best against best, median against median), leaving out what every solve pays once: on
    a GPU, the upload of the initial state and the download of the saved one.
    """
    samples = 64
    steps = steps // 10 if quick else steps
    u0 = np.random.default_rng(1).standard_normal((samples, n, n))
    shape = (samples, n + 2, n + 2)  # the solver's buffers, ghost cells included

    def solve_steps(k: int) -> Callable[[], xr.Dataset]:
        return lambda: solvers.solve("heat", u0, steps=k, dt=0.2, spacing=1.0, save_every=k,
                                     device=device, diffusivity=1.0)

    ours = solve_steps(steps)

    if device == "cpu":
        src, dst = np.random.default_rng(2).standard_normal((2, *shape))
        copy = _copy_kernel()

        def numpy_copy() -> None:
            np.copyto(dst, src)

        def numba_copy() -> None:
            copy(src, dst)

        copies = {"numpy copyto": time_calls(numpy_copy, repeats * 5),
                  "numba prange copy": time_calls(numba_copy, repeats * 5)}
        peer_name = min(copies, key=lambda k: min(copies[k]))
        peer_times = copies[peer_name]
        mine = time_calls(ours, repeats)
    else:
        import torch

        on = "cpu" if device == "torch-cpu" else device  # "torch-cpu": the torch code on CPU
        src_t = torch.randn(shape, dtype=torch.float64, device=on)
        dst_t = torch.empty_like(src_t)

        copies_per_call = 20  # queued back to back, one synchronize: as the steps run

        def device_copy() -> None:
            for _ in range(copies_per_call):
                dst_t.copy_(src_t)
            if src_t.is_cuda:
                torch.cuda.synchronize()

        peer_name = "torch device copy"
        peer_times = [t / copies_per_call for t in time_calls(device_copy, repeats * 5)]
        mine = time_calls(ours, repeats)
        if marginal:
            twice = time_calls(solve_steps(2 * steps), repeats)
            mine = [min(twice) - min(mine), statistics.median(twice) - statistics.median(mine)]
        copies = {peer_name: peer_times}
    nbytes = 8 * int(np.prod(shape))
    # the bound in cell updates per second: copy bytes per second / 16 bytes per update;
    # both sides as seconds per million cell updates, so that row() turns them into rates
    per_update_bound = [s / (2 * nbytes / 16 / MEGA) for s in peer_times]
    per_update = [s / (samples * n * n * steps / MEGA) for s in mine]
    what = ", per step (2N-step minus N-step solve)" if marginal else ""
    result = row(f"heat batch 64x{n}x{n} float64 ({device}) vs memory-bandwidth bound{what}",
                 ours=per_update, peer=f"bandwidth bound ({peer_name} of the same "
                 f"{nbytes / 2**20:.1f} MiB, read + write)", theirs=per_update_bound,
                 work=1.0, units="M cell-updates/s", target=0.5, steps=steps)
    result["copy_GB_per_s"] = {k: 2 * nbytes / min(v) / 1e9 for k, v in copies.items()}
    return result


def _other_cases(samples: int, n: int) -> dict[str, tuple[str, xr.DataArray, dict]]:
    """``{case: (equation, u0, params)}`` with initial states each equation keeps bounded."""
    rng = np.random.default_rng(3)
    normal = _initial_field((n, n), samples, seed=3)
    unit = normal.copy(data=rng.random((samples, n, n)))
    return {
        "advection upwind": ("advection", normal,
                             {"velocity": (0.5, -0.25), "dt": 1.0, "scheme": "upwind"}),
        "burgers godunov": ("burgers", normal.clip(-1, 1), {"viscosity": 0.5, "dt": 0.05}),
        "fisher_kpp": ("fisher_kpp", unit, {"diffusivity": 0.2, "rate": 1.0, "dt": 0.5}),
        "gray_scott": ("gray_scott", 1.0 - 0.5 * unit,
                       {"v0": 0.25 * unit.values[::-1].copy(), "diffusivity_u": 0.16,
                        "diffusivity_v": 0.08, "feed": 0.035, "kill": 0.065, "dt": 1.0}),
    }


def _other_equations(quick: bool, repeats: int) -> list[dict[str, Any]]:
    """Each equation: fused numba path vs plain numpy array expressions, 8 x 256 x 256."""
    samples, n = 8, 256
    steps = 20 if quick else 100
    results = []
    for name, (equation, u0, params) in _other_cases(samples, n).items():

        def solve_on(device: str, equation=equation, u0=u0, params=params) -> None:
            solvers.solve(equation, u0, steps=steps, save_every=steps, device=device, **params)

        mine, other = compare(lambda f=solve_on: f("cpu"), lambda f=solve_on: f("numpy"),
                              repeats)
        results.append(row(f"{name} 8x256x256 float64", ours=mine,
                           peer="numpy array expressions (device='numpy')", theirs=other,
                           work=samples * n * n * steps / MEGA, units="M cell-updates/s",
                           steps=steps))
    return results


def run(*, quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    """All solver cases (see the module docstring); ``quick`` shortens every run."""
    repeats = 3 if quick else 5
    results = []
    if device == "cpu":
        results.append(_heat_vs_pypde(quick, repeats))
    results.append(_batch_vs_bandwidth(quick, repeats, device))
    if device == "cpu":
        results.extend(_other_equations(quick, repeats))
    else:  # larger fields: the per-step kernel launches weigh less
        results.append(_batch_vs_bandwidth(quick, repeats, device, n=512, steps=200,
                                           marginal=True))
        # the same without torch.compile: what it gains
        with mock.patch.dict(os.environ, {"GRIDFORMER_SOLVER_COMPILE": "0"}):
            eager = _batch_vs_bandwidth(quick, repeats, device, n=512, steps=200,
                                        marginal=True)
        eager["case"] += ", eager torch steps (GRIDFORMER_SOLVER_COMPILE=0)"
        results.append(eager)
        whole = _batch_vs_bandwidth(quick, repeats, device, n=512, steps=200)
        whole["case"] += ", whole solve (upload, 200 steps, download of the saved state)"
        results.append(whole)
    return {"name": "solvers", "results": results,
            "settings": {"quick": quick, "repeats": repeats, "device": device,
                         "dtype": "float64"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=parse_int_tuple, default=(256, 256), metavar="Y,X")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    grid = args.grid
    if len(grid) != 2 or min(grid) < 2:
        parser.error(f"--grid={args.grid} must be Y,X with at least 2 points each")
    u0 = _initial_field(grid, args.samples, seed=0)
    cases = {
        "heat": {"diffusivity": (0.6, 0.3), "dt": 0.4},
        "advection_upwind": {"velocity": (0.5, -0.25), "dt": 1.0, "scheme": "upwind"},
        "burgers": {"viscosity": 0.5, "dt": 0.05},
    }
    results = {}
    for name, params in cases.items():
        equation = name.split("_")[0]
        seconds = {dev: _time_solve(equation, u0, args.steps, dev, args.repeats, **params)
                   for dev in BACKENDS}
        cell_updates = args.samples * grid[0] * grid[1] * args.steps
        results[name] = {
            "seconds": seconds,
            "speedup_vs_numpy": {dev: seconds["numpy"] / s for dev, s in seconds.items()},
            "cell_updates_per_second": {dev: cell_updates / s for dev, s in seconds.items()},
        }
    print(json.dumps({"grid": grid, "samples": args.samples, "steps": args.steps,
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
