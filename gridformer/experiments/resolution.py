"""``resolution``: train on one grid shape, predict on larger and non-square grids.

Claim (reference text, claim 4): learned absolute position embeddings must be resized
(interpolated) for new image sizes; relative encodings, where only the offset between two
patches matters, handle varying geometry more naturally.

Task: one step of a translation-invariant physical map on periodic grids of unit spacing:
isotropic heat diffusion (D = 1) over 5 forward-Euler steps of dt = 0.2 from
``gridformer.solvers`` (a smoothing of about 1.4 cells), from random fields with a power-law
spectrum of slope -1 in cycles per cell (the same local statistics on any grid size). Tokens
are 2 x 2 patches. The models train on a 16 x 16 grid (8 x 8 tokens) and are tested, without
retraining, on the training shape and on larger and non-square grids (default 32 x 32,
16 x 48, 48 x 24 cells).

Encodings (GridFormer, everything else equal): ``absolute`` (a learned table on the 8 x 8
training patch grid, resampled bicubically to other grids), ``relative`` (a learned bias per
patch offset up to ``max_relative_offset`` = 3 patches per axis, the largest offset that occurs
in both directions on the periodic 8-patch training grid, so that every entry, the clipped edge
included, is trained; larger offsets on new grids share the edge entry, as in Shaw et al.
2018) and ``geodesic`` (a learned per-head bias ``-b d`` of the token distance, grid units
here).

Metric per encoding: the error of a grid is ``rms(prediction - target) / rms(target - input)``
(1 = no better than predicting no change), pooled over its test fields;
``<name>_error_ratio`` = mean error over the new grids / error on the training grid, with
``<name>_error_train_grid`` and ``<name>_error_ratio_by_grid`` beside it. The test fields of a
grid shape are drawn from the same seed for every shape, so the ratio on the training shape
itself is exactly 1. Verdict: relative's ratio against absolute's (lower is better).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from gridformer.experiments._common import derive_seed, gridformer_model, predict, tokenize
from gridformer.experiments.harness import Experiment, ExperimentResult, SeedRun, Verdict
from gridformer.experiments.verdicts import compare, fmt

__all__ = ["EXPERIMENT", "heat_pairs"]

_MODEL = {"dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2.0, "max_relative_offset": 3,
          "lr": 2e-3, "batch_size": 32}
QUICK = {"train_grid": [16, 16], "eval_grids": [[32, 32], [16, 48], [48, 24]], "patch_size": 2,
         "encodings": ["absolute", "relative", "geodesic"], "diffusivity": 1.0, "dt": 0.2,
         "solver_steps": 5, "spectral_slope": -1.0, "n_train": 512, "n_test": 64,
         "steps": 200, **_MODEL}
FULL = {**QUICK, "n_train": 1024, "n_test": 64, "steps": 1000}


def heat_pairs(settings: Mapping[str, Any], shape: tuple[int, int], n: int, seed: int
               ) -> tuple[Any, Any]:
    """``(inputs, targets)`` DataArrays ``(sample, y, x)``: random fields and the heat solver's
    state ``solver_steps`` steps later (periodic, unit spacing)."""
    from gridformer import solvers
    from gridformer.datasets import random_field

    u0 = random_field(shape, spectral_slope=settings["spectral_slope"], n_samples=n, seed=seed)
    traj = solvers.solve("heat", u0, steps=settings["solver_steps"], dt=settings["dt"],
                         diffusivity=settings["diffusivity"],
                         save_every=settings["solver_steps"])
    return u0, traj.u.isel(time=-1).drop_vars("time", errors="ignore")


def _error(model: Any, settings: Mapping[str, Any], shape: tuple[int, int], seed: int,
           device: Any) -> float:
    """``rms(prediction - target) / rms(target - input)`` over the test fields of ``shape``."""
    u0, u1 = heat_pairs(settings, shape, settings["n_test"], seed)
    x, layout = tokenize(u0, settings["patch_size"], periodic=True)
    y, _ = tokenize(u1, settings["patch_size"], periodic=True)
    prediction, _ = predict(model, x, layout, device=device, batch_size=16)
    return float(torch.sqrt(((prediction - y) ** 2).mean() / ((y - x) ** 2).mean()))


def run(seed: int, settings: Mapping[str, Any], device: Any) -> SeedRun:
    """One seed: train one GridFormer per encoding on the training grid, test on every grid."""
    from gridformer.experiments._common import train

    train_grid = tuple(settings["train_grid"])
    u0, u1 = heat_pairs(settings, train_grid, settings["n_train"], derive_seed(seed, 1))
    x, layout = tokenize(u0, settings["patch_size"], periodic=True)
    y, _ = tokenize(u1, settings["patch_size"], periodic=True)
    D, grid = x.shape[-1], tuple(layout.patch_grid_shape)
    test_seed = derive_seed(seed, 2)  # the same seed for every grid shape
    metrics: dict[str, Any] = {}
    curves = {}
    for i, name in enumerate(settings["encodings"]):
        torch.manual_seed(derive_seed(seed, 3, i))
        model = gridformer_model(settings, in_features=D, out_features=D, head="field",
                                 patch_grid=grid, position=name)
        loss = train(model, x, y, layout, settings=settings, device=device, seed=seed,
                     loss="mse")
        base = _error(model, settings, train_grid, test_seed, device)
        ratios = [_error(model, settings, tuple(g), test_seed, device) / base
                  for g in settings["eval_grids"]]
        metrics[f"{name}_error_ratio"] = float(np.mean(ratios))
        metrics[f"{name}_error_train_grid"] = base
        metrics[f"{name}_error_ratio_by_grid"] = ratios
        metrics[f"{name}_train_loss"] = loss
        curves[name] = ratios
    return SeedRun(metrics, {"ratios": curves})


def verdict(metrics: dict[str, dict[str, Any]], settings: Mapping[str, Any]) -> Verdict:
    """Relative vs absolute error ratio on the new grids (lower is better); others as context."""
    names = settings["encodings"]
    if not {"relative", "absolute"} <= set(names):
        others = ", ".join(f"{n} {fmt(metrics[f'{n}_error_ratio'])}" for n in names)
        return Verdict("inconclusive", f"error ratios {others} — inconclusive (the claim "
                                       f"compares 'relative' with 'absolute'; run both)")
    v = compare("error ratio new grids / training grid", "relative",
                metrics["relative_error_ratio"], "absolute (interpolated)",
                metrics["absolute_error_ratio"], margin=0.05, better="lower")
    context = "; ".join(
        f"{n}: training-grid error {fmt(metrics[f'{n}_error_train_grid'])}, ratio "
        f"{fmt(metrics[f'{n}_error_ratio'])}" for n in names)
    return Verdict(v.outcome, f"{context}; {v.text}")


def figure(result: ExperimentResult) -> Any:
    """Error ratio per new grid and encoding (mean ± sd over seeds)."""
    from matplotlib.figure import Figure

    m, s = result.metrics, result.settings
    grids = [f"{g[0]}x{g[1]}" for g in s["eval_grids"]]
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(s["encodings"])
    for i, name in enumerate(s["encodings"]):
        summary = m[f"{name}_error_ratio_by_grid"]
        sd = [v or 0.0 for v in summary["sd"]]
        ax.bar(np.arange(len(grids)) + i * width, summary["mean"], width, yerr=sd, capsize=3,
               label=name)
    ax.axhline(1.0, color="grey", linestyle=":")
    ax.set_xticks(np.arange(len(grids)) + width * (len(s["encodings"]) - 1) / 2, grids)
    ax.set(ylabel="error on grid / error on training grid",
           title=f"trained on {s['train_grid'][0]}x{s['train_grid'][1]}, "
                 f"{len(result.seeds)} seeds")
    ax.legend()
    return fig


EXPERIMENT = Experiment(
    name="resolution",
    description="train on one grid shape, test on larger and non-square grids: absolute "
                "(interpolated), relative and geodesic position encodings",
    claim="Relative position encodings carry over to new grid shapes more naturally than "
          "learned absolute embeddings, which must be interpolated.",
    quick=QUICK, full=FULL, run=run, verdict=verdict, figure=figure,
)
