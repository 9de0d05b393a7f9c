"""``gridformer solve EQUATION``: run a finite-difference solver from a random smooth state.

Example::

    gridformer solve heat --grid 64,64 --steps 200 --out heat.nc --json metrics.json
    gridformer solve advection --grid 128 --velocity 1.0 --scheme lax_wendroff \
        --steps 100 --out adv.nc

The initial condition is a sum of a few random Fourier modes drawn with
``numpy.random.default_rng(seed)``; the result is written as a CF-style NetCDF file atomically
(with :func:`gridformer.datasets.write_netcdf`). Without ``--out`` it goes to
``gridformer-out/solve/EQUATION.nc``; the path is checked before the solve starts.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from gridformer import __version__
from gridformer.cli.common import (
    UsageError,
    add_output_arguments,
    parse_float_tuple,
    parse_int_tuple,
    progress,
    write_result,
)

__all__ = ["DEFAULT_OUT", "output_path", "random_initial_state", "register", "run"]

DEFAULT_OUT = Path("gridformer-out") / "solve"


_PARAM_HELP = {
    "diffusivity": "heat, fisher_kpp, allen_cahn: D or D_y,D_x (length^2/time)",
    "velocity": "advection: v or v_y,v_x (length/time)",
    "viscosity": "burgers: nu (length^2/time)",
    "speed": "wave: c (length/time)",
    "rate": "fisher_kpp, allen_cahn: reaction rate r (1/time)",
    "feed": "gray_scott: feed rate F (1/time)",
    "kill": "gray_scott: kill rate k (1/time)",
    "diffusivity_u": "gray_scott: D_u (length^2/time)",
    "diffusivity_v": "gray_scott: D_v (length^2/time)",
}


def register(subparsers: Any) -> None:
    """Add the ``solve`` subcommand."""
    from gridformer.solvers import EQUATIONS

    p = subparsers.add_parser(
        "solve", help="run a finite-difference reference solver and write NetCDF",
        description="Solve a PDE from a random smooth initial state (seeded) and write a "
                    "CF-style NetCDF file with the trajectory and the solver settings "
                    f"(to {DEFAULT_OUT}/EQUATION.nc unless --out says otherwise). "
                    "Equation parameters not given default to: " + "; ".join(
                        f"{eq} " + ", ".join(f"{k}={v:g}" for k, v in cls.example_params().items())
                        for eq, cls in EQUATIONS.items()) + ".",
    )
    p.add_argument("equation", choices=list(EQUATIONS), help="equation to solve")
    p.add_argument("--grid", type=parse_int_tuple, default=(64, 64), metavar="Y,X",
                   help="grid points: X (1-D) or Y,X (2-D); default 64,64")
    p.add_argument("--steps", type=int, default=100, help="time steps (default 100)")
    p.add_argument("--dt", type=float, default=None, help="time step (default: 0.9 x stable limit)")
    p.add_argument("--spacing", type=parse_float_tuple, default=(1.0,), metavar="DY,DX",
                   help="grid spacing, one number or DY,DX (default 1.0)")
    p.add_argument("--bc", choices=["periodic", "dirichlet", "neumann"], default="periodic")
    p.add_argument("--save-every", type=int, default=1, help="keep every N-th step (default 1)")
    p.add_argument("--samples", type=int, default=1, help="independent initial states (batch)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the initial state")
    p.add_argument("--device", default="cpu",
                   help="cpu (numba), auto, cuda, cuda:N, torch-cpu, numpy (default cpu)")
    p.add_argument("--scheme", default=None, help="scheme name (equation-specific)")
    for name, text in _PARAM_HELP.items():
        tuple_valued = name in {"diffusivity", "velocity"}
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, help=text,
                       type=parse_float_tuple if tuple_valued else float,
                       metavar={"diffusivity": "D|DY,DX", "velocity": "V|VY,VX"}.get(name, "VALUE"))
    add_output_arguments(p, out_help="NetCDF file to write; a path not ending in .nc is a folder "
                                     f"that gets EQUATION.nc (default: {DEFAULT_OUT}/EQUATION.nc)")
    p.set_defaults(func=run)


def random_initial_state(equation: str, grid: tuple[int, ...], spacing: tuple[float, ...],
                         samples: int, seed: int, *, modes: int = 4) -> xr.Dataset:
    """A smooth random state: a few low Fourier modes, scaled to the equation's natural range.

    The field is :func:`gridformer.datasets.random_field` with the ``"smooth"`` spectrum, zero
    mean and ``max |u| = 1`` (``modes`` is kept for compatibility and unused). Returns a Dataset
    with ``u`` (and ``v`` for Gray-Scott), dims ``("sample", [y,] x)``, coordinates in length
    units starting at 0.
    """
    from gridformer.datasets import random_field

    dims = ("y", "x") if len(grid) == 2 else ("x",)
    spacing = spacing * len(grid) if len(spacing) == 1 else spacing
    field = random_field(tuple(grid), spectrum="smooth", amplitude=1.0, n_samples=samples,
                         seed=seed).values  # (S, [Y,] X)
    coords = {d: (d, np.arange(n) * h, {"units": "1", "long_name": f"{d} coordinate"})
              for d, n, h in zip(dims, grid, spacing, strict=True)}
    coords["sample"] = ("sample", np.arange(samples), {"long_name": "sample index"})
    variables = {"u": field}
    if equation == "fisher_kpp":
        variables = {"u": 0.5 * (1.0 + field)}
    elif equation == "gray_scott":
        bump = np.clip(field, 0.0, None)
        variables = {"u": 1.0 - 0.5 * bump, "v": 0.25 * bump}
    return xr.Dataset({k: (("sample", *dims), v) for k, v in variables.items()}, coords=coords)


def output_path(out: Path | None, equation: str) -> Path:
    """The NetCDF file ``solve`` writes: ``out`` if it ends in ``.nc``, else ``out/EQUATION.nc``
    (``out`` defaults to ``gridformer-out/solve``). Refuses paths that cannot be written as a
    file, so that a long solve is not thrown away at the end.
    """
    folder = DEFAULT_OUT if out is None else out
    path = folder if folder.suffix == ".nc" else folder / f"{equation}.nc"
    if path.is_dir():
        msg = f"--out={str(out)!r} is a folder named like a file; give a .nc file path"
        raise UsageError(msg)
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        msg = f"--out={str(path)!r} cannot be written: {str(blocking)!r} is a file, not a folder"
        raise UsageError(msg)
    return path


def run(args: argparse.Namespace) -> int:
    """Solve, write the NetCDF and the JSON record; returns the exit code."""
    from gridformer.datasets import write_netcdf
    from gridformer.solvers import EQUATIONS, solve

    started = time.perf_counter()
    if len(args.grid) not in (1, 2) or min(args.grid) < 2:
        msg = f"--grid={','.join(map(str, args.grid))} must be X or Y,X with at least 2 points each"
        raise UsageError(msg)
    if args.samples < 1:
        msg = f"--samples={args.samples} must be at least 1"
        raise UsageError(msg)
    path = output_path(args.out, args.equation)
    # the solver has no parameter defaults: options not given take the documented values of
    # EQUATIONS[equation].example_params() (listed in --help), recorded in the JSON config too
    for name, value in EQUATIONS[args.equation].example_params().items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    params = {name: _scalar(getattr(args, name)) for name in (*_PARAM_HELP, "scheme")
              if getattr(args, name) is not None}
    initial = random_initial_state(args.equation, tuple(args.grid), tuple(args.spacing),
                                   args.samples, args.seed)
    u0 = initial if args.equation == "gray_scott" else initial["u"]
    t0 = time.perf_counter()
    ds = solve(args.equation, u0, steps=args.steps, dt=args.dt, bc=args.bc,
               save_every=args.save_every, device=args.device, progress=progress, **params)
    seconds = time.perf_counter() - t0
    _add_cf_attrs(ds, args)
    metrics = _metrics(ds, seconds)
    write_netcdf(ds, path)
    metrics["path"] = str(path)
    # the settings that shaped the result: unset equation parameters and output paths left out
    config = {k: v for k, v in vars(args).items()
              if k not in {"func", "command", "json", "out", "debug"} and v is not None}
    write_result(args.json, command="solve", config=config, metrics=metrics, started=started)
    print(f"solved {args.equation} on {tuple(args.grid)} for {args.steps} steps "
          f"(dt={ds.attrs['dt']:.4g}, {ds.attrs['cfl_name']} {ds.attrs['cfl']:.3g}) "
          f"in {seconds:.2f} s -> {path}")
    return 0


def _scalar(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 1:
        return value[0]
    return value


def _add_cf_attrs(ds: xr.Dataset, args: argparse.Namespace) -> None:
    ds.attrs.update({
        "Conventions": "CF-1.8",
        "title": f"gridformer finite-difference solution of {args.equation}",
        "source": f"gridformer {__version__} gridformer.solvers",
        "history": f"gridformer solve {args.equation} (seed={args.seed})",
        "seed": args.seed,
    })
    for name in ds.data_vars:
        ds[name].attrs.update({"long_name": f"solution field {name}", "units": "1"})
    ds["time"].attrs.update({"long_name": "time", "units": "1", "axis": "T"})
    for dim in ("y", "x"):
        if dim in ds.coords:
            ds[dim].attrs.update({"long_name": f"{dim} coordinate", "units": "1",
                                  "axis": dim.upper()})


def _metrics(ds: xr.Dataset, seconds: float) -> dict[str, Any]:
    u = ds["u"]
    final, first = u.isel(time=-1), u.isel(time=0)
    mass0, mass1 = float(first.sum()), float(final.sum())
    scale = max(abs(mass0), float(abs(first).sum()), 1e-300)
    return {
        "final_min": float(final.min()), "final_max": float(final.max()),
        "final_mean": float(final.mean()), "mass_drift": abs(mass1 - mass0) / scale,
        "cfl": float(ds.attrs["cfl"]), "dt": float(ds.attrs["dt"]),
        "steps": int(ds.attrs["steps"]), "solve_seconds": round(seconds, 4),
        "cell_updates_per_second": float(first.size * ds.attrs["steps"] / max(seconds, 1e-9)),
    }
