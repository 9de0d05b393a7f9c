"""``stencil`` in the harness: the learned-stencil run of ``gridformer stencil``, over seeds.

Claim (reference text, claim 7): treat the grid at time t as the image and t + 1 as the
target, each cell a token; attention learns the update rule, and its weights form a data-driven
stencil that can be compared with a finite-difference solver's.

Each seed calls :func:`gridformer.experiments.run_stencil_experiment` (one bias-only attention
head fitted by full-batch L-BFGS to forward-Euler steps of the anisotropic heat equation,
d = (0.6, 0.3), dt = 0.4, h = 1; the demo's problem) with its own random training and test
fields. It always runs on the CPU (full-batch L-BFGS on a small grid), whatever ``--device``.

Metrics: ``max_abs_error`` (largest |learned - FD| weight), ``mass_in_support`` (attention
mass on the FD stencil's offsets), ``effective_max_abs_error`` (the Jacobian stencil's),
``rollout_rel_l2`` (relative L2 error after the rollout against the FD solver) and
``train_seconds``. Verdict: ``max_abs_error`` below ``tolerance`` (1% of the unit total
weight, i.e. 0.01; the FD weights are 0.12-0.28).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gridformer.experiments.harness import Experiment, ExperimentResult, SeedRun, Verdict
from gridformer.experiments.verdicts import compare_to_value, fmt

__all__ = ["EXPERIMENT"]

QUICK = {"equation": "heat", "diffusivity": [0.6, 0.3], "dt": 0.4, "spacing": 1.0,
         "grid": [16, 16], "optimizer": "lbfgs", "steps": 50, "n_train": 2,
         "rollout_steps": 30, "n_rollout": 2, "tolerance": 0.01}
FULL = {**QUICK, "grid": [32, 32], "rollout_steps": 100, "n_rollout": 4}


def run(seed: int, settings: Mapping[str, Any], device: Any) -> SeedRun:
    """One seed of :func:`run_stencil_experiment` with the settings."""
    from gridformer.experiments.stencil import run_stencil_experiment

    result = run_stencil_experiment(
        settings["equation"], grid=tuple(settings["grid"]), dt=settings["dt"],
        spacing=settings["spacing"], seed=seed, optimizer=settings["optimizer"],
        steps=settings["steps"], n_train=settings["n_train"],
        rollout_steps=settings["rollout_steps"], n_rollout=settings["n_rollout"],
        diffusivity=tuple(settings["diffusivity"]))
    m = result.metrics()
    keys = ("max_abs_error", "mass_in_support", "effective_max_abs_error", "rollout_rel_l2",
            "train_seconds")
    return SeedRun({k: float(m[k]) for k in keys}, {"result": result})


def verdict(metrics: dict[str, dict[str, Any]], settings: Mapping[str, Any]) -> Verdict:
    """Largest learned-vs-FD weight error against the tolerance (lower is better)."""
    v = compare_to_value("max |learned - FD| stencil weight", metrics["max_abs_error"],
                         settings["tolerance"], margin=0.0, better="lower", spec=".2e")
    context = (f"attention mass on the FD stencil {fmt(metrics['mass_in_support'], '.6f')}, "
               f"rollout rel. L2 after {settings['rollout_steps']} steps "
               f"{fmt(metrics['rollout_rel_l2'], '.2e')}; ")
    return Verdict(v.outcome, context + v.text)


def figure(result: ExperimentResult) -> Any:
    """Learned, FD and difference stencils of the first seed."""
    from gridformer.experiments.stencil_report import stencil_figure

    return stencil_figure(result.runs[0].artefacts["result"])


EXPERIMENT = Experiment(
    name="stencil",
    description="learn the heat equation's update stencil with one attention head and compare "
                "it weight by weight with finite differences",
    claim="Attention learns a PDE's update rule: its weights form a stencil that matches the "
          "finite-difference one.",
    quick=QUICK, full=FULL, run=run, verdict=verdict, figure=figure,
)
