"""Runnable experiments that turn the reference text's claims into checks.

Public API::

    run_stencil_experiment(equation, *, grid, dt, spacing, seed, model="stencil",
                           optimizer="lbfgs", rollout_steps=100, **params) -> StencilResult
    StencilResult.metrics() -> JSON-ready dict (what `gridformer stencil --json` writes)
    write_stencil_report(result, out_dir) -> written paths (stencil/rollout/fields PNG, report.md)
    stencil_table(result) -> text table of learned vs FD weights per offset
    build_field_model(kind, grid), fit_field_model(model, inputs, targets, optimizer="lbfgs")
    random_fields(n, grid, seed=...), fd_pairs(...), fd_trajectory(...)
"""

from gridformer.experiments.stencil import EQUATION_DEFAULTS, run_stencil_experiment
from gridformer.experiments.stencil_data import fd_pairs, fd_trajectory, random_fields
from gridformer.experiments.stencil_models import (
    MODEL_KINDS,
    FieldModel,
    build_field_model,
    fit_field_model,
)
from gridformer.experiments.stencil_report import stencil_table, write_stencil_report
from gridformer.experiments.stencil_result import StencilResult

__all__ = [
    "EQUATION_DEFAULTS",
    "MODEL_KINDS",
    "FieldModel",
    "StencilResult",
    "build_field_model",
    "fd_pairs",
    "fd_trajectory",
    "fit_field_model",
    "random_fields",
    "run_stencil_experiment",
    "stencil_table",
    "write_stencil_report",
]
