"""Read the variables of a teleconnection run from NetCDF and check them before any training.

Every file is opened with :func:`gridformer.datasets.open_dataset` (canonical ``time``, ``lat``
ascending, ``lon`` in one run). A variable held by several files (one file per year, say) is
combined from those files; different variables may come from different files. Then the checks
that should fail in seconds rather than after training: unknown variables (listing those the
files have), dims that are not ``(time, lat, lon)`` / ``(time,)``, inputs on different grids,
inputs and target on different time axes (saying how they differ; with ``align_time`` only the
common steps are kept) and variables that are NaN everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from gridformer.datasets import open_dataset

__all__ = ["Loaded", "describe_time", "load_variables"]

SPATIAL = ("lat", "lon")


@dataclass(frozen=True)
class Loaded:
    """The checked variables of a run, in memory.

    Attributes
    ----------
    inputs
        ``(time, lat, lon)`` predictor variables, one shared grid and time axis.
    target
        ``(time,)`` (kind ``"index"``) or ``(time, lat, lon)`` on the inputs' grid (``"field"``).
    kind
        ``"index"`` or ``"field"``.
    files
        The files read.
    aligned
        How many time steps ``align_time`` dropped (0 when the axes agreed).
    """

    inputs: xr.Dataset
    target: xr.DataArray
    kind: str
    files: tuple[str, ...]
    aligned: int = 0


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(p.name for p in paths)


def _open_all(paths: Sequence[Path]) -> dict[Path, xr.Dataset]:
    return {path: open_dataset(path) for path in paths}


def _variable(name: str, role: str, opened: dict[Path, xr.Dataset]) -> xr.DataArray:
    """``name`` from the files that hold it (combined along time when several do)."""
    holders = [path for path, ds in opened.items() if name in ds.data_vars]
    if not holders:
        have = sorted({str(v) for ds in opened.values() for v in ds.data_vars})
        msg = (f"{role} variable {name!r} is not in {_names(list(opened))}; the data variables "
               f"are {have}")
        raise ValueError(msg)
    if len(holders) == 1:
        return opened[holders[0]][name]
    try:
        return open_dataset(holders, variables=[name])[name]
    except ValueError as err:
        msg = (f"{role} variable {name!r} is in several files ({_names(holders)}) that do not "
               f"combine into one time series on one grid: {err}")
        raise ValueError(msg) from err


def _squeeze(da: xr.DataArray, role: str, allowed: tuple[tuple[str, ...], ...]) -> xr.DataArray:
    """Drop size-1 extra dims; refuse dims that are neither allowed nor of size 1."""
    extra = {str(d): int(n) for d, n in da.sizes.items() if d not in ("time", *SPATIAL)}
    big = {d: n for d, n in extra.items() if n > 1}
    if big:
        msg = (f"{role} variable {da.name!r} has the extra dims {big}; select one entry first "
               f"(e.g. ds.sel(level=500) in xarray, or `cdo sellevel`)")
        raise ValueError(msg)
    da = da.squeeze(list(extra), drop=True)
    if tuple(sorted(map(str, da.dims))) not in {tuple(sorted(a)) for a in allowed}:
        shapes = " or ".join(str(a) for a in allowed)
        msg = f"{role} variable {da.name!r} has dims {tuple(map(str, da.dims))}; expected {shapes}"
        raise ValueError(msg)
    return da.transpose(*[d for d in ("time", *SPATIAL) if d in da.dims])


def _time_text(value: object) -> str:
    if isinstance(value, np.datetime64):
        text = np.datetime_as_string(value, unit="s")
        return text.removesuffix("T00:00:00")
    text = str(value)
    return text.removesuffix(" 00:00:00")


def describe_time(da: xr.DataArray) -> str:
    """``"480 steps, 2001-01-01 .. 2040-12-01"`` for the time axis of ``da``."""
    values = da["time"].values
    if values.size == 0:
        return "0 steps"
    return f"{values.size} steps, {_time_text(values[0])} .. {_time_text(values[-1])}"


def _check_grid(first: xr.DataArray, other: xr.DataArray) -> None:
    for dim in SPATIAL:
        a, b = first[dim].values, other[dim].values
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-6):
            msg = (f"{other.name!r} and {first.name!r} lie on different grids: {dim} has "
                   f"{b.size} values {b.min():g} .. {b.max():g} in {other.name!r} and {a.size} "
                   f"values {a.min():g} .. {a.max():g} in {first.name!r}; regrid them to one "
                   f"grid first (e.g. `cdo remapbil`)")
            raise ValueError(msg)


def _align(arrays: list[xr.DataArray], target: xr.DataArray, align_time: bool
           ) -> tuple[list[xr.DataArray], xr.DataArray, int]:
    """Check that every variable has the target's time axis; intersect when asked."""
    times = [da["time"].values for da in (*arrays, target)]
    if all(t.shape == times[-1].shape and np.array_equal(t, times[-1]) for t in times):
        return arrays, target, 0
    common = times[0]
    for t in times[1:]:
        common = np.intersect1d(common, t)
    different = next(da for da, t in zip(arrays, times, strict=False)
                     if not (t.shape == times[-1].shape and np.array_equal(t, times[-1])))
    if not align_time or common.size == 0:
        advice = ("there is no common time step to align on" if common.size == 0 else
                  "pass --align-time (align_time=True) to use only the common steps")
        msg = (f"input {different.name!r} and target {target.name!r} are on different time "
               f"axes: input {describe_time(different)}; target {describe_time(target)}; "
               f"{common.size} steps in common; {advice}")
        raise ValueError(msg)
    dropped = max(t.size for t in times) - common.size
    pick = {"time": common}
    return [da.sel(pick) for da in arrays], target.sel(pick), dropped


