"""Solver backends side by side: numba kernels vs numpy array expressions vs torch on CPU.

Runs the same solves on each backend in one process and prints JSON with wall times and
ratios against the numpy baseline measured in the same run. After ``make demo`` and
``source .venv/bin/activate``::

    python benchmarks/bench_solvers.py [--grid 256,256] [--samples 8] [--steps 500]

The first numba call compiles its kernels; a warm-up solve runs before timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

try:
    import numpy as np
    import xarray as xr

    from gridformer import solvers
    from gridformer.cli.common import parse_int_tuple
except ImportError as error:  # run with a Python that lacks the package
    sys.exit(f"{error}: run `make install` and `source .venv/bin/activate` first "
             f"(or use .venv/bin/python); this is {sys.executable}")

BACKENDS = ("numpy", "cpu", "torch-cpu")  # "cpu" is the numba path


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
