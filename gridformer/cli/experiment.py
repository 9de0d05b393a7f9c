"""``gridformer experiment NAME``: run one experiment of the suite over seeds, with a verdict.

Examples::

    gridformer experiment --list
    gridformer experiment occlusion                       # --quick, 3 seeds
    gridformer experiment counting --full --seeds 5 --json counting.json --out results/
    gridformer experiment resolution --json -             # the JSON record on stdout
    gridformer experiment pde-benchmark --task burgers-1d --model fno --model gridformer

Everything a run needs (the name, the seeds, the device, the output folders) is checked before
any training starts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gridformer.cli.common import StdoutTarget, add_output_arguments, progress, to_jsonable

__all__ = ["register", "run"]


def _seed_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        msg = f"--seeds={text!r} is not an integer; give the number of seeds, e.g. 3"
        raise argparse.ArgumentTypeError(msg) from None
    if value < 1:
        msg = f"--seeds={value} must be >= 1 (the number of seeds to run)"
        raise argparse.ArgumentTypeError(msg)
    return value


def register(subparsers: Any) -> None:
    """Add the ``experiment`` subcommand."""
    p = subparsers.add_parser(
        "experiment", help="run an experiment of the suite over seeds and give its verdict",
        description="Run one experiment (a claim of the reference text turned into a check) "
                    "over seeds; every metric is reported as mean, sd and per-seed values, "
                    "and a verdict says in numbers whether the claim held.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the experiment (see --list)")
    p.add_argument("--list", action="store_true", help="print every experiment with one line")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="small settings, <= 3 minutes on 2 CPU cores (default)")
    mode.add_argument("--full", action="store_true",
                      help="the settings behind the documented numbers")
    p.add_argument("--seeds", type=_seed_count, default=3, metavar="K",
                   help="run seeds 0 .. K-1 (default 3)")
    p.add_argument("--device", default="auto",
                   help="'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:N'")
    p.add_argument("--task", action="append", metavar="TASK",
                   help="experiments with tasks (pde-benchmark): run only TASK (repeatable)")
    p.add_argument("--model", action="append", metavar="MODEL",
                   help="experiments with a model list (pde-benchmark): train only MODEL "
                        "(repeatable)")
    add_output_arguments(p, out_help="folder for the figure (NAME.png) and report (NAME.md)")
    p.set_defaults(func=run)


def _checked_paths(args: argparse.Namespace) -> None:
    """Refuse output places that cannot be written, before any training."""
    from gridformer.experiments.harness import check_output_folder

    if args.out is not None:
        check_output_folder(args.out, "--out")
    if args.json is not None and not isinstance(args.json, StdoutTarget):
        if args.json.is_dir():
            msg = f"--json={str(args.json)!r} is a folder; give a file path (or - for stdout)"
            raise ValueError(msg)
        check_output_folder(args.json.parent, "--json folder")


def _summary(result: Any) -> list[str]:
    from gridformer.experiments.report import format_summary

    width = max(len(k) for k in result.metrics)
    lines = [f"experiment {result.experiment.name} (--{result.mode}, seeds {result.seeds}, "
             f"{result.device}): {result.seconds:.1f} s"]
    lines += [f"  {k:<{width}}  {format_summary(v)}" for k, v in result.metrics.items()]
    lines.append(f"verdict ({result.verdict.outcome}): {result.verdict.text}")
    return lines


def run(args: argparse.Namespace) -> int:
    """List the experiments, or run one and report it."""
    from gridformer.experiments import get_experiment, list_experiments, run_experiment
    from gridformer.experiments.harness import check_device
    from gridformer.experiments.registry import EXPERIMENTS

    if args.list:
        entries = list_experiments()
        width = max(len(name) for name, _ in entries)
        print("\n".join(f"{name:<{width}}  {text}" for name, text in entries))
        return 0
    if args.name is None:
        msg = f"give an experiment NAME or --list; valid: {', '.join(EXPERIMENTS)}"
        raise ValueError(msg)
    experiment = get_experiment(args.name)
    overrides = {}
    for flag, key in (("task", "tasks"), ("model", "models")):
        chosen = getattr(args, flag, None)
        if chosen:
            if key not in experiment.quick:
                msg = f"--{flag} is not a setting of experiment {args.name!r}"
                raise ValueError(msg)
            overrides[key] = list(chosen)
    check_device(args.device)
    _checked_paths(args)
    if overrides and hasattr(experiment.run, "__module__"):
        import importlib

        check = getattr(importlib.import_module(experiment.run.__module__), "check_settings",
                        None)
        if check is not None:  # unknown tasks/models are named before any training
            check({**experiment.quick, **overrides})

    # with --json -, main already sends print() to stderr; the record goes to args.json.stream
    result = run_experiment(experiment, mode="full" if args.full else "quick",
                            seeds=args.seeds, device=args.device, progress=progress,
                            overrides=overrides or None)
    print("\n".join(_summary(result)))
    if args.out is not None:
        from gridformer.experiments.report import write_report

        paths = write_report(result, args.out)
        print(f"written to {Path(args.out).resolve()}/: {', '.join(p.name for p in paths)}")
    if args.json is not None:
        record = to_jsonable(result.record())
        if isinstance(args.json, StdoutTarget):
            args.json.stream.write(json.dumps(record, indent=2) + "\n")
            args.json.stream.flush()
        else:
            from gridformer._io import write_json

            write_json(record, args.json)
    return 0
