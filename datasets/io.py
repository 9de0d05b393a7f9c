"""NetCDF in and out: :func:`open_dataset` (lazy, canonical) and :func:`write_netcdf` (atomic).

``open_dataset`` returns an ``xr.Dataset`` in gridformer's conventions: dims ``time``, ``lat``
(ascending), ``lon`` (one eastward run: sorted on a global grid, attr ``periodic`` = 1; a regional
grid across the 0° or 180° meridian kept in one piece, ``periodic`` = 0) plus every other dim by
name (a singleton pressure level stays). ``_FillValue`` and ``missing_value`` become NaN;
non-standard calendars (``noleap``, ``360_day``) decode to cftime; CF auxiliary variables (cell
bounds, grid mappings, cell measures) are coordinates, so the data variables are the data.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from gridformer.datasets._canonical import canonicalize

from gridformer._io import atomic_path

__all__ = ["open_dataset", "write_netcdf"]

_MAGIC_CLASSIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
_MAGIC_HDF5 = b"\x89HDF\r\n\x1a\n"

PathLike = str | os.PathLike[str]


def _resolve_paths(path_or_paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(path_or_paths, str | os.PathLike):
        text = os.fspath(path_or_paths)
        if glob.has_magic(text):
            paths = [Path(p) for p in sorted(glob.glob(text))]
            if not paths:
                msg = f"no files match the pattern {text!r}"
                raise FileNotFoundError(msg)
            return paths
        paths = [Path(text)]
    elif isinstance(path_or_paths, Sequence):
        paths = [Path(os.fspath(p)) for p in path_or_paths]
        if not paths:
            msg = "path_or_paths is an empty list; give at least one NetCDF file"
            raise ValueError(msg)
    else:
        msg = (
            f"path_or_paths must be a path, a glob pattern or a list of paths, "
            f"not {type(path_or_paths).__name__}"
        )
        raise TypeError(msg)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        msg = f"NetCDF file(s) not found: {missing}"
        raise FileNotFoundError(msg)
    return paths


def _check_netcdf(path: Path) -> None:
    """Refuse files that are not NetCDF, or truncated classic NetCDF (which would read as zeros)."""
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(_MAGIC_HDF5):
        return
    if not head.startswith(_MAGIC_CLASSIC):
        msg = (
            f"{str(path)!r} is not a NetCDF file (it starts with {head[:4]!r}, expected a "
            f"NetCDF-3 'CDF' or NetCDF-4/HDF5 signature)"
        )
        raise ValueError(msg)
    if head.startswith(b"CDF\x05"):
        return  # CDF-5: leave the check to the netCDF library
    from scipy.io import netcdf_file

    try:
        with netcdf_file(path, mmap=True) as nc:
            for var in nc.variables.values():
                var.data  # touching every variable fails on a truncated file # noqa: B018
                del var
            del nc
    except Exception as err:
        msg = f"{str(path)!r} is a truncated or corrupt NetCDF file ({err})"
        raise ValueError(msg) from err


def _select(ds: xr.Dataset, variables: str | Sequence[str] | None) -> xr.Dataset:
    if variables is None:
        return ds
    names = [variables] if isinstance(variables, str) else list(variables)
    missing = [v for v in names if v not in ds.data_vars]
    if missing:
        msg = (
            f"variable(s) {missing} not in the file; it has data variables "
            f"{sorted(map(str, ds.data_vars))}"
        )
        raise ValueError(msg)
    return ds[names]


def open_dataset(
    path_or_paths: PathLike | Sequence[PathLike],
    *,
    variables: str | Sequence[str] | None = None,
    chunks: Any = "auto",
) -> xr.Dataset:
    """Open one NetCDF file, a list of files or a glob, lazily, in canonical form.

    Parameters
    ----------
    path_or_paths
        A path, a glob pattern (``"data/t2m_*.nc"``) or a list of paths; several files are
        combined by their coordinates (``xr.open_mfdataset``, e.g. one file per year).
    variables
        Data variable name(s) to keep (default: all). Unknown names raise ``ValueError`` listing
        the variables the file has.
    chunks
        Dask chunks (``"auto"``, a dict, or ``None`` for lazily indexed NumPy arrays).

    Returns
    -------
    xr.Dataset
        Dims ``time``, ``lat`` (ascending, degrees_north), ``lon`` (degrees_east, strictly
        increasing: sorted on a global grid, attr ``periodic`` 1; one eastward run on a regional
        grid, e.g. ``325.5 ... 360.5`` across the 0° meridian, ``periodic`` 0) and any others
        kept by name; missing values as NaN; CF auxiliary variables (bounds, grid mapping...)
        as coordinates; data not read yet.

    Raises
    ------
    FileNotFoundError
        A path or pattern matches no file.
    ValueError
        Not a NetCDF file, truncated, unknown variable, curvilinear, rotated-pole or
        unstructured (UGRID) grid.
    """
    paths = _resolve_paths(path_or_paths)
    for path in paths:
        _check_netcdf(path)
    time_coder = xr.coders.CFDatetimeCoder(use_cftime=None)
    # decode_coords="all": variables named by bounds / grid_mapping / cell_measures... attrs
    # are read as coordinates (xarray's own CF decoding), not as data variables
    options = {"engine": "netcdf4", "chunks": chunks, "decode_times": time_coder,
               "decode_coords": "all"}
    try:
        if len(paths) == 1:
            ds = xr.open_dataset(paths[0], **options)
        else:
            ds = xr.open_mfdataset(
                paths,
                **options,
                combine="by_coords",
                data_vars="minimal",
                coords="minimal",
                compat="override",
                join="exact",
            )
    except (OSError, RuntimeError) as err:
        msg = f"could not read {[str(p) for p in paths]} as NetCDF (truncated or corrupt?): {err}"
        raise ValueError(msg) from err
    return canonicalize(_select(ds, variables))


def _netcdf_attrs(attrs: dict) -> dict:
    """NetCDF cannot store bools or None: bools become 0/1, None values are dropped."""
    return {
        k: (int(v) if isinstance(v, bool | np.bool_) else v)
        for k, v in attrs.items()
        if v is not None
    }


def _cf_attrs(ds: xr.Dataset) -> xr.Dataset:
    """CF attributes for the canonical coords and NetCDF-safe attrs (the input is not modified)."""
    ds = ds.copy(deep=False)
    ds.attrs = _netcdf_attrs(ds.attrs)
    ds.attrs.setdefault("Conventions", "CF-1.8")
    defaults = {
        "lat": {"units": "degrees_north", "standard_name": "latitude", "axis": "Y"},
        "lon": {"units": "degrees_east", "standard_name": "longitude", "axis": "X"},
        "time": {"standard_name": "time", "axis": "T"},
    }
    for name in list(ds.variables):
        ds[name].attrs = _netcdf_attrs({**defaults.get(str(name), {}), **ds[name].attrs})
    return ds


def write_netcdf(
    obj: xr.Dataset | xr.DataArray, path: PathLike, *, encoding: dict | None = None
) -> Path:
    """Write a Dataset or DataArray to NetCDF-4 atomically (complete file or none) with CF attrs.

    Parameters
    ----------
    obj
        Data to write; a DataArray is stored under its name (``"data"`` when unnamed).
    path
        Destination; written to a temporary file beside it, then moved into place.
    encoding
        Optional per-variable encoding passed to ``xr.Dataset.to_netcdf``.

    Returns
    -------
    Path
        The written path.
    """
    if isinstance(obj, xr.DataArray):
        obj = obj.to_dataset(name=obj.name if obj.name is not None else "data")
    if not isinstance(obj, xr.Dataset):
        msg = f"write_netcdf needs an xr.Dataset or xr.DataArray, not {type(obj).__name__}"
        raise TypeError(msg)
    ds = _cf_attrs(obj)
    with atomic_path(path, suffix=".nc") as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    return Path(path)
