"""``gridformer teleconnect``: attention maps of long-range links from your own NetCDF files.

Example::

    gridformer teleconnect data.nc --input x --target target_index --epochs 20 --seed 0 \\
        --json out.json --out results/
    gridformer teleconnect data.nc --input x --target y --query 45,300 --out results/
    gridformer teleconnect data.nc --input x --target target_index \\
        --sweep-distance-bias 4,2,1,0.5,0.25,0 --out sweep/

The work is done by :mod:`gridformer.teleconnect`; this module reads the options, prints the
summary and writes the record.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from gridformer.cli.common import (
    StdoutTarget,
    UsageError,
    add_output_arguments,
    parse_float_tuple,
    to_jsonable,
    write_result,
)

__all__ = ["DEFAULT_OUT", "register", "run"]

DEFAULT_OUT = Path("gridformer-out") / "teleconnect"


def _bias(text: str) -> float | str:
    if text == "learned":
        return text
    try:
        return float(text)
    except ValueError:
        msg = f"{text!r} is not a number or 'learned'"
        raise argparse.ArgumentTypeError(msg) from None


def register(subparsers: Any) -> None:
    """Add the ``teleconnect`` subcommand."""
    from gridformer.teleconnect import COMBINE, SEASONAL

    p = subparsers.add_parser(
        "teleconnect", help="train on NetCDF fields, map where the attention goes (lat/lon), "
                            "compare with correlation maps",
        description="Train a GridFormer to predict TARGET from the INPUT fields, turn its "
                    "attention into a lat/lon map and compare it with the correlation map. A "
                    "series target (an index) is read by a class token; a gridded target needs "
                    "--query or --query-box.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="DATA.nc",
                   help="NetCDF file(s) holding the inputs and the target")
    p.add_argument("--input", action="append", required=True, metavar="VAR", dest="inputs",
                   help="predictor variable (time, lat, lon); repeat for several")
    p.add_argument("--target", required=True, metavar="VAR",
                   help="variable to predict: (time,) index or (time, lat, lon) field")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--query", type=parse_float_tuple, metavar="LAT,LON",
                       help="query point of a gridded target (degrees)")
    where.add_argument("--query-box", type=parse_float_tuple, metavar="LAT0,LAT1,LON0,LON1",
                       help="query box of a gridded target (degrees; may cross the seam)")
    p.add_argument("--lead", type=int, default=0, metavar="STEPS",
                   help="the input at t predicts the target at t + STEPS (default 0)")
    p.add_argument("--distance-bias", type=_bias, default=0.0, metavar="B",
                   help="attention bias -B * distance / 1000 km (> 0 near, < 0 far; default 0; "
                        "'learned': one per head)")
    p.add_argument("--sweep-distance-bias", type=parse_float_tuple, metavar="B1,B2,...",
                   help="train once per bias value and report how far the model looks and "
                        "its skill")
    p.add_argument("--patch-size", type=int, default=2, metavar="P",
                   help="cells per token side (default 2)")
    p.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--align-time", action="store_true",
                   help="use only the time steps that inputs and target share")
    p.add_argument("--seasonal-cycle", choices=SEASONAL, default="auto",
                   help="climatology removed before standardising (default auto: month on "
                        "datetime axes, none otherwise)")
    p.add_argument("--combine", choices=COMBINE, default="last",
                   help="map from the last block's attention (default) or the mean over blocks")
    add_output_arguments(p, out_help="folder for teleconnection.nc, PNG maps and report.md "
                                     f"(default: {DEFAULT_OUT})")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> Any:
    from gridformer.teleconnect import TeleconnectConfig

    return TeleconnectConfig(
        inputs=tuple(args.inputs), target=args.target, query=args.query,
        query_box=args.query_box, lead=args.lead, distance_bias=args.distance_bias,
        patch_size=args.patch_size, epochs=args.epochs, seed=args.seed,
        align_time=args.align_time, seasonal_cycle=args.seasonal_cycle, combine=args.combine,
    )


def _check_out(out: Path) -> None:
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:  # refused before reading data or training
        msg = f"--out={str(out)!r} must be a folder, but {str(blocking)!r} is a file"
        raise UsageError(msg)


def run(args: argparse.Namespace) -> int:
    """Run one model (or a sweep); print the summary; write files and the JSON record."""
    from gridformer.teleconnect import (
        run_sweep,
        run_teleconnect,
        summary_lines,
        write_report,
        write_sweep_report,
    )

    started = time.perf_counter()
    out = args.out if args.out is not None else DEFAULT_OUT
    _check_out(out)
    config = _config(args)
    record_config = {**config.to_dict(), "files": [str(f) for f in args.files],
                     "sweep_distance_bias": args.sweep_distance_bias}
    if args.sweep_distance_bias is not None:
        if len(args.sweep_distance_bias) < 2:
            msg = (f"--sweep-distance-bias needs at least 2 values, got "
                   f"{list(args.sweep_distance_bias)}")
            raise UsageError(msg)
        sweep = run_sweep(args.files, config, args.sweep_distance_bias)
        record = sweep.record()
        for run_ in sweep.runs:
            print(f"distance bias {run_.distance_bias:g}: " + "; ".join(summary_lines(run_)[2:]))
        paths = write_sweep_report(sweep, out)
        metrics = {"runs": [r.metrics for r in sweep.runs]}
    else:
        result = run_teleconnect(args.files, config)
        print("\n".join(summary_lines(result)))
        paths = write_report(result, out)
        metrics, record = result.metrics, None
    print(f"wrote {', '.join(p.name for p in paths)} to {out.resolve()}/")
    _write(args.json, config=record_config, metrics=metrics, sweep=record, started=started)
    return 0


def _write(path: Any, *, config: dict, metrics: dict, sweep: dict | None, started: float
           ) -> None:
    """The standard record, plus ``"sweep"`` beside ``"metrics"`` for a sweep."""
    import json

    from gridformer._io import write_json

    record = write_result(None, command="teleconnect", config=config, metrics=metrics,
                          started=started)
    if sweep is not None:
        record["sweep"] = to_jsonable(sweep)
    if isinstance(path, StdoutTarget):
        path.stream.write(json.dumps(record, indent=2) + "\n")
        path.stream.flush()
    elif path is not None:
        write_json(record, path)