def _check_values(da: xr.DataArray, role: str) -> None:
    if not bool(da.notnull().any()):
        msg = (f"{role} variable {da.name!r} is NaN at every time step and grid cell "
               f"({describe_time(da)}); check its _FillValue / missing_value or pick another "
               f"variable")
        raise ValueError(msg)


def load_variables(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    inputs: Sequence[str],
    target: str,
    *,
    align_time: bool = False,
) -> Loaded:
    """Open ``paths``, pick ``inputs`` and ``target``, check them and load them into memory.

    Parameters
    ----------
    paths
        One NetCDF file or several (the variables may be spread over them).
    inputs
        Predictor variable names, each ``(time, lat, lon)`` (size-1 extra dims are dropped).
    target
        The variable to predict: ``(time,)`` or ``(time, lat, lon)`` on the inputs' grid.
    align_time
        Keep only the time steps that all variables share, instead of refusing different axes.

    Returns
    -------
    Loaded
    """
    paths = [Path(p) for p in ([paths] if isinstance(paths, str | os.PathLike) else paths)]
    opened = _open_all(paths)
    arrays = [
        _squeeze(_variable(name, "input", opened), "input", (("time", *SPATIAL),))
        for name in inputs
    ]
    goal = _squeeze(_variable(target, "target", opened), "target",
                    (("time",), ("time", *SPATIAL)))
    for other in arrays[1:]:
        _check_grid(arrays[0], other)
    kind = "field" if "lat" in goal.dims else "index"
    if kind == "field":
        _check_grid(arrays[0], goal)
    arrays, goal, dropped = _align(arrays, goal, align_time)
    arrays = [da.load() for da in arrays]
    goal = goal.load()
    for da in arrays:
        _check_values(da, "input")
    _check_values(goal, "target")
    data = xr.Dataset({str(da.name): da.drop_vars([c for c in da.coords if c not in da.dims])
                       for da in arrays})
    goal = goal.drop_vars([c for c in goal.coords if c not in goal.dims])
    if kind == "field":  # identical grids (checked): share the inputs' coordinates exactly
        goal = goal.assign_coords({dim: data[dim] for dim in SPATIAL})
    return Loaded(data, goal, kind, tuple(str(p) for p in paths), dropped)
