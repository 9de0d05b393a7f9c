"""``gridformer solve EQUATION``: run a finite-difference solver from a random smooth state.

Example::

    gridformer solve heat --grid 64,64 --steps 200 --out heat.nc --json metrics.json
    gridformer solve advection --grid 128 --velocity 1.0 --scheme lax_wendroff \
        --steps 100 --out adv.nc
    gridformer solve heat --grid 64,64 --format the_well --out well/train/   # heat.hdf5
    gridformer solve burgers --grid 256 --format pdebench --out pde/         # burgers.hdf5

The initial condition is a sum of a few random Fourier modes drawn with
``numpy.random.default_rng(seed)``; the result is written atomically in one of three formats
(``--format``):

* ``netcdf`` (default): a CF-style NetCDF file, float64 (:func:`gridformer.datasets.write_netcdf`);
  suffix ``.nc``.
* ``the_well``: The Well's HDF5 layout, float32, which ``the_well``'s ``WellDataset`` reads
  (:func:`gridformer.datasets.write_the_well`); suffix ``.hdf5`` (or ``.h5``). Give the file a
  folder of its own (e.g. ``.../data/train/``) to hand that folder to ``WellDataset(path=...)``.
* ``pdebench``: PDEBench's HDF5 layouts, float32 (:func:`gridformer.datasets.write_pdebench`),
  chosen as PDEBench's own loaders expect them: one field in 1-D as arrays (``tensor``,
  ``x-coordinate``, ``t-coordinate``; suffix ``.hdf5``, read by ``FNODatasetSingle``); 2-D or
  several fields (Gray-Scott) as one group per sample (suffix ``.h5``, ``FNODatasetMult``),
  since PDEBench reads a 2-D ``tensor`` as Darcy flow.

Without ``--out`` the file goes to ``gridformer-out/solve/EQUATION.nc`` (``the_well/`` and
``pdebench/`` below that folder for the other formats); the path is checked before the solve
starts.
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

__all__ = ["DEFAULT_OUT", "FORMATS", "allowed_suffixes", "output_path", "random_initial_state",
           "register", "run"]

DEFAULT_OUT = Path("gridformer-out") / "solve"
FORMATS = ("netcdf", "the_well", "pdebench")
_DATA_SUFFIXES = (".nc", ".h5", ".hdf5", ".hdf")  # an --out with another suffix is a folder


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
        "solve", help="run a finite-difference reference solver and write NetCDF or HDF5",
        description="Solve a PDE from a random smooth initial state (seeded) and write the "
                    "trajectory with the solver settings as CF-style NetCDF, The Well HDF5 or "
                    f"PDEBench HDF5 (to {DEFAULT_OUT}/EQUATION.nc unless --out and --format "
                    "say otherwise). "
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
    p.add_argument("--format", choices=FORMATS, default="netcdf",
                   help="netcdf: CF NetCDF, float64 (.nc; default); the_well: The Well's HDF5 "
                        "layout, float32 (.hdf5), read by the_well's WellDataset; pdebench: "
                        "PDEBench's HDF5 layout, float32, as its loaders read it (.hdf5 arrays "
                        "for one field in 1-D, else .h5 with one group per sample)")
    add_output_arguments(p, out_help="file to write (its suffix must fit --format); a path "
                                     "not ending in .nc/.hdf5/.h5 is a folder that gets "
                                     "EQUATION.nc (or .hdf5/.h5) "
                                     f"(default: {DEFAULT_OUT}/EQUATION.nc); its subfolders "
                                     "the_well/ and pdebench/ for the other formats")
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


def allowed_suffixes(fmt: str, *, n_dims: int, n_fields: int) -> tuple[str, ...]:
    """File suffixes ``fmt`` may be written with, the default first.

    PDEBench's loaders read ``.h5`` files as one group per sample (any dims, any number of
    fields) and other suffixes as arrays, where only one field in 1-D is read as a trajectory
    (a 2-D ``tensor`` is Darcy flow); so 2-D or multi-field data must go to ``.h5``.
    """
    if fmt == "netcdf":
        return (".nc",)
    if fmt == "the_well":
        return (".hdf5", ".h5")
    if fmt == "pdebench":
        return (".hdf5", ".hdf", ".h5") if n_dims == 1 and n_fields == 1 else (".h5",)
    msg = f"--format={fmt!r} is not one of {', '.join(FORMATS)}"
    raise UsageError(msg)


def output_path(out: Path | None, equation: str, fmt: str = "netcdf", *, n_dims: int = 2,
                n_fields: int = 1) -> Path:
    """The file ``solve`` writes: ``out`` if it ends in a data suffix, else
    ``out/EQUATION<suffix>`` with the format's default suffix (``out`` defaults to
    ``gridformer-out/solve``, plus ``the_well/`` or ``pdebench/`` for those formats). Refuses
    a suffix that does not fit ``fmt`` and paths that cannot be written as a file, so that a
    long solve is not thrown away at the end.
    """
    allowed = allowed_suffixes(fmt, n_dims=n_dims, n_fields=n_fields)
    folder = out if out is not None else (DEFAULT_OUT if fmt == "netcdf" else DEFAULT_OUT / fmt)
    if folder.suffix.lower() in _DATA_SUFFIXES:
        path = folder
        if path.suffix.lower() not in allowed:
            raise UsageError(_suffix_message(out, fmt, allowed, n_dims, n_fields))
    else:
        path = folder / f"{equation}{allowed[0]}"
    if path.is_dir():
        msg = (f"--out={str(out)!r} is a folder named like a file; give a "
               f"{' or '.join(allowed)} file path")
        raise UsageError(msg)
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        msg = f"--out={str(path)!r} cannot be written: {str(blocking)!r} is a file, not a folder"
        raise UsageError(msg)
    return path


def _suffix_message(out: Path | None, fmt: str, allowed: tuple[str, ...], n_dims: int,
                    n_fields: int) -> str:
    text = f"--out={str(out)!r} does not fit --format={fmt}: "
    if fmt == "pdebench" and allowed == (".h5",):
        what = "several fields" if n_fields > 1 else f"{n_dims}-D data"
        return (text + f"PDEBench's loaders read a .hdf5 file's arrays as one 1-D field (a 2-D "
                f"'tensor' as Darcy flow); {what} go in a .h5 file, one group per sample")
    hint = "" if fmt != "netcdf" else " (choose --format the_well or pdebench for HDF5)"
    return text + f"--format={fmt} writes {' or '.join(allowed)} files{hint}"


def _write(ds: xr.Dataset, path: Path, fmt: str) -> dict[str, Any]:
    """Write ``ds`` as ``fmt``; returns what the JSON record says about the file."""
    from gridformer.datasets import write_netcdf, write_pdebench, write_the_well

    if fmt == "the_well":
        write_the_well(ds, path)
        return {"format": fmt}
    if fmt == "pdebench":
        write_pdebench(ds, path)
        return {"format": fmt, "layout": "samples" if path.suffix.lower() == ".h5" else "arrays"}
    write_netcdf(ds, path)
    return {"format": fmt}


def run(args: argparse.Namespace) -> int:
    """Solve, write the NetCDF and the JSON record; returns the exit code."""
    from gridformer.solvers import EQUATIONS, solve

    started = time.perf_counter()
    if len(args.grid) not in (1, 2) or min(args.grid) < 2:
        msg = f"--grid={','.join(map(str, args.grid))} must be X or Y,X with at least 2 points each"
        raise UsageError(msg)
    if args.samples < 1:
        msg = f"--samples={args.samples} must be at least 1"
        raise UsageError(msg)
    path = output_path(args.out, args.equation, args.format, n_dims=len(args.grid),
                       n_fields=2 if args.equation == "gray_scott" else 1)
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
    metrics.update(_write(ds, path, args.format), path=str(path))
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
