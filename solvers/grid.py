"""Checking ``u0`` and turning it into the ``(S, Y, X)`` float64 array the integrators step.

Accepted layouts: an ``xr.DataArray`` with dims ``("x",)``, ``("y", "x")``, optionally with a
leading ``"sample"`` dim (spacing read from uniform coordinates), or a plain ndarray of 1, 2 or
3 dims, read as ``(x)``, ``(y, x)`` or ``(sample, y, x)``, with ``spacing=``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from gridformer._checks import check_monotonic

__all__ = ["Grid", "as_grid", "normalize_spacing"]

LAYOUTS = (("x",), ("y", "x"), ("sample", "x"), ("sample", "y", "x"))
_UNIFORM_RTOL = 1e-6


@dataclass
class Grid:
    """A checked initial state.

    Attributes
    ----------
    data
        ``(S, Y, X)`` float64 (``Y = 1`` in 1-D, ``S = 1`` without a sample dim).
    spatial_dims
        ``("x",)`` or ``("y", "x")``.
    spacing
        Grid spacing per spatial dim, same order, in length units.
    has_sample
        Whether ``u0`` had a ``"sample"`` dim.
    coords
        Coordinate arrays for the output, by dim name.
    """

    data: np.ndarray
    spatial_dims: tuple[str, ...]
    spacing: tuple[float, ...]
    has_sample: bool
    coords: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def dims(self) -> tuple[str, ...]:
        return (("sample",) if self.has_sample else ()) + self.spatial_dims

    def unpack(self, array3: np.ndarray) -> np.ndarray:
        """``(..., S, Y, X)`` -> ``(..., [S,] [Y,] X)`` matching :attr:`dims`."""
        lead = array3.shape[:-3]
        s, y, x = array3.shape[-3:]
        two_d = len(self.spatial_dims) == 2
        shape = lead + ((s,) if self.has_sample else ()) + ((y,) if two_d else ()) + (x,)
        return array3.reshape(shape)

    def field(self, value: Any, name: str) -> np.ndarray:
        """A grid-shaped parameter (number, ndarray or DataArray) as ``(S, Y, X)`` float64."""
        if isinstance(value, xr.DataArray):
            missing = [d for d in value.dims if d not in self.dims]
            if missing:
                msg = f"{name} has dims {value.dims} not in u0's dims {self.dims}"
                raise ValueError(msg)
            value = value.transpose(*[d for d in self.dims if d in value.dims])
            value = value.expand_dims([d for d in self.dims if d not in value.dims])
            value = value.transpose(*self.dims).values
        array = np.asarray(value, dtype=np.float64)
        shape = self.unpack(self.data).shape
        try:
            array = np.broadcast_to(array, shape)
        except ValueError:
            msg = f"{name} has shape {array.shape}; it must broadcast to u0's shape {shape}"
            raise ValueError(msg) from None
        check_finite(array, name, self.dims)
        return np.ascontiguousarray(array.reshape(self.data.shape), dtype=np.float64)


def normalize_spacing(spacing: Any, ndim: int) -> tuple[float, ...]:
    """A positive number or one per spatial dim (``(dy, dx)``) as a tuple of floats."""
    values = tuple(np.atleast_1d(np.asarray(spacing, dtype=np.float64)).tolist())
    if len(values) == 1:
        values = values * ndim
    if len(values) != ndim or not all(math.isfinite(h) and h > 0 for h in values):
        msg = f"spacing={spacing!r} must be a positive number or {ndim} positive numbers (dy, dx)"
        raise ValueError(msg)
    return values


def check_finite(array: np.ndarray, name: str, dims: tuple[str, ...]) -> None:
    """ValueError naming how many entries of ``array`` are NaN/inf and where the first one is."""
    bad = ~np.isfinite(array)
    if bad.any():
        where = dict(zip(dims, (int(i) for i in np.argwhere(bad)[0]), strict=True))
        msg = (f"{name} contains {int(bad.sum())} non-finite value(s) (NaN/inf), "
               f"the first at {where}")
        raise ValueError(msg)


def as_grid(u0: Any, spacing: Any = None) -> Grid:
    """Check ``u0`` (dims, coordinates, values) and return it as a :class:`Grid`."""
    if isinstance(u0, xr.DataArray):
        return _from_dataarray(u0, spacing)
    if isinstance(u0, np.ndarray | list | tuple):
        array = np.asarray(u0)
        if array.ndim not in (1, 2, 3):
            msg = (
                f"u0 as an ndarray must have 1, 2 or 3 dims read as (x), (y, x) or (sample, y, x), "
                f"got shape {array.shape}"
            )
            raise ValueError(msg)
        if spacing is None:
            msg = (
                "u0 is a plain array: pass spacing= (a number or (dy, dx)), "
                "or give u0 as an xr.DataArray with coordinates"
            )
            raise ValueError(msg)
        dims = {1: ("x",), 2: ("y", "x"), 3: ("sample", "y", "x")}[array.ndim]
        return _from_dataarray(xr.DataArray(array, dims=dims), spacing)
    msg = f"u0 must be an xr.DataArray or a numpy array, got {type(u0).__name__}"
    raise TypeError(msg)


def _from_dataarray(u0: xr.DataArray, spacing: Any) -> Grid:
    dims = tuple(str(d) for d in u0.dims)
    if dims not in LAYOUTS:
        unnamed = [d for d in dims if d.startswith("dim_")]
        if unnamed:
            hint = (f"u0 has unnamed dims {tuple(unnamed)}; name them, "
                    "e.g. xr.DataArray(a, dims=('y', 'x'))")
        elif any(set(dims) == set(layout) for layout in LAYOUTS):
            order = next(layout for layout in LAYOUTS if set(dims) == set(layout))
            hint = f"u0 dims {dims} are in the wrong order; use u0.transpose{order}"
        else:
            hint = f"u0 dims {dims} are not supported"
        msg = f"{hint}; valid dims: {', '.join(map(str, LAYOUTS))}"
        raise ValueError(msg)
    if not np.issubdtype(u0.dtype, np.floating) and not np.issubdtype(u0.dtype, np.integer):
        msg = f"u0 must hold real numbers, got dtype {u0.dtype}"
        raise TypeError(msg)
    spatial = tuple(d for d in dims if d != "sample")
    given = None if spacing is None else normalize_spacing(spacing, len(spatial))
    steps = []
    coords: dict[str, Any] = {}
    for i, dim in enumerate(spatial):
        n = u0.sizes[dim]
        if n < 2:
            msg = f"u0 has {n} point(s) along {dim!r}; the solvers need at least 2"
            raise ValueError(msg)
        if dim in u0.coords:
            h = _uniform_step(dim, np.asarray(u0[dim].values))
            if given is not None and not math.isclose(h, given[i], rel_tol=1e-9):
                msg = (
                    f"spacing={spacing!r} disagrees with u0's {dim!r} coordinate step {h!r}; "
                    "pass one or the other"
                )
                raise ValueError(msg)
            coords[dim] = u0[dim].variable
        elif given is not None:
            h = given[i]
            coords[dim] = xr.Variable(dim, np.arange(n) * h)
        else:
            msg = f"u0 has no coordinate for {dim!r}: assign one or pass spacing="
            raise ValueError(msg)
        steps.append(h)
    if "sample" in dims and "sample" in u0.coords:
        coords["sample"] = u0["sample"].variable
    values = np.asarray(u0.values, dtype=np.float64)
    check_finite(values, "u0", dims)
    shape3 = (u0.sizes.get("sample", 1), u0.sizes.get("y", 1), u0.sizes["x"])
    return Grid(np.ascontiguousarray(values.reshape(shape3)), spatial, tuple(steps),
                "sample" in dims, coords, dict(u0.attrs))


def _uniform_step(dim: str, values: np.ndarray) -> float:
    check_monotonic(values, dim, increasing=True, what="u0 coordinate")
    diffs = np.diff(values.astype(np.float64))
    h = float((values[-1] - values[0]) / (len(values) - 1))
    if np.max(np.abs(diffs - h)) > _UNIFORM_RTOL * h:
        msg = (
            f"u0 coordinate {dim!r} is not uniformly spaced (steps from {diffs.min():.6g} to "
            f"{diffs.max():.6g}); the solvers need a uniform grid, e.g. interpolate with u0.interp"
        )
        raise ValueError(msg)
    return h
