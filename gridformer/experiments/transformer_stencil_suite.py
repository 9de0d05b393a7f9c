"""``transformer-stencil``: a standard GridFormer learns the FD update, read as a stencil.

Claim (issue 14): the standard GridFormer (2 blocks with MLPs, content attention, Adam) can be
trained so that its attention reads as the finite-difference stencil: on anisotropic heat
(d = (0.6, 0.3)) and upwind advection (v = (0.5, -0.25)), dt = 0.4, h = 1, periodic,

- ``last_layer_mass_in_support`` >= 0.99 (last layer's attention mass on the FD offsets),
- ``jacobian_stencil_error`` <= 1e-2 (max |effective (Jacobian) stencil - FD|),
- ``rollout_rel_l2`` <= 1e-2 (relative L2 error after 100 steps against the FD solver).

Each seed trains the :data:`~gridformer.experiments.transformer_stencil.RECIPE` on every
equation, then every variant of ``settings["ablation"]``: ``"none"`` (every ingredient off:
the plain model) and ``"no_<ingredient>"`` (the recipe without one ingredient). Metric keys:
``<equation>_<metric>`` for the recipe and ``ablation_<variant>_<equation>_<metric>`` for the
variants; :func:`ablation_table` turns a result into a list of rows. Models train on the
run's device (``--device``; the documented numbers are CPU runs: a few thousand full-batch
Adam steps on a 16 x 16 grid); the FD data and the metrics are computed on the CPU. The grid
is a setting (``overrides={"grid": [32, 32]}``); ``benchmarks/gpu_stencil_check.py`` runs the
recipe at 32 x 32 on CUDA.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from gridformer.experiments.harness import Experiment, ExperimentResult, SeedRun, Verdict

__all__ = ["EXPERIMENT", "METRICS", "TARGETS", "ablation_table", "variant_recipe"]

#: Metric -> (target, "lower"/"higher" is better).
TARGETS = {"last_layer_mass_in_support": (0.99, "higher"),
           "jacobian_stencil_error": (1e-2, "lower"),
           "rollout_rel_l2": (1e-2, "lower")}
METRICS = tuple(TARGETS)
_LOG = logging.getLogger(__name__)
_PARAMS = {"heat": {"diffusivity": (0.6, 0.3)}, "advection": {"velocity": (0.5, -0.25)}}

QUICK = {"equations": ["heat"], "grid": [16, 16], "dt": 0.4, "n_train": 8, "n_test": 4,
         "rollout_steps": 100, "steps": 1000, "ablation": []}
FULL = {**QUICK, "equations": ["heat", "advection"], "steps": 2000,
        "ablation": ["none", "no_support_init", "no_linear_init", "no_mixed_data",
                     "no_no_norm", "no_residual", "no_zero_head", "no_conservative",
                     "no_locality_init", "no_distance_bias", "no_lr_schedule"]}


def variant_recipe(variant: str, steps: int) -> Any:
    """The :class:`Recipe` of ``"recipe"``, ``"none"`` or ``"no_<ingredient>"``."""
    from gridformer.experiments.transformer_stencil import INGREDIENTS, RECIPE

    recipe = dataclasses.replace(RECIPE, steps=int(steps))
    if variant == "recipe":
        return recipe
    if variant == "none":
        return recipe.plain()
    name = variant.removeprefix("no_")
    if not variant.startswith("no_") or name not in INGREDIENTS:
        valid = ["recipe", "none", *(f"no_{i}" for i in INGREDIENTS)]
        msg = f"ablation variant {variant!r} is not one of {valid}"
        raise ValueError(msg)
    return recipe.without(name)


def _one(equation: str, variant: str, seed: int, settings: Mapping[str, Any],
         device: Any = "cpu") -> tuple[dict[str, float], Any]:
    from gridformer import solvers
    from gridformer.experiments.stencil_data import fd_trajectory, random_fields
    from gridformer.experiments.transformer_stencil import (
        build_recipe_model,
        stencil_metrics,
        train_recipe,
        training_pairs,
    )

    grid, dt, params = tuple(settings["grid"]), float(settings["dt"]), _PARAMS[equation]
    spacing = (1.0,) * len(grid)
    recipe = variant_recipe(variant, settings["steps"])
    inputs, targets = training_pairs(equation, grid, n_train=settings["n_train"], dt=dt,
                                     params=params, recipe=recipe, seed=seed)
    test = random_fields(settings["n_test"], grid, seed=seed + 1, kind="smooth")
    reference = fd_trajectory(equation, test, steps=settings["rollout_steps"], dt=dt,
                              spacing=spacing, params=params)
    fd = solvers.update_stencil(equation, dt=dt, spacing=spacing, **params).reset_coords(
        drop=True)
    model = build_recipe_model(recipe, grid, seed=seed, fd_stencil=fd).to(device)
    fit = train_recipe(model, recipe, inputs, targets, seed=seed, fd_stencil=fd)
    metrics = stencil_metrics(model, fd, test, reference, seed=seed)
    metrics["train_loss"] = fit["loss"]
    metrics["train_cpu_seconds"] = fit["cpu_seconds"]
    _LOG.info("seed %d %s %s: %s", seed, variant, equation,
              {k: float(f"{v:.4g}") for k, v in metrics.items()})
    return metrics, model


def run(seed: int, settings: Mapping[str, Any], device: Any) -> SeedRun:
    """The recipe and every ablation variant on every equation, for one seed."""
    for variant in settings["ablation"]:
        variant_recipe(variant, settings["steps"])  # bad names fail before any training
    for equation in settings["equations"]:
        if equation not in _PARAMS:
            msg = f"equation {equation!r} is not one of {list(_PARAMS)}"
            raise ValueError(msg)
    metrics: dict[str, float] = {}
    models = {}
    for equation in settings["equations"]:
        values, models[equation] = _one(equation, "recipe", seed, settings, device)
        metrics.update({f"{equation}_{k}": v for k, v in values.items()})
    for variant in settings["ablation"]:
        for equation in settings["equations"]:
            values, _ = _one(equation, variant, seed, settings, device)
            metrics.update({f"ablation_{variant}_{equation}_{k}": v for k, v in values.items()})
    return SeedRun(metrics, {"models": models})


def ablation_table(result: ExperimentResult) -> list[dict[str, Any]]:
    """Rows ``{"variant", "equation", <metric>: mean, ...}``: the recipe first, then the
    ablation variants in settings order."""
    rows = []
    for variant in ["recipe", *result.settings["ablation"]]:
        prefix = "" if variant == "recipe" else f"ablation_{variant}_"
        for equation in result.settings["equations"]:
            row: dict[str, Any] = {"variant": variant, "equation": equation}
            for key in (*METRICS, "train_loss", "train_cpu_seconds"):
                row[key] = result.metrics[f"{prefix}{equation}_{key}"]["mean"]
            rows.append(row)
    return rows


def _meets(value: float | None, metric: str) -> bool:
    target, better = TARGETS[metric]
    if value is None:  # a diverged rollout
        return False
    return value >= target if better == "higher" else value <= target


def verdict(metrics: dict[str, dict[str, Any]], settings: Mapping[str, Any]) -> Verdict:
    """Holds when the recipe meets all three targets on every equation (seed means)."""
    parts, ok = [], True
    for equation in settings["equations"]:
        values = [metrics[f"{equation}_{m}"]["mean"] for m in METRICS]
        met = [_meets(v, m) for v, m in zip(values, METRICS, strict=True)]
        ok = ok and all(met)
        shown = ", ".join(f"{m} {'nan' if v is None else format(v, '.3g')}"
                          f"{'' if good else ' (missed)'}"
                          for m, v, good in zip(METRICS, values, met, strict=True))
        parts.append(f"{equation}: {shown}")
    targets = "targets: mass >= 0.99, Jacobian error <= 1e-2, rollout rel. L2 <= 1e-2"
    return Verdict("holds" if ok else "does not hold", "; ".join(parts) + f" ({targets})")


EXPERIMENT = Experiment(
    name="transformer-stencil",
    description="a standard GridFormer (2 blocks, MLPs, content attention, Adam) learns the "
                "heat / upwind-advection FD update; recipe and ablation",
    claim="With the right initialisation, output form and loss, a standard transformer's last "
          "attention layer reads as the FD stencil, its Jacobian is the FD stencil and its "
          "100-step rollout stays within 1% of the FD solver.",
    quick=QUICK, full=FULL, run=run, verdict=verdict, figure=None,
)
