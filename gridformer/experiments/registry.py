"""The experiments ``gridformer experiment NAME`` knows: an explicit name -> module table.

Each module defines ``EXPERIMENT``, an :class:`~gridformer.experiments.harness.Experiment`.
Adding an experiment is one module and one line here. Modules are imported on first use, so
listing the names needs no model code.
"""

from __future__ import annotations

import importlib

from gridformer.experiments.harness import Experiment

__all__ = ["EXPERIMENTS", "get_experiment", "list_experiments"]

#: Experiment name -> module defining ``EXPERIMENT`` (in the order ``--list`` prints them).
EXPERIMENTS: dict[str, str] = {
    "stencil": "gridformer.experiments.stencil_suite",
    "occlusion": "gridformer.experiments.occlusion",
    "counting": "gridformer.experiments.counting",
    "segmentation": "gridformer.experiments.segmentation",
    "resolution": "gridformer.experiments.resolution",
    "spatiotemporal": "gridformer.experiments.spatiotemporal",
    "distillation": "gridformer.experiments.distillation",
    "linear-probe": "gridformer.experiments.linear_probe",
    "pde-benchmark": "gridformer.experiments.pde_benchmark",
    "transformer-stencil": "gridformer.experiments.transformer_stencil_suite",
}


def get_experiment(name: str) -> Experiment:
    """The :class:`Experiment` called ``name``; an unknown name lists the valid ones."""
    if name not in EXPERIMENTS:
        msg = f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}"
        raise ValueError(msg)
    return importlib.import_module(EXPERIMENTS[name]).EXPERIMENT


def list_experiments() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every experiment, in table order."""
    return [(name, get_experiment(name).description) for name in EXPERIMENTS]
