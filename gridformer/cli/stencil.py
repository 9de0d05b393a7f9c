"""``gridformer stencil``: learn a PDE's update stencil with attention, compare it with FD.

Example::

    gridformer stencil --equation heat --diffusivity 0.6,0.3 --dt 0.4 --spacing 1 \\
        --grid 32,32 --seed 0 --json out.json --out results/
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from gridformer.cli.common import (
    add_output_arguments,
    parse_float_tuple,
    parse_int_tuple,
    progress,
    write_result,
)

__all__ = ["add_experiment_arguments", "experiment_config", "register", "run", "run_and_report"]


def _params(values: tuple[float, ...] | None) -> float | tuple[float, ...] | None:
    if values is None:
        return None
    return values[0] if len(values) == 1 else values


def add_experiment_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``stencil`` and ``demo``."""
    from gridformer.experiments.stencil_models import MODEL_KINDS

    parser.add_argument("--equation", default="heat", choices=("heat", "advection", "burgers"))
    parser.add_argument("--diffusivity", type=parse_float_tuple, default=None,
                        help="heat: d or d_y,d_x (length^2/time; default 0.6,0.3)")
    parser.add_argument("--velocity", type=parse_float_tuple, default=None,
                        help="advection: v or v_y,v_x (length/time; default 0.5,-0.25)")
    parser.add_argument("--viscosity", type=float, default=None,
                        help="burgers: nu (length^2/time; default 0.05)")
    parser.add_argument("--dt", type=float, default=0.4, help="time step (default 0.4)")
    parser.add_argument("--spacing", type=parse_float_tuple, default=(1.0,),
                        help="grid spacing h or h_y,h_x (default 1)")
    parser.add_argument("--grid", type=parse_int_tuple, default=(32, 32),
                        help="cells per dim, ny,nx or nx (periodic; default 32,32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="stencil", choices=MODEL_KINDS,
                        help="stencil: one bias-only attention head (default); gridformer: "
                             "two blocks with MLPs; cnn/fno: baselines (effective stencil)")
    parser.add_argument("--optimizer", default="lbfgs", choices=("lbfgs", "adam"))
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer steps (L-BFGS outer iterations, default 50; Adam 2000)")
    parser.add_argument("--rollout-steps", type=int, default=100)
    parser.add_argument("--train-fields", type=int, default=2,
                        help="random fields to train on (default 2)")


def experiment_config(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :func:`run_stencil_experiment` from parsed options."""
    spacing = args.spacing[0] if len(args.spacing) == 1 else args.spacing
    return {
        "equation": args.equation, "grid": tuple(args.grid), "dt": args.dt, "spacing": spacing,
        "seed": args.seed, "model": args.model, "optimizer": args.optimizer,
        "steps": args.steps, "rollout_steps": args.rollout_steps, "n_train": args.train_fields,
        "diffusivity": _params(args.diffusivity), "velocity": _params(args.velocity),
        "viscosity": args.viscosity,
    }


def register(subparsers: Any) -> None:
    """Add the ``stencil`` subcommand."""
    p = subparsers.add_parser(
        "stencil", help="learn a PDE update stencil with attention and compare it with FD",
        description="Train a one-head attention model on finite-difference steps, read its "
                    "attention as a stencil, compare it with the FD stencil and roll it out.",
    )
    add_experiment_arguments(p)
    add_output_arguments(p, out_help="folder for figures (PNG) and a Markdown report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the experiment; print the summary; write JSON / figures when asked."""
    return run_and_report(experiment_config(args), command="stencil", out=args.out,
                          json_path=args.json, started=time.perf_counter())


def run_and_print(config: dict[str, Any], out: Path | None) -> Any:
    """Run :func:`run_stencil_experiment` with ``config``, print its table and summary, and
    write figures + report to ``out`` when given; return the result.

    Shared by ``gridformer stencil`` and ``gridformer demo``.
    """
    from gridformer.experiments import run_stencil_experiment
    from gridformer.experiments.stencil_report import (
        stencil_table,
        summary_lines,
        write_stencil_report,
    )

    result = run_stencil_experiment(**config, progress=progress)
    print(stencil_table(result))
    print()
    print("\n".join(summary_lines(result)))
    if out is not None:
        paths = write_stencil_report(result, out)
        print(f"\nfigures and report written to {out.resolve()}/: "
              f"{', '.join(p.name for p in paths)}")
    return result


def run_and_report(config: dict[str, Any], *, command: str, out: Path | None,
                   json_path: Path | None, started: float) -> int:
    """:func:`run_and_print`, then the JSON record to ``json_path`` (when given)."""
    result = run_and_print(config, out)
    write_result(json_path, command=command, config={**config, "params": result.params},
                 metrics=result.metrics(), started=started)
    return 0
