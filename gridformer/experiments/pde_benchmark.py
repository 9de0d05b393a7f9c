"""``pde-benchmark``: neural PDE solvers against FD ground truth, PDEBench metrics (issue 14).

Tasks (:mod:`gridformer.experiments.pde_tasks`): 1-D advection, Burgers and Fisher-KPP
diffusion-reaction with PDEBench's parameters, 2-D anisotropic heat and 2-D Burgers, generated
once by our FD solvers and cached as PDEBench HDF5. Each model learns the one-frame map
``u(t) -> u(t + dt_saved)`` from every consecutive pair of the training trajectories; the loss
is the MSE of the step divided by the mean square increment (1 = "no change", 0 = exact).

Models (:mod:`gridformer.experiments.pde_models`: three standard-GridFormer variants, the
attention-stencil model, FNO, U-Net, LocalCNN; ``persistence`` ``u(t + dt) = u(t)`` as the
untrained reference) each get the same data and the same budget of pair evaluations
(``steps * batch_size`` forward and backward passes of one training pair), each with its own
recipe: the minibatch models take ``steps`` optimizer steps of ``batch_size`` pairs; the
attention stencil, as ``gridformer stencil`` fits it, L-BFGS (after a quarter of the steps with
Adam) on a fixed subset of the pairs (:func:`~gridformer.experiments.pde_models.train_stepper`).
The optimizer steps, evaluations, pair evaluations, CPU and wall seconds of each training are
reported.

Scaling to the CPU budget: PDEBench trains 500 epochs on 9,000 trajectories of 1024 cells with
201 frames. ``--full`` (sized to finish 5 tasks x 7 models x 3 seeds in about 40 CPU minutes on
one thread): 64 cells (1-D) / 16 x 16 (2-D), 64 + 16 trajectories of 21 frames, 1000 steps of
batch 16 (12.5 epochs of the 1,280 training pairs). ``--quick``: 32 cells / 8 x 8, 24 + 8
trajectories of 21 frames, 200 steps of batch 32.

Metrics per task and model (keys ``<task>/<model>_<metric>``): PDEBench's ``rmse``,
``nrmse``, ``crmse``, ``brmse``, ``frmse_low/mid/high`` of the one-step (teacher-forced)
predictions over every test frame, the same along the autoregressive rollout from the initial
state (``rollout_nrmse``: averaged over the rollout, as PDEBench reports its autoregressive
numbers; ``rollout_nrmse_curve``: per step), ``stable_steps`` (rollout steps before nRMSE first
exceeds 1; the rollout length if never), ``rollout_high_fraction`` (at the last rollout step,
the fraction of the prediction's energy in the upper half of the wavenumbers; the truth's is
``<task>/truth_high_fraction``: a model far above it grows spurious small scales, the usual way
a learned stepper blows up),
``train_seconds``, ``train_cpu_seconds``, ``train_steps``, ``train_evaluations``,
``train_pair_evaluations`` and ``train_loss`` (``stencil`` also ``lbfgs_steps``,
``lbfgs_evaluations``, ``lbfgs_pairs``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr

from gridformer.experiments.harness import Experiment, ExperimentResult, SeedRun, Verdict
from gridformer.experiments.pde_models import (
    MODELS,
    Stepper,
    build_model,
    check_model,
    stencil_radius,
    train_stepper,
)
from gridformer.experiments.pde_tasks import TASKS, check_task, generation_settings, load_task

__all__ = ["EXPERIMENT", "MODELS", "Stepper", "build_model", "check_settings", "evaluate",
           "high_fraction", "stable_steps", "train_stepper"]

_PDE_METRICS = ("rmse", "nrmse", "crmse", "brmse")
QUICK: dict[str, Any] = {
    "tasks": list(TASKS), "models": list(MODELS), "cells": 32, "cells_2d": 8, "frames": 21,
    "n_train": 24, "n_test": 8, "steps": 200, "batch_size": 32, "data_seed": 0,
    "cache_dir": None,
}
FULL: dict[str, Any] = {**QUICK, "cells": 64, "cells_2d": 16, "n_train": 64, "n_test": 16,
                        "steps": 1000, "batch_size": 16}


@torch.no_grad()
def _predict(model: Any, test: np.ndarray, device: Any) -> tuple[np.ndarray, np.ndarray]:
    """One-step (teacher-forced) and rollout predictions, both ``(S, T, X)`` with frame 0 the
    given initial state."""
    truth = torch.as_tensor(test, dtype=torch.float32, device=device)  # (S, T, X)
    one = [truth[:, 0]] + [model(truth[:, t - 1]) for t in range(1, truth.shape[1])]
    state, roll = truth[:, 0], [truth[:, 0]]
    for _ in range(1, truth.shape[1]):
        state = model(state)  # (S, X)
        roll.append(state)
    return (torch.stack(one, 1).double().cpu().numpy(),
            torch.stack(roll, 1).double().cpu().numpy())


def stable_steps(curve: Any) -> float:
    """Rollout steps before the nRMSE first exceeds 1 (non-finite counts as exceeding); the
    length of the curve if it never does."""
    bad = ~(np.asarray(curve, dtype=np.float64) <= 1.0)
    return float(np.argmax(bad)) if bad.any() else float(len(bad))


def evaluate(model: Any, test: np.ndarray, device: Any = "cpu") -> dict[str, Any]:
    """PDEBench metrics of ``model`` (a ``(B, *grid) -> (B, *grid)`` callable) on test
    trajectories ``(S, T, *grid)``: one-step and rollout, see the module docstring for the
    keys."""
    from gridformer.analysis import pdebench_metrics_per_step

    one, roll = _predict(model, test, device)
    dims = ("sample", "time", "y", "x") if test.ndim == 4 else ("sample", "time", "x")
    target = xr.DataArray(test, dims=dims)
    out: dict[str, Any] = {}
    for prefix, pred in (("", one), ("rollout_", roll)):
        steps = pdebench_metrics_per_step(xr.DataArray(pred, dims=dims), target)
        for name in _PDE_METRICS:
            out[f"{prefix}{name}"] = float(steps[name].mean())
        for band in ("low", "mid", "high"):
            out[f"{prefix}frmse_{band}"] = float(steps["frmse"].sel(band=band).mean())
        if prefix:
            curve = steps["nrmse"].values
            out["rollout_nrmse_curve"] = [float(v) for v in curve]
            out["stable_steps"] = stable_steps(curve)
    out["rollout_high_fraction"] = high_fraction(roll[:, -1])
    return out


def high_fraction(fields: np.ndarray) -> float:
    """Fraction of the energy of ``fields`` ``(S, *grid)`` (summed over samples) in the upper
    half of the wavenumbers: max-norm ``|k| > n / 4`` over each axis's ``n`` cells."""
    axes = tuple(range(1, fields.ndim))
    ks = np.meshgrid(*[np.abs(np.fft.fftfreq(fields.shape[a])) for a in axes], indexing="ij")
    high = np.maximum.reduce(ks) > 0.25  # (*grid): |k| / n > 1/4
    power = np.abs(np.fft.fftn(fields, axes=axes)) ** 2  # (S, *grid)
    total = float(power.sum())
    return float(power[:, high].sum()) / total if total > 0 else float("nan")


