"""``gridformer demo``: the headline result in one command, no files needed.

It trains one attention head on forward-Euler steps of the anisotropic heat equation
(d = (0.6, 0.3), dt = 0.4, h = 1, 32 x 32 periodic grid), reads its attention as a stencil and
prints it next to the finite-difference stencil, with the errors and a 100-step rollout error.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from gridformer.cli.common import add_output_arguments

__all__ = ["register", "run"]

DEFAULT_OUT = Path("gridformer-demo")


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo", help="learn the heat-equation stencil with attention (under a minute on CPU)",
        description="Learn the anisotropic heat equation's update stencil with one attention "
                    "head and compare it, weight by weight, with finite differences.",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures and report")
    add_output_arguments(p, out_help=f"folder for figures and report (default ./{DEFAULT_OUT})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the heat stencil experiment on the embedded default and print a table."""
    from gridformer.cli.stencil import run_and_report

    started = time.perf_counter()
    config = {"equation": "heat", "diffusivity": (0.6, 0.3), "dt": 0.4, "spacing": 1.0,
              "grid": (32, 32), "seed": args.seed, "rollout_steps": 100}
    print("gridformer demo: learning the update stencil of u_t = 0.6 u_yy + 0.3 u_xx "
          "(forward Euler, dt 0.4, h 1, 32x32 periodic)\nwith one attention head whose logits "
          "are a learned bias per grid offset (L-BFGS on 2 random fields) ...\n")
    out = None if args.no_figures else (args.out if args.out is not None else DEFAULT_OUT)
    return run_and_report(config, command="demo", out=out, json_path=args.json, started=started)
