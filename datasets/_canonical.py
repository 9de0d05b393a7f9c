"""Canonical climate grids: ``lat`` ascending, ``lon`` in one eastward run, ``time``.

Latitude and longitude are found by their CF attributes first (``standard_name``, ``units``,
``_CoordinateAxisType``, as cf_xarray reads them) and by common names second
(``lat``/``latitude``/``nav_lat``..., ``lon``/``longitude``/``nav_lon``...). Dims named ``y``/``x``
are renamed only when their metadata says degrees north/east: projected or PDE grids keep
``y``/``x`` (the tokenizer handles both). A time dim called ``t``, ``time_counter``,
``valid_time``... (or with ``axis="T"`` / ``standard_name="time"``) becomes ``time``.

Longitude: a global grid is sorted by value and flagged ``periodic=1`` (its last cell neighbours
its first); a regional grid is laid out as one eastward run, also when it crosses the 0° or 180°
meridian (``[0.5, 325.5, ..., 355.5]`` becomes ``[325.5, ..., 355.5, 360.5]``), and flagged
``periodic=0``.

Refused with an error that says so, because every downstream part assumes a regular 1-D lat/lon
grid: curvilinear grids (2-D lat/lon), rotated-pole grids and unstructured meshes (UGRID, or
lat/lon sharing one node dim).
"""

from __future__ import annotations

import cf_xarray  # noqa: F401 - registers the ``.cf`` accessor
import numpy as np
import xarray as xr

from gridformer._cf import auxiliary_variables
from gridformer._checks import check_monotonic
from gridformer.tokenize.geometry import contiguous_lon, is_global_lon

__all__ = ["canonicalize"]

LAT_NAMES = ("lat", "latitude", "nav_lat", "lats", "xlat", "y_lat")
LON_NAMES = ("lon", "longitude", "nav_lon", "lons", "xlong", "x_lon")
TIME_NAMES = ("time", "t", "valid_time", "time_counter", "times")
ROTATED_NAMES = {"grid_latitude", "grid_longitude"}
REGRID_HINT = "Regrid to a regular lat/lon grid first (e.g. with xESMF or `cdo remapbil`)"


def _find(ds: xr.Dataset, key: str, names: tuple[str, ...]) -> str | None:
    """The ``key`` (``"latitude"``/``"longitude"``) variable: CF attributes, then common names.

    Coordinates and small (<= 2-D) data variables are searched, cell bounds never; a dimension
    coordinate wins over others.
    """
    small = [v for v in ds.data_vars if ds[v].ndim <= 2]  # 2-D lat/lon are sometimes data
    view = ds.set_coords(small)
    bounds = {
        var.attrs.get("bounds", var.encoding.get("bounds")) for var in ds.variables.values()
    }
    found = [v for v in view.cf.coordinates.get(key, []) if v not in bounds]
    if not found:
        found = [v for v in view.coords if str(v).lower() in names and v not in bounds]
    if not found:
        return None
    return next((v for v in found if v in ds.dims), found[0])


def _refuse_unstructured(ds: xr.Dataset, lat: str | None, lon: str | None) -> None:
    meshes = sorted(map(str, ds.cf.cf_roles.get("mesh_topology", [])))
    shared = (
        lat is not None
        and lon is not None
        and ds[lat].ndim == ds[lon].ndim == 1
        and ds[lat].dims == ds[lon].dims
    )
    if not (meshes or shared):
        return
    what = (
        f"latitude {lat!r} and longitude {lon!r} share the dim {ds[lat].dims[0]!r} (one point "
        f"per mesh node or cell, or per station)"
        if shared
        else f"{meshes} is a UGRID mesh topology (cf_role='mesh_topology')"
    )
    msg = (
        f"unstructured grid: {what}; only regular grids, with 1-D latitude and longitude on dims "
        f"of their own, are supported. Regrid to a regular lat/lon grid first (e.g. with xESMF "
        f"or `cdo remapcon`)"
    )
    raise ValueError(msg)


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
            f"{REGRID_HINT}"
        )
        raise ValueError(msg)


def _as_dim(ds: xr.Dataset, name: str, new: str) -> xr.Dataset:
    var = ds[name]
    if var.ndim != 1:
        msg = (
            f"curvilinear grid: {new}itude variable {name!r} is {var.ndim}-D with dims {var.dims}; "
            f"only regular grids with 1-D lat/lon are supported. {REGRID_HINT}"
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


def _canonical_lon(ds: xr.Dataset) -> xr.Dataset:
    """Sort ``lon``, drop a repeated cyclic column, lay a regional grid out as one eastward run."""
    values = np.asarray(ds["lon"].values, dtype=np.float64)
    if values.size > 1 and not np.all(np.diff(values) > 0):
        if np.unique(values).size != values.size:
            msg = "longitude coordinate 'lon' has duplicate values; the grid is not regular"
            raise ValueError(msg)
        ds = ds.sortby("lon")
        values = np.sort(values)
    if np.isclose(values[-1] - values[0], 360.0) and is_global_lon(values[:-1]):
        ds = ds.isel(lon=slice(None, -1))  # drop the cyclic (repeated) column of a global grid
        values = values[:-1]
    if not is_global_lon(values):  # regional: one run, also across the 0° or 180° meridian
        order, run = contiguous_lon(values)
        if not np.array_equal(run, values):
            ds = ds.isel(lon=order).assign_coords(lon=("lon", run, ds["lon"].attrs))
    return ds


def canonicalize(ds: xr.Dataset) -> xr.Dataset:
    """Canonical form: lat/lon/time renamed, lat ascending, lon in one run, attr ``periodic``.

    CF auxiliary data variables (cell bounds, grid mappings, ...) become coordinates, so the
    data variables are the data. A dataset without any latitude/longitude (e.g. PDE data on
    y/x) keeps its grid as it is.

    Raises
    ------
    ValueError
        Curvilinear, rotated-pole or unstructured grids; latitude without longitude (or the
        reverse); non-monotonic latitude; repeated longitudes.
    """
    ds = ds.set_coords(auxiliary_variables(ds))
    _refuse_rotated(ds)
    lat = _find(ds, "latitude", LAT_NAMES)
    lon = _find(ds, "longitude", LON_NAMES)
    _refuse_unstructured(ds, lat, lon)
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
    if check_monotonic(ds["lat"].values, "lat", what="latitude coordinate") < 0:
        ds = ds.isel(lat=slice(None, None, -1))
    ds = _canonical_lon(ds)
    ds["lat"].attrs.update({"units": "degrees_north", "standard_name": "latitude", "axis": "Y"})
    ds["lon"].attrs.update(
        {
            "units": "degrees_east",
            "standard_name": "longitude",
            "axis": "X",
            "periodic": int(is_global_lon(ds["lon"].values)),
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