def check_settings(settings: Mapping[str, Any]) -> None:
    """Unknown tasks or models, or too few samples/frames for the split: a ValueError before
    any data are generated or models trained."""
    for key, valid in (("tasks", TASKS), ("models", MODELS)):
        chosen = settings[key]
        if isinstance(chosen, str) or not list(chosen):
            msg = f"{key}={chosen!r} must be a non-empty list; valid: {', '.join(valid)}"
            raise ValueError(msg)
        for item in chosen:
            (check_task if key == "tasks" else check_model)(item)
    for key, least in (("n_train", 1), ("n_test", 1), ("frames", 3), ("steps", 1),
                       ("batch_size", 1), ("cells", 8), ("cells_2d", 8)):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            msg = (f"{key}={value!r} is too small for the benchmark's split: it must be an "
                   f"integer >= {least}")
            raise ValueError(msg)
    for key in ("cells", "cells_2d"):
        if settings[key] % 4:
            msg = (f"{key}={settings[key]} must be a multiple of 4 (the U-Net pools twice, "
                   f"patch tokens are 4 cells or 2 x 2)")
            raise ValueError(msg)


def _train_and_score(task: str, kind: str, train: np.ndarray, test: np.ndarray,
                     settings: Mapping[str, Any], seed: int, device: Any) -> dict[str, Any]:
    """Build ``kind`` for ``task``, train it on ``train`` ``(S, T, *grid)``, score on
    ``test``."""
    grid = train.shape[2:]
    inputs = train[:, :-1].reshape(-1, *grid)  # (M, *grid)
    targets = train[:, 1:].reshape(-1, *grid)
    scale = float(np.sqrt(np.mean((targets - inputs) ** 2)))
    amplitude = float(np.abs(train).max())
    model = build_model(kind, grid, scale, seed, amplitude=amplitude,
                        radius=stencil_radius(task, grid[0], amplitude),
                        state_dependent=TASKS[task].equation == "burgers")
    trained = train_stepper(model, kind, inputs, targets, steps=settings["steps"],
                            batch_size=settings["batch_size"], seed=seed, device=device)
    return {**evaluate(model, test, device), **trained}


