"""``pde-benchmark``: neural PDE solvers against FD ground truth, PDEBench metrics (issue 14).

Tasks (:mod:`gridformer.experiments.pde_tasks`): 1-D advection, Burgers and Fisher-KPP
diffusion-reaction with PDEBench's parameters, generated once by our FD solvers and cached as
PDEBench HDF5. Each model learns the one-frame map ``u(t) -> u(t + dt_saved)`` from every
consecutive pair of the training trajectories, in residual form ``u + s * net(u)`` (``s``: the
RMS increment of the training pairs, a fixed scale, so every net outputs O(1) values); the loss
is the MSE of the increment divided by its mean square (1 = "no change", 0 = exact).

Models, all on cell tokens of the periodic grid, each with the same data, optimizer steps and
batch size (the wall time of each training is reported):

- ``gridformer``: the standard GridFormer (2 blocks, 4 heads, dim 32, MLPs, content attention
  plus a relative position bias over the whole grid); AdamW, lr 1e-3, weight decay 0.01, 5%
  linear warm-up then cosine decay (the usual transformer recipe).
- ``fno``: FNO (4 Fourier layers, width 20, 12 modes, PDEBench's FNO1d sizes); Adam, lr 1e-3,
  halved every quarter of the steps (PDEBench: halved every 100 of 500 epochs).
- ``unet``: compact 2-level 1-D U-Net, width 16, circular padding; same recipe as the FNO.
- ``cnn``: LocalCNN (3 layers, kernel 3: receptive field 7 cells); same recipe as the FNO.
- ``persistence`` (reference, not trained): ``u(t + dt) = u(t)``.

Scaling to the CPU budget: PDEBench trains 500 epochs on 9,000 trajectories of 1024 cells with
201 frames; ``--quick`` uses 32 cells, 24 + 8 trajectories of 21 frames and 200 steps.

Metrics per task and model (keys ``<task>/<model>_<metric>``): PDEBench's ``rmse``,
``nrmse``, ``crmse``, ``brmse``, ``frmse_low/mid/high`` of the one-step (teacher-forced)
predictions over every test frame, the same along the autoregressive rollout from the initial
state (``rollout_nrmse``: averaged over the rollout, as PDEBench reports its autoregressive
numbers; ``rollout_nrmse_curve``: per step), ``stable_steps`` (rollout steps before nRMSE first
exceeds 1; the rollout length if never), ``train_seconds`` and ``train_steps``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn

from gridformer.experiments.harness import Experiment, ExperimentResult, SeedRun, Verdict
from gridformer.experiments.pde_tasks import TASKS, check_task, generation_settings, load_task

__all__ = ["EXPERIMENT", "MODELS", "Stepper", "build_model", "check_settings", "evaluate",
           "stable_steps", "train_stepper"]

MODELS = ("gridformer", "fno", "unet", "cnn")
_PDE_METRICS = ("rmse", "nrmse", "crmse", "brmse")
QUICK: dict[str, Any] = {
    "tasks": list(TASKS), "models": list(MODELS), "cells": 32, "frames": 21, "n_train": 24,
    "n_test": 8, "steps": 200, "batch_size": 32, "data_seed": 0, "cache_dir": None,
}
FULL: dict[str, Any] = {**QUICK, "cells": 128, "frames": 41, "n_train": 128, "n_test": 32,
                        "steps": 3000}


class Stepper(nn.Module):
    """``(B, X) -> (B, X)``: ``u + scale * net(u)`` around a token model on cell tokens."""

    def __init__(self, net: nn.Module, layout: Any, scale: float) -> None:
        super().__init__()
        self.net, self.layout = net, layout
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        tokens = u.reshape(u.shape[0], -1, 1)  # (B, N, 1)
        out = self.net(tokens, self.layout).prediction.reshape(u.shape)  # (B, X)
        return u + self.scale * out


def build_model(kind: str, cells: int, scale: float, seed: int) -> Stepper:
    """One of :data:`MODELS` on a periodic 1-D grid of ``cells`` cells, initialised from
    ``seed``."""
    import dataclasses

    from gridformer.model import FNO, TINY, GridFormer, LocalCNN, UNet
    from gridformer.tokenize import TokenLayout

    if kind not in MODELS:
        msg = f"unknown model {kind!r}; valid: {', '.join(MODELS)}"
        raise ValueError(msg)
    torch.manual_seed(seed)
    layout = TokenLayout.for_grid((cells,), patch_size=1, periodic=True)
    if kind == "gridformer":
        cfg = dataclasses.replace(TINY, ndim=1, dim=32, depth=2, heads=4, mlp_ratio=2.0,
                                  max_relative_offset=cells // 2)
        net: nn.Module = GridFormer(cfg)
    elif kind == "fno":
        net = FNO(1, 1, width=20, modes=min(12, cells // 2), layers=4, ndim=1)
    elif kind == "unet":
        net = UNet(1, 1, width=16, levels=2, ndim=1)
    else:
        net = LocalCNN(1, 1, hidden=32, layers=3, kernel_size=3, ndim=1)
    return Stepper(net, layout, scale)


def _schedule(kind: str, opt: torch.optim.Optimizer, steps: int) -> Any:
    if kind == "gridformer":  # warm-up 5%, then cosine to 0
        warm = max(1, steps // 20)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5
                                                 * (1 + math.cos(math.pi * min(s, steps)
                                                                 / steps)))
    return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, steps // 4), gamma=0.5)


def train_stepper(model: Stepper, kind: str, inputs: np.ndarray, targets: np.ndarray, *,
                  steps: int, batch_size: int, seed: int, device: Any) -> dict[str, float]:
    """Train ``model`` on pairs ``(M, X)`` with ``kind``'s recipe; returns the final training
    loss (normalised, mean of the last 10% of steps), the wall seconds and the steps."""
    x = torch.as_tensor(inputs, dtype=torch.float32, device=device)
    y = torch.as_tensor(targets, dtype=torch.float32, device=device)
    norm = float(((y - x) ** 2).mean()) or 1.0
    model.to(device).train()
    opt: torch.optim.Optimizer = (
        torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01) if kind == "gridformer"
        else torch.optim.Adam(model.parameters(), lr=1e-3))
    sched = _schedule(kind, opt, steps)
    gen = torch.Generator().manual_seed(seed)
    losses, started = [], time.perf_counter()
    for _ in range(steps):
        index = torch.randint(0, x.shape[0], (min(batch_size, x.shape[0]),), generator=gen)
        loss = ((model(x[index]) - y[index]) ** 2).mean() / norm
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    model.eval()
    tail = max(1, steps // 10)
    return {"train_loss": float(np.mean(losses[-tail:])),
            "train_seconds": time.perf_counter() - started, "train_steps": float(steps)}


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
    """PDEBench metrics of ``model`` (a ``(B, X) -> (B, X)`` callable) on test trajectories
    ``(S, T, X)``: one-step and rollout, see the module docstring for the keys."""
    from gridformer.analysis import pdebench_metrics_per_step

    one, roll = _predict(model, test, device)
    dims = ("sample", "time", "x")
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
    return out


def check_settings(settings: Mapping[str, Any]) -> None:
    """Unknown tasks or models, or too few samples/frames for the split: a ValueError before
    any data are generated or models trained."""
    for key, valid in (("tasks", TASKS), ("models", MODELS)):
        chosen = settings[key]
        if isinstance(chosen, str) or not list(chosen):
            msg = f"{key}={chosen!r} must be a non-empty list; valid: {', '.join(valid)}"
            raise ValueError(msg)
        for item in chosen:
            if key == "tasks":
                check_task(item)
            elif item not in MODELS:
                msg = f"unknown model {item!r}; valid: {', '.join(MODELS)}"
                raise ValueError(msg)
    for key, least in (("n_train", 1), ("n_test", 1), ("frames", 3), ("steps", 1),
                       ("batch_size", 1), ("cells", 8)):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            msg = (f"{key}={value!r} is too small for the benchmark's split: it must be an "
                   f"integer >= {least}")
            raise ValueError(msg)
    if settings["cells"] % 4:
        msg = f"cells={settings['cells']} must be a multiple of 4 (the U-Net pools twice)"
        raise ValueError(msg)


def run(seed: int, settings: Mapping[str, Any], device: Any) -> SeedRun:
    """One seed: for each task, train every model on the cached data and score it."""
    check_settings(settings)
    n_train = settings["n_train"]
    metrics: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for task in settings["tasks"]:
        data = load_task(task, **generation_settings(settings),
                         cache_dir=settings["cache_dir"])  # (S, T, X)
        train, test = data[:n_train], data[n_train:]
        inputs = train[:, :-1].reshape(-1, data.shape[-1])  # (M, X)
        targets = train[:, 1:].reshape(-1, data.shape[-1])
        scale = float(np.sqrt(np.mean((targets - inputs) ** 2)))
        scored = {"persistence": evaluate(lambda u: u, test, device)}
        for kind in settings["models"]:
            model = build_model(kind, data.shape[-1], scale, seed)
            trained = train_stepper(model, kind, inputs, targets, steps=settings["steps"],
                                    batch_size=settings["batch_size"], seed=seed, device=device)
            scored[kind] = {**evaluate(model, test, device), **trained}
        for name, values in scored.items():
            curves[f"{task}/{name}"] = values["rollout_nrmse_curve"]
            for key, value in values.items():
                metrics[f"{task}/{name}_{key}"] = value
    return SeedRun(metrics, {"curves": curves})


def verdict(metrics: dict[str, dict[str, Any]], settings: Mapping[str, Any]) -> Verdict:
    """Per task: the GridFormer's rollout nRMSE against the best trained baseline's."""
    lines, outcomes = [], []
    for task in settings["tasks"]:
        scores = {m: metrics[f"{task}/{m}_rollout_nrmse"]["mean"] for m in settings["models"]}
        scores = {m: math.inf if v is None else v for m, v in scores.items()}  # None: diverged
        best = min((m for m in scores if m != "gridformer"), key=lambda m: scores[m],
                   default=None)
        text = ", ".join(f"{m} {v:.3g}" for m, v in scores.items())
        lines.append(f"{task}: rollout nRMSE {text}")
        if "gridformer" in scores and best is not None:
            outcomes.append(scores["gridformer"] <= 1.1 * scores[best])
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
    description="neural PDE solvers (GridFormer, FNO, U-Net, CNN) vs FD ground truth on "
                "PDEBench's 1-D tasks, PDEBench metrics one-step and along the rollout",
    claim="Trained on the same data with the same budget, the standard GridFormer's rollout "
          "nRMSE is within 10% of the best baseline's (or better) on every task.",
    quick=QUICK, full=FULL, run=run, verdict=verdict, figure=figure,
)
