"""Long rollouts of benchmark models: does a learned stepper that fits the one-step loss stay
stable past the benchmark's rollout, and if not, where does the error grow?

Trains each model as ``pde-benchmark`` does (same data, recipe and budget as one seed of the
given settings), then rolls it out ``horizon`` steps from fresh initial states (other data
seed) against the FD truth, and reports per step the nRMSE and the fraction of the
prediction's energy in the upper half of the wavenumbers beside the truth's
(:func:`~gridformer.experiments.pde_benchmark.high_fraction`): a stepper that blows up through
spurious small scales shows that fraction growing long before the nRMSE passes 1.

Run as ``python -m gridformer.experiments.pde_rollout_check --full --task burgers-1d
--model fno --horizon 100 --json out.json``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from gridformer.experiments.pde_benchmark import FULL, QUICK, check_settings, high_fraction
from gridformer.experiments.pde_models import build_model, stencil_radius, train_stepper
from gridformer.experiments.pde_tasks import TASKS, generation_settings, load_task

__all__ = ["long_rollout"]


@torch.no_grad()
def _rollout(model: Any, start: np.ndarray, steps: int) -> np.ndarray:
    state = torch.as_tensor(start, dtype=torch.float32)  # (S, *grid)
    out = [state]
    for _ in range(steps):
        state = model(state)
        out.append(state)
    return torch.stack(out, 1).double().numpy()  # (S, steps + 1, *grid)


def long_rollout(task: str, models: Sequence[str], settings: Mapping[str, Any], *,
                 horizon: int = 100, n_eval: int = 8, seed: int = 0) -> dict[str, Any]:
    """Train ``models`` on ``task`` with ``settings`` (one seed) and roll each out ``horizon``
    steps from ``n_eval`` fresh initial states; per-step curves (nRMSE, the prediction's norm
    over the truth's, the high-band energy fraction) and the training loss."""
    from gridformer.analysis import pdebench_metrics_per_step

    check_settings({**settings, "tasks": [task], "models": list(models)})
    data = load_task(task, **generation_settings(settings, task),
                     cache_dir=settings["cache_dir"])[: settings["n_train"]]  # (S, T, *grid)
    fresh = {**generation_settings(settings, task), "samples": n_eval, "frames": horizon + 1,
             "seed": int(settings["data_seed"]) + 1}
    truth = load_task(task, **fresh, cache_dir=settings["cache_dir"])  # (n_eval, H+1, *grid)
    grid = data.shape[2:]
    inputs, targets = data[:, :-1].reshape(-1, *grid), data[:, 1:].reshape(-1, *grid)
    scale = float(np.sqrt(np.mean((targets - inputs) ** 2)))
    amplitude = float(np.abs(data).max())
    dims = ("sample", "time", "y", "x") if len(grid) == 2 else ("sample", "time", "x")
    out: dict[str, Any] = {"task": task, "horizon": horizon,
                           "truth_high_fraction": [high_fraction(truth[:, t])
                                                   for t in range(1, horizon + 1)]}
    for kind in models:
        model = build_model(kind, grid, scale, seed, amplitude=amplitude,
                            radius=stencil_radius(task, grid[0], amplitude),
                            state_dependent=TASKS[task].equation == "burgers")
        trained = train_stepper(model, kind, inputs, targets, steps=settings["steps"],
                                batch_size=settings["batch_size"], seed=seed, device="cpu")
        roll = _rollout(model, truth[:, 0], horizon)
        steps = pdebench_metrics_per_step(xr.DataArray(roll, dims=dims),
                                          xr.DataArray(truth, dims=dims))
        axes = tuple(range(2, roll.ndim))  # spatial axes of (S, T, *grid)
        norms = np.sqrt((roll**2).sum((0, *axes)) / (truth**2).sum((0, *axes)))  # (T,)
        out[kind] = {**trained, "nrmse": [float(v) for v in steps["nrmse"].values],
                     "norm_ratio": [float(v) for v in norms[1:]],
                     "high_fraction": [high_fraction(roll[:, t])
                                       for t in range(1, horizon + 1)]}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="pde-benchmark's --full settings")
    parser.add_argument("--task", action="append", required=True)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    settings = FULL if args.full else QUICK
    started = time.process_time()
    result = {task: long_rollout(task, args.model, settings, horizon=args.horizon)
              for task in args.task}
    result["cpu_seconds"] = time.process_time() - started
    result["settings"] = dict(settings)
    from gridformer._io import write_json

    write_json(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
