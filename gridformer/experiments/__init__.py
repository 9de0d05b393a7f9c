"""Runnable experiments that turn the reference text's claims into checks, with verdicts.

The harness
-----------
Every experiment is one module defining ``EXPERIMENT``, an :class:`Experiment` (a frozen
dataclass, listed by name in :data:`EXPERIMENTS`)::

    Experiment(
        name="occlusion",                       # gridformer experiment occlusion
        description="...",                      # one line for --list
        claim="...",                            # the claim tested, for the report
        quick={...}, full={...},                # settings (same keys): --quick / --full
        run=run,        # run(seed, settings, device) -> SeedRun(metrics, artefacts)
        verdict=verdict,  # verdict(metrics, settings) -> Verdict(outcome, text)
        figure=figure,  # figure(ExperimentResult) -> matplotlib Figure (or None)
    )

``run`` returns the metrics of one seed (numbers or curves, the same keys every seed) and
anything the figure needs; :func:`run_experiment` checks the settings, seeds and device before
any training, runs the seeds, summarises each metric as ``{"mean", "sd", "values"}`` and asks
``verdict`` for an outcome — ``"holds"``, ``"does not hold"`` or ``"inconclusive"`` — and one
line that says it in numbers (:mod:`gridformer.experiments.verdicts` compares 95% intervals over
seeds). :func:`write_report` writes ``NAME.png`` and ``NAME.md``;
:meth:`ExperimentResult.record` is the JSON record ``{"command", "config", "metrics",
"verdict", "seconds"}`` (config: mode, seed list, device, settings, date and hardware).

To add an experiment: a generator in ``gridformer.datasets`` if it needs data, one module here
with ``EXPERIMENT``, one line in :data:`EXPERIMENTS`, a tiny-settings test in
``tests/experiments``. The experiments, their tasks and settings are described in
``docs/experiments.md``.

::

    from gridformer.experiments import get_experiment, run_experiment, write_report
    result = run_experiment(get_experiment("counting"), mode="quick", seeds=3, device="cpu")
    result.verdict.text, result.metrics["vit_accuracy"]["mean"]
    write_report(result, "results/")

The learned-stencil API
-----------------------
::

    run_stencil_experiment(equation, *, grid, dt, spacing, seed, model="stencil",
                           optimizer="lbfgs", rollout_steps=100, **params) -> StencilResult
    StencilResult.metrics() -> JSON-ready dict (what `gridformer stencil --json` writes)
    write_stencil_report(result, out_dir) -> written paths (stencil/rollout/fields PNG, report.md)
    stencil_table(result) -> text table of learned vs FD weights per offset
    build_field_model(kind, grid), fit_field_model(model, inputs, targets, optimizer="lbfgs")
    random_fields(n, grid, seed=...), fd_pairs(...), fd_trajectory(...)
"""

from gridformer.experiments.harness import (
    Experiment,
    ExperimentResult,
    SeedRun,
    Verdict,
    run_experiment,
    summarize,
)
from gridformer.experiments.registry import EXPERIMENTS, get_experiment, list_experiments
from gridformer.experiments.report import write_report
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
    "EXPERIMENTS",
    "MODEL_KINDS",
    "Experiment",
    "ExperimentResult",
    "FieldModel",
    "SeedRun",
    "StencilResult",
    "Verdict",
    "build_field_model",
    "fd_pairs",
    "fd_trajectory",
    "fit_field_model",
    "get_experiment",
    "list_experiments",
    "random_fields",
    "run_experiment",
    "run_stencil_experiment",
    "stencil_table",
    "summarize",
    "write_report",
    "write_stencil_report",
]
