"""Canonical climate grids: ``lat`` ascending, ``lon`` sorted with a periodic flag, ``time``.

Latitude and longitude are found by CF metadata first (``units``, ``standard_name``, ``axis``) and
by common names second (``lat``/``latitude``/``nav_lat``..., ``lon``/``longitude``/``nav_lon``...).
Dims named ``y``/``x`` are renamed only when their metadata says degrees north/east: projected or
PDE grids keep ``y``/``x`` (the tokenizer handles both). A time dim called ``t``, ``time_counter``,
``valid_time``... (or with ``axis="T"`` / ``standard_name="time"``) becomes ``time``.
Curvilinear (2-D lat/lon) and rotated-pole grids are refused with an error that says so: every
downstream part assumes a regular 1-D lat/lon grid.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from gridformer.tokenize.geometry import is_global_lon

__all__ = ["canonicalize"]

LAT_UNITS = {"degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"}
LON_UNITS = {"degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"}
LAT_NAMES = ("lat", "latitude", "nav_lat", "lats", "xlat", "y_lat")
LON_NAMES = ("lon", "longitude", "nav_lon", "lons", "xlong", "x_lon")
TIME_NAMES = ("time", "t", "valid_time", "time_counter", "times")
ROTATED_NAMES = {"grid_latitude", "grid_longitude"}


def _find(
    ds: xr.Dataset, units: set[str], standard_name: str, axis: str, names: tuple
) -> str | None:
    candidates = list(ds.coords) + [v for v in ds.data_vars if ds[v].ndim <= 2]
    for test in (
        lambda v: str(ds[v].attrs.get("units", "")).lower().replace(" ", "") in units,
        lambda v: ds[v].attrs.get("standard_name") == standard_name,
        lambda v: (
            ds[v].attrs.get("axis") == axis
            and v in ds.dims
            and str(ds[v].attrs.get("units", "degree")).lower().startswith("degree")
        ),
        lambda v: str(v).lower() in names,
    ):
        found = [v for v in candidates if test(v)]
        if found:
            # prefer dimension coordinates, then the first in name order
            return next((v for v in found if v in ds.dims), found[0])
    return None


def _refuse_rotated(ds: xr.Dataset) -> None:
    rotated = [v for v in ds.variables if ds[v].attrs.get("standard_name") in ROTATED_NAMES]
    mappings = [
        v
        for v in ds.variables
        if ds[v].attrs.get("grid_mapping_name") == "rotated_latitude_longitude"
    ]
    if rotated or mappings:
        msg = (
            f"rotated-pole grids are not supported (found {sorted(map(str, rotated + mappings))}); "
            f"regrid to a regular lat/lon grid first, e.g. with xESMF or `cdo remapbil`"
        )
        raise ValueError(msg)


def _as_dim(ds: xr.Dataset, name: str, new: str) -> xr.Dataset:
    var = ds[name]
    if var.ndim != 1:
        msg = (
            f"curvilinear grid: {new}itude variable {name!r} is {var.ndim}-D with dims {var.dims}; "
            f"only regular grids with 1-D lat/lon are supported. Regrid to a regular lat/lon grid "
            f"first (e.g. with xESMF or `cdo remapbil`)"
        )
        raise ValueError(msg)
    dim = var.dims[0]
    if name in ds.data_vars:
        ds = ds.set_coords(name)
    if dim != name:
        ds = ds.swap_dims({dim: name})
        if dim in ds.coords:
            ds = ds.drop_vars(dim)
    if name != new:
        if new in ds.variables:
            msg = f"cannot rename {name!r} to {new!r}: the file already has a variable {new!r}"
            raise ValueError(msg)
        ds = ds.rename({name: new})
    return ds


def _check_monotonic(values: np.ndarray, name: str) -> int:
    diff = np.diff(np.asarray(values, dtype=np.float64))
    if np.all(diff > 0):
        return 1
    if np.all(diff < 0):
        return -1
    return 0


def canonicalize(ds: xr.Dataset) -> xr.Dataset:
    """Rename lat/lon/time, make lat ascending, sort lon and flag it periodic (attr ``periodic``).

    A dataset without any latitude/longitude (e.g. PDE data on y/x) is returned unchanged.
    """
    _refuse_rotated(ds)
    lat = _find(ds, LAT_UNITS, "latitude", "Y", LAT_NAMES)
    lon = _find(ds, LON_UNITS, "longitude", "X", LON_NAMES)
    if lat is None and lon is None:
        return _canonical_time(ds)
    if lat is None or lon is None:
        msg = (
            f"found {'longitude ' + repr(lon) if lat is None else 'latitude ' + repr(lat)} but no "
            f"{'latitude' if lat is None else 'longitude'}; variables are "
            f"{sorted(map(str, ds.variables))}"
        )
        raise ValueError(msg)
    ds = _as_dim(ds, lat, "lat")
    ds = _as_dim(ds, lon, "lon")
    direction = _check_monotonic(ds["lat"].values, "lat")
    if direction == 0:
        msg = "latitude coordinate 'lat' is not monotonic; the file's grid is not regular"
        raise ValueError(msg)
    if direction < 0:
        ds = ds.isel(lat=slice(None, None, -1))
    lon_values = np.asarray(ds["lon"].values, dtype=np.float64)
    if _check_monotonic(lon_values, "lon") != 1:
        if len(np.unique(lon_values)) != lon_values.size:
            msg = "longitude coordinate 'lon' has duplicate values; the grid is not regular"
            raise ValueError(msg)
        ds = ds.sortby("lon")
        lon_values = np.asarray(ds["lon"].values, dtype=np.float64)
    if lon_values.size > 2 and np.isclose(lon_values[-1] - lon_values[0], 360.0):
        ds = ds.isel(lon=slice(None, -1))  # drop the cyclic (repeated) column
        lon_values = lon_values[:-1]
    ds["lat"].attrs.update({"units": "degrees_north", "standard_name": "latitude", "axis": "Y"})
    ds["lon"].attrs.update(
        {
            "units": "degrees_east",
            "standard_name": "longitude",
            "axis": "X",
            "periodic": int(is_global_lon(lon_values)),
        }
    )
    return _canonical_time(ds)


def _canonical_time(ds: xr.Dataset) -> xr.Dataset:
    if "time" in ds.dims:
        return ds
    for dim in ds.dims:
        attrs = ds[dim].attrs if dim in ds.variables else {}
        if (
            attrs.get("standard_name") == "time"
            or attrs.get("axis") == "T"
            or str(dim).lower() in TIME_NAMES
        ) and "time" not in ds.variables:
            return ds.rename({dim: "time"})
    return ds
