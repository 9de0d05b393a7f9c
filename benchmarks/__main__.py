"""``python -m benchmarks``: run the benchmark modules, print a ratio table, write JSON.

Usage::

    python -m benchmarks [--json PATH] [--quick] [--only NAME ...] [--device cpu|cuda]
                         [--cpu-time]

Each module in :data:`benchmarks.MODULES` exposes ``run(*, quick=False) -> dict`` (see
``benchmarks/_common.py``); a module that cannot be imported (for example because its peer
package is missing) is reported as ``"skipped: <why>"`` and the others still run. Numbers are
only comparable on a quiet machine: the load average is recorded before and after each module.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time
from typing import Any

from benchmarks import MODULES, _common
from benchmarks._common import environment, load_average


def _run_module(name: str, quick: bool, device: str) -> dict[str, Any]:
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ImportError as error:
        return {"name": name, "skipped": f"cannot import benchmarks.{name}: {error}"}
    except SystemExit as error:  # a module's own "cannot import ..." exit (bench_data)
        return {"name": name, "skipped": f"cannot import benchmarks.{name}: {error}"}
    kwargs: dict[str, Any] = {"quick": quick}
    if "device" in inspect.signature(module.run).parameters:
        kwargs["device"] = device
    elif device != "cpu":
        return {"name": name, "skipped": f"benchmarks.{name} runs on the CPU only"}
    before = load_average()
    start = time.perf_counter()
    try:
        report = module.run(**kwargs)
    except ModuleNotFoundError as error:  # a peer (xbatcher, netCDF4, ...) imported in run()
        return {"name": name, "skipped": f"benchmarks.{name} needs {error.name!r}, which is "
                f"not installed (pip install -e '.[bench]'): {error}"}
    report["seconds"] = round(time.perf_counter() - start, 2)
    report["load_average_before"], report["load_average_after"] = before, load_average()
    return report


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table(reports: list[dict[str, Any]]) -> str:
    """A plain-text table of every case: value, peer value, ratio, target, met, units, case.

    The case comes last and whole (several cases share a long prefix).
    """
    lines = [f"{'gridformer':>11} {'peer':>11} {'ratio':>7} {'target':>7} {'met':>4} "
             f"{'units':<12} benchmark: case"]
    for report in reports:
        if "skipped" in report:
            lines.append(f"{'skipped':>11} {'':>11} {'':>7} {'':>7} {'':>4} {'':<12} "
                         f"{report['name']}: {report['skipped']}")
            continue
        for r in report["results"]:
            case = f"{report['name']}: {r['case']}"
            if r.get("skipped"):
                lines.append(f"{'skipped':>11} {'':>11} {'':>7} {'':>7} {'':>4} {'':<12} "
                             f"{case} ({r['skipped']})")
                continue
            lines.append(f"{_fmt(r['gridformer']):>11} {_fmt(r['peer_value']):>11} "
                         f"{_fmt(r['ratio']):>7} {_fmt(r['target']):>7} {_fmt(r['met']):>4} "
                         f"{r['units'] or '':<12} {case}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="write the full report ('-' = stdout)")
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke check)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=MODULES,
                        help=f"run these modules only (of {', '.join(MODULES)})")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where the solver and training cases run (default cpu)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time CPU seconds of this process instead of wall seconds (for a "
                        "shared machine; use with NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1)")
    args = parser.parse_args(argv)
    clock = _common.CLOCK
    _common.CLOCK = time.process_time if args.cpu_time else time.perf_counter
    try:
        return _run_all(args)
    finally:
        _common.CLOCK = clock


def _run_all(args: argparse.Namespace) -> int:
    env = environment()
    env["clock"] = "process_time (CPU seconds)" if args.cpu_time else "perf_counter (wall)"
    report: dict[str, Any] = {"environment": env, "quick": args.quick, "device": args.device,
                              "complete": False, "benchmarks": []}
    progress = sys.stderr if args.json == "-" else sys.stdout
    for name in args.only or MODULES:
        report["benchmarks"].append(_run_module(name, args.quick, args.device))
        # each module's rows as it finishes, and the report so far: a run stopped by a time
        # limit keeps what it measured
        print(table(report["benchmarks"][-1:]).split("\n", 1)[1], file=progress, flush=True)
        _write(args.json, report)
    env["load_average_1_5_15_after"] = load_average()
    try:
        import numba

        env["threads"]["numba_threading_layer"] = numba.threading_layer()
    except ValueError:  # no parallel numba code ran
        pass
    report["complete"] = True
    print(table(report["benchmarks"]), file=progress)
    _common.write_json(report, args.json)
    return 0


def _write(path: str | None, report: dict[str, Any]) -> None:
    """Rewrite the report file after each module (never to stdout mid-run)."""
    if path != "-":
        _common.write_json(report, path)


if __name__ == "__main__":
    sys.exit(main())
