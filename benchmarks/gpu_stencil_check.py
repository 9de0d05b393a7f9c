"""Issue 14 at 32 x 32 on a GPU: the transformer-stencil recipe on heat and advection, seed 4.

From the repository root of a checkout (installed or not) on the GPU machine::

    PYTHONPATH=. python3 -m benchmarks.gpu_stencil_check          # writes to $OUT
    bash benchmarks/gpu_stencil_check.sh                          # the same, with a log

    # plumbing check on a CPU (16 x 16, a few Adam steps): seconds
    PYTHONPATH=. python3 -m benchmarks.gpu_stencil_check --device cpu --grid 16 --steps 3

It runs ``run_experiment(get_experiment("transformer-stencil"), mode="full", seeds=[4],
device="cuda", overrides={"grid": [32, 32], "ablation": []})``: the recipe of
``docs/transformer-stencil.md`` (2000 full-batch Adam steps, 8 training fields, 4 test fields,
100-step rollout) on both equations, no ablation. The JSON record (the harness's ``record()``
plus ``"per_equation"``: the three metrics of each equation with their targets and whether
each is met) goes to ``OUT_DIR/transformer_stencil_<ny>x<nx>_seed<seed>.json``, OUT_DIR being
``--out``, else ``$OUT``, else ``benchmarks/gpu_out``.

Needs torch (with CUDA unless ``--device cpu``), numpy, scipy, xarray and numba, nothing else
and no internet: gridformer's top-level imports of cf_xarray, dask and h5py (used by its
climate and HDF5 data code, never by this experiment) are met by empty stand-ins while
gridformer is imported, when those packages are missing, and removed from ``sys.modules``
right after, so xarray still sees them as absent. Without CUDA it exits with status 2 and
says so, unless ``--device cpu`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_stencil_check",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--grid", type=int, default=32, help="cells per side (default 32)")
    p.add_argument("--seed", type=int, default=4, help="seed (default 4, held out)")
    p.add_argument("--steps", type=int, default=None,
                   help="Adam steps (default: the --full recipe's)")
    p.add_argument("--rollout-steps", type=int, default=None,
                   help="rollout steps (default: the --full setting, 100)")
    p.add_argument("--out", default=None, help="output folder (default $OUT, else "
                                               "benchmarks/gpu_out)")
    args = p.parse_args(argv)
    if args.grid < 4:
        p.error(f"--grid={args.grid} must be >= 4 (cells per side)")
    if args.steps is not None and args.steps < 1:
        p.error(f"--steps={args.steps} must be >= 1")
    if args.rollout_steps is not None and args.rollout_steps < 1:
        p.error(f"--rollout-steps={args.rollout_steps} must be >= 1")
    return args


def per_equation(result: Any) -> dict[str, dict[str, Any]]:
    """``{equation: {metric: {"value", "target", "met"}}}`` of the recipe (one seed)."""
    from gridformer.experiments.transformer_stencil_suite import TARGETS

    table = {}
    for equation in result.settings["equations"]:
        row = {}
        for metric, (target, better) in TARGETS.items():
            value = result.metrics[f"{equation}_{metric}"]["mean"]
            met = value is not None and (value >= target if better == "higher"
                                         else value <= target)
            row[metric] = {"value": value, "target": target, "better": better, "met": met}
        for extra in ("train_loss", "train_cpu_seconds"):
            row[extra] = result.metrics[f"{equation}_{extra}"]["mean"]
        table[equation] = row
    return table


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_stencil_check: --device {args.device} but torch {torch.__version__} sees no "
              "CUDA device here; run it on the GPU machine, or pass --device cpu for a "
              "plumbing check", file=sys.stderr)
        return 2
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import numpy  # noqa: F401 - imported before the stand-ins exist, as is xarray
    import xarray  # noqa: F401

    from benchmarks._uninstalled import stand_ins_for_missing  # gridformer from this checkout

    with stand_ins_for_missing() as missing:
        from gridformer._io import write_json
        from gridformer.experiments import get_experiment, run_experiment
    if missing:
        print(f"note: {missing} not installed; empty stand-ins were used while importing "
              "gridformer (its climate data code needs them, this experiment does not)")
    overrides: dict[str, Any] = {"grid": [args.grid, args.grid], "ablation": []}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.rollout_steps is not None:
        overrides["rollout_steps"] = args.rollout_steps
    out = Path(args.out or os.environ.get("OUT") or REPO / "benchmarks" / "gpu_out")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = run_experiment(get_experiment("transformer-stencil"), mode="full",
                            seeds=[args.seed], device=args.device, overrides=overrides)
    record = result.record()
    record["per_equation"] = per_equation(result)
    record["wall_seconds"] = round(time.perf_counter() - started, 1)
    record["stand_ins"] = missing
    path = out / f"transformer_stencil_{args.grid}x{args.grid}_seed{args.seed}.json"
    write_json(record, path)
    print(json.dumps({"path": str(path), "device": record["config"]["environment"].get(
        "device_name", result.device), "wall_seconds": record["wall_seconds"],
        "verdict": record["verdict"], "per_equation": record["per_equation"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