def run(seed: int, settings: Mapping[str, Any], device: Any) -> SeedRun:
    """One seed: for each task, train every model on the cached data and score it."""
    check_settings(settings)
    n_train = settings["n_train"]
    metrics: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for task in settings["tasks"]:
        data = load_task(task, **generation_settings(settings, task),
                         cache_dir=settings["cache_dir"])  # (S, T, *grid)
        train, test = data[:n_train], data[n_train:]
        metrics[f"{task}/truth_high_fraction"] = high_fraction(test[:, -1])
        scored = {"persistence": evaluate(lambda u: u, test, device)}
        for kind in settings["models"]:
            scored[kind] = _train_and_score(task, kind, train, test, settings, seed, device)
        for name, values in scored.items():
            curves[f"{task}/{name}"] = values["rollout_nrmse_curve"]
            for key, value in values.items():
                metrics[f"{task}/{name}_{key}"] = value
    return SeedRun(metrics, {"curves": curves})


def verdict(metrics: dict[str, dict[str, Any]], settings: Mapping[str, Any]) -> Verdict:
    """Per task: the best standard GridFormer variant's rollout nRMSE against the best other
    model's (the attention-stencil model and the trained baselines)."""
    lines, outcomes = [], []
    for task in settings["tasks"]:
        scores = {m: metrics[f"{task}/{m}_rollout_nrmse"]["mean"] for m in settings["models"]}
        scores = {m: math.inf if v is None else v for m, v in scores.items()}  # None: diverged
        ours = min((m for m in scores if m.startswith("gridformer")), key=lambda m: scores[m],
                   default=None)
        best = min((m for m in scores if not m.startswith("gridformer")),
                   key=lambda m: scores[m], default=None)
        text = ", ".join(f"{m} {v:.3g}" for m, v in scores.items())
        lines.append(f"{task}: rollout nRMSE {text}")
        if ours is not None and best is not None:
            outcomes.append(scores[ours] <= 1.1 * scores[best])
    if not outcomes:
        return Verdict("inconclusive", "; ".join(lines) + " (no GridFormer-baseline pair)")
    outcome = "holds" if all(outcomes) else "does not hold"
    return Verdict(outcome, "; ".join(lines))


def figure(result: ExperimentResult) -> Any:
    """nRMSE against rollout step, one panel per task (mean over seeds, log scale)."""
    from matplotlib.figure import Figure

    tasks = result.settings["tasks"]
    fig = Figure(figsize=(4.5 * len(tasks), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(tasks)))
    for ax, task in zip(axes, tasks, strict=True):
        for name in ["persistence", *result.settings["models"]]:
            curve = result.metrics[f"{task}/{name}_rollout_nrmse_curve"]["mean"]
            ax.plot(np.arange(1, len(curve) + 1), [np.nan if v is None else v for v in curve],
                    label=name, linestyle=":" if name == "persistence" else "-")
        ax.set(yscale="log", xlabel="rollout step", ylabel="nRMSE", title=task)
    axes[0].legend()
    return fig


EXPERIMENT = Experiment(
    name="pde-benchmark",
    description="neural PDE solvers (GridFormer variants, attention stencil, FNO, U-Net, CNN) "
                "vs FD ground truth on PDEBench's 1-D tasks and 2-D heat/Burgers, PDEBench "
                "metrics one-step and along the rollout",
    claim="Trained on the same data with the same budget, the best standard GridFormer "
          "variant's rollout nRMSE is within 10% of the best other model's (or better) on "
          "every task.",
    quick=QUICK, full=FULL, run=run, verdict=verdict, figure=figure,
)
