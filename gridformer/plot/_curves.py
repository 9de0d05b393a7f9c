"""Rollout error curves: one line per model and metric against time (or step)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gridformer.plot._axes import axes_for, label, units_text

__all__ = ["rollout_curves"]


def rollout_curves(
    errors: xr.Dataset | xr.DataArray | Mapping[str, xr.Dataset | xr.DataArray],
    *,
    variables: str | Sequence[str] | None = None,
    x: str = "time",
    logy: bool = True,
    title: str | None = "rollout error",
    ax: Axes | None = None,
) -> Figure:
    """Plot error against time for one or several models.

    Parameters
    ----------
    errors
        ``analysis.rollout_errors`` / ``analysis.pdebench_metrics_per_step`` output (an
        ``xr.Dataset`` over ``time``), one such ``xr.DataArray``, or ``{label: errors}`` to
        compare models. A variable with a second dim (e.g. ``frmse`` over ``band``) gives one
        line per entry of that dim.
    variables
        Which variables to draw (default: every variable over the ``x`` dim).
    x
        The dim or coordinate along the horizontal axis: ``"time"`` (physical time, labelled
        with its units) or ``"step"``.
    logy
        Logarithmic error axis (non-positive and non-finite values are left out).
    title
        Axes title (``None`` for none).
    ax
        Axes to draw into; default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Lines labelled ``"<model>: <long name>"`` (the model part only when several are
        given), axis labels with units, and a legend.
    """
    single = isinstance(errors, xr.Dataset | xr.DataArray) or not isinstance(errors, Mapping)
    runs = {"": errors} if single else dict(errors)
    if not runs:
        msg = "errors is an empty mapping; give at least one Dataset or DataArray"
        raise ValueError(msg)
    fig, (axis,) = axes_for(ax, 1, names=["errors"])
    y_units, x_coord = set(), None
    for run, data in runs.items():
        ds = _as_dataset(data, run)
        names = _chosen(ds, variables, x, run)
        for name in names:
            for line_label, xs, ys in _lines(ds, name, x):
                text = f"{run}: {line_label}" if run else line_label
                ys = np.where(np.isfinite(ys) & ((ys > 0) | (not logy)), ys, np.nan)
                axis.plot(xs, ys, marker="." if len(xs) < 30 else None, label=text)
            y_units.add(units_text(ds[name].attrs) or "")
        x_coord = ds[x] if x in ds.variables else x_coord
    if logy:
        axis.set_yscale("log")
    axis.set_xlabel(label(x_coord, x))
    units = next(iter(y_units)) if len(y_units) == 1 else ""
    axis.set_ylabel(f"error ({units})" if units else "error")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title)
    return fig


def _as_dataset(data: Any, run: str) -> xr.Dataset:
    if isinstance(data, xr.DataArray):
        return data.to_dataset(name=data.name if data.name is not None else "error")
    if isinstance(data, xr.Dataset):
        return data
    where = f"errors[{run!r}]" if run else "errors"
    msg = f"{where} must be an xr.Dataset or xr.DataArray, not {type(data).__name__}"
    raise TypeError(msg)


def _chosen(ds: xr.Dataset, variables: Any, x: str, run: str) -> list[str]:
    x_dim = ds[x].dims[0] if x in ds.variables and ds[x].ndim == 1 else x
    if x_dim not in ds.dims:
        msg = f"x={x!r} is neither a dim nor a coordinate of the errors (dims {tuple(ds.dims)})"
        raise ValueError(msg)
    if variables is None:
        names = [str(n) for n, v in ds.data_vars.items()
                 if x_dim in v.dims and n not in (x, "step")]  # step: an index, not an error
    else:
        names = [variables] if isinstance(variables, str) else list(variables)
    where = f" of {run!r}" if run else ""
    missing = [n for n in names if n not in ds.data_vars or x_dim not in ds[n].dims]
    if missing or not names:
        msg = (f"variables {missing or names}{where} are not data variables over {x_dim!r}; "
               f"the data has {sorted(map(str, ds.data_vars))} with dims "
               f"{ {str(n): v.dims for n, v in ds.data_vars.items()} }")
        raise ValueError(msg)
    return names


def _lines(ds: xr.Dataset, name: str, x: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    var = ds[name]
    if x not in ds.variables and x not in ds.dims:
        msg = f"x={x!r} is neither a dim nor a coordinate of the errors (dims {tuple(ds.dims)})"
        raise ValueError(msg)
    xs = np.asarray(ds[x].values)
    x_dim = ds[x].dims[0]
    base = var.attrs.get("long_name", name)
    others = [d for d in var.dims if d != x_dim]
    if not others:
        return [(base, xs, np.asarray(var.values, dtype=float))]
    if len(others) > 1:
        msg = f"variable {name!r} has dims {var.dims}; at most one besides {x_dim!r} can be drawn"
        raise ValueError(msg)
    dim = others[0]
    return [(f"{name} {value}", xs,
             np.asarray(var.isel({dim: i}).transpose(x_dim).values, dtype=float))
            for i, value in enumerate(var[dim].values)]
