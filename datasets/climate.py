"""Climate helpers: climatologies and anomalies, standardisation, area weights, time splits.

All work on xarray objects by dim name and are cftime safe (``noleap``, ``360_day`` calendars).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import dask
import numpy as np
import xarray as xr

__all__ = [
    "Standardizer",
    "anomalies",
    "climatology",
    "lat_weights",
    "split_by_time",
]

X = TypeVar("X", xr.DataArray, xr.Dataset)
_FREQS = {"month": "month", "dayofyear": "dayofyear"}


def _check_time(obj: xr.DataArray | xr.Dataset, time_dim: str) -> None:
    if time_dim not in obj.dims:
        msg = f"time_dim={time_dim!r} is not a dim of the data; dims are {tuple(obj.dims)}"
        raise ValueError(msg)


def climatology(obj: X, *, freq: str = "month", time_dim: str = "time") -> X:
    """Mean seasonal cycle: the mean over years for each month or day of year.

    Parameters
    ----------
    obj
        Data with a datetime or cftime ``time_dim``.
    freq
        ``"month"`` (dim ``month``, 1..12) or ``"dayofyear"`` (dim ``dayofyear``; 1..360 on a
        360_day calendar, 1..365 on noleap).
    time_dim
        Name of the time dim.

    Returns
    -------
    Same type as ``obj``, with ``time_dim`` replaced by ``freq``; NaNs are skipped.
    """
    _check_time(obj, time_dim)
    if freq not in _FREQS:
        msg = f"freq={freq!r} is not one of {sorted(_FREQS)}"
        raise ValueError(msg)
    return obj.groupby(f"{time_dim}.{freq}").mean(time_dim, skipna=True, keep_attrs=True)


def anomalies(obj: X, *, freq: str = "month", clim: X | None = None, time_dim: str = "time") -> X:
    """Departures from a climatology: ``obj - clim`` matched by month or day of year.

    Parameters
    ----------
    obj
        Data with a datetime or cftime ``time_dim``.
    freq
        ``"month"`` or ``"dayofyear"``.
    clim
        Climatology to subtract (e.g. from the training period, to avoid leakage); computed
        from ``obj`` with :func:`climatology` when None.
    time_dim
        Name of the time dim.

    Returns
    -------
    Same type and shape as ``obj``; attrs kept, ``anomaly_of`` attr set to ``freq``.
    """
    if clim is None:
        clim = climatology(obj, freq=freq, time_dim=time_dim)
    if freq not in clim.dims:
        msg = f"clim has dims {tuple(clim.dims)}, expected a {freq!r} dim (freq={freq!r})"
        raise ValueError(msg)
    out = obj.groupby(f"{time_dim}.{freq}") - clim
    out = out.drop_vars(freq, errors="ignore")
    out.attrs = {**obj.attrs, "anomaly_of": f"{freq} climatology"}
    return out


@dataclass(frozen=True)
class Standardizer:
    """Stored mean and standard deviation: ``z = (x - mean) / std`` and back.

    Build with :meth:`fit`, apply to new data with :meth:`transform`, undo with
    :meth:`inverse_transform`; keep with :meth:`save` / :meth:`load` (NetCDF).

    Attributes
    ----------
    mean, std : xr.Dataset
        Statistics, reduced over the fitted dims (variables as in the fitted data).
    """

    mean: xr.Dataset
    std: xr.Dataset

    @classmethod
    def fit(
        cls, obj: xr.DataArray | xr.Dataset, dims: str | Sequence[str] = ("time",)
    ) -> Standardizer:
        """Compute mean and std over ``dims`` (NaNs skipped; a zero std is stored as 1)."""
        ds = obj.to_dataset(name=obj.name or "data") if isinstance(obj, xr.DataArray) else obj
        dims = [dims] if isinstance(dims, str) else list(dims)
        unknown = [d for d in dims if d not in ds.dims]
        if unknown:
            msg = f"dims {unknown} are not dims of the data; dims are {tuple(ds.dims)}"
            raise ValueError(msg)
        # one pass over lazy (dask) data for both statistics, on the active dask scheduler
        mean, std = dask.compute(ds.mean(dims, skipna=True), ds.std(dims, skipna=True))
        std = std.where(std > 0, 1.0)
        return cls(mean=mean, std=std)

    def _apply(self, obj: X, fn) -> X:
        if isinstance(obj, xr.DataArray):
            name = obj.name or "data"
            if name not in self.mean:
                msg = (
                    f"no statistics for {name!r}; fitted variables are {list(self.mean.data_vars)}"
                )
                raise ValueError(msg)
            out = fn(obj, self.mean[name], self.std[name])
        else:
            missing = [v for v in obj.data_vars if v not in self.mean]
            if missing:
                msg = (
                    f"no statistics for {missing}; fitted variables are {list(self.mean.data_vars)}"
                )
                raise ValueError(msg)
            out = fn(obj, self.mean[list(obj.data_vars)], self.std[list(obj.data_vars)])
        out.attrs = dict(obj.attrs)
        return out

    def transform(self, obj: X) -> X:
        """``(obj - mean) / std`` with the stored statistics."""
        return self._apply(obj, lambda x, m, s: (x - m) / s)

    def inverse_transform(self, obj: X) -> X:
        """``obj * std + mean``: undo :meth:`transform`."""
        return self._apply(obj, lambda x, m, s: x * s + m)

    def save(self, path: str | Path) -> Path:
        """Write the statistics to one NetCDF file (variables ``mean_<name>``, ``std_<name>``)."""
        from gridformer.datasets.io import write_netcdf

        ds = xr.merge(
            [
                self.mean.rename({v: f"mean_{v}" for v in self.mean.data_vars}),
                self.std.rename({v: f"std_{v}" for v in self.std.data_vars}),
            ]
        )
        return write_netcdf(ds, path)

    @classmethod
    def load(cls, path: str | Path) -> Standardizer:
        """Read statistics written by :meth:`save`."""
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
        mean = ds[[v for v in ds.data_vars if v.startswith("mean_")]]
        std = ds[[v for v in ds.data_vars if v.startswith("std_")]]
        mean = mean.rename({v: v.removeprefix("mean_") for v in mean.data_vars})
        std = std.rename({v: v.removeprefix("std_") for v in std.data_vars})
        mean.attrs, std.attrs = {}, {}
        return cls(mean=mean, std=std)


def lat_weights(
    lat: xr.DataArray | xr.Dataset | np.ndarray, *, normalize: bool = True
) -> xr.DataArray:
    """Area weights ``cos(latitude)`` computed from the latitude values (never from row numbers).

    Parameters
    ----------
    lat
        Latitudes in degrees: a 1-D array or DataArray, or data with a ``lat`` coordinate.
    normalize
        Scale the weights to mean 1 (so a weighted mean of a constant is that constant).

    Returns
    -------
    xr.DataArray
        ``(lat,)`` float64 weights with the ``lat`` coordinate.
    """
    if isinstance(lat, xr.Dataset | xr.DataArray) and "lat" in lat.coords:
        values = np.asarray(lat.coords["lat"].values, dtype=np.float64)
    else:
        values = np.asarray(lat, dtype=np.float64)
    if values.ndim != 1:
        msg = f"latitudes must be 1-D, got shape {values.shape}"
        raise ValueError(msg)
    if np.any(np.abs(values) > 90.0):
        msg = f"latitudes must lie in [-90, 90] degrees; got range [{values.min()}, {values.max()}]"
        raise ValueError(msg)
    w = np.clip(np.cos(np.deg2rad(values)), 0.0, None)
    if normalize:
        if not w.sum() > 0:
            msg = "latitude weights are all zero (every latitude at a pole); cannot normalise"
            raise ValueError(msg)
        w = w / w.mean()
    return xr.DataArray(
        w,
        dims=("lat",),
        coords={"lat": values},
        name="lat_weights",
        attrs={"long_name": "cos(latitude) area weight", "units": "1"},
    )


def split_by_time(
    obj: X,
    *,
    train: float | tuple,
    val: float | tuple,
    test: float | tuple | None = None,
    time_dim: str = "time",
) -> dict[str, X]:
    """Split along time into contiguous, non-overlapping ``train``/``val``/``test`` parts.

    Each part is either a fraction of the time steps (taken in order: train, val, test) or a
    ``(start, stop)`` pair of time labels (inclusive, e.g. ``("1980", "1999")``).

    Returns
    -------
    dict
        ``{"train": ..., "val": ..., ["test": ...]}``.
    """
    _check_time(obj, time_dim)
    parts = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    n = obj.sizes[time_dim]
    fractions = [v for v in parts.values() if not isinstance(v, tuple)]
    if fractions and len(fractions) != len(parts):
        msg = "give every part as a fraction or every part as a (start, stop) pair, not a mix"
        raise ValueError(msg)
    if fractions:
        if any(f <= 0 for f in fractions) or sum(fractions) > 1.0 + 1e-9:
            msg = f"split fractions {parts} must be positive and sum to at most 1"
            raise ValueError(msg)
        edges = np.floor(np.cumsum([0.0, *fractions]) * n + 1e-9).astype(int)
        out = {
            k: obj.isel({time_dim: slice(a, b)})
            for k, a, b in zip(parts, edges[:-1], edges[1:], strict=True)
        }
    else:
        out = {k: obj.sel({time_dim: slice(*v)}) for k, v in parts.items()}
        index = {k: np.asarray(v.indexes[time_dim].map(str)) for k, v in out.items()}
        names = list(out)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if np.intersect1d(index[a], index[b]).size:
                    msg = f"time splits {a!r} {parts[a]} and {b!r} {parts[b]} overlap"
                    raise ValueError(msg)
    empty = [k for k, v in out.items() if v.sizes[time_dim] == 0]
    if empty:
        msg = f"time split(s) {empty} are empty ({n} time steps in total)"
        raise ValueError(msg)
    return out
