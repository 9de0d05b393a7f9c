"""PDEBench's HDF5 layouts in and out: :func:`open_pdebench` and :func:`write_pdebench`.

PDEBench (Takamoto et al., NeurIPS 2022) ships two layouts, and its loaders
(``FNODatasetSingle``, ``FNODatasetMult``) pick one from the file name: ``.h5`` files hold one
group per sample, every other suffix (``.hdf5``) holds whole arrays.

*arrays* (1-D equations, 2-D Darcy flow, compressible Navier-Stokes)::

    tensor                 (sample, time, x[, y[, z]])   one unknown; or density, pressure,
                                                         Vx, Vy, Vz for the CFD sets
    nu                     (sample, x, y)                a time-independent input (Darcy)
    x-coordinate, y-coordinate, z-coordinate, t-coordinate   1-D coordinates

*samples* (2-D reaction-diffusion, shallow water, and files written with a seed per group)::

    0000/data              (time, x[, y[, z]], channel)
    0000/grid/x, 0000/grid/y, 0000/grid/z, 0000/grid/t
    0001/...

Axes after ``(sample, time)`` run ``x``, ``y``, ``z`` in that order (PDEBench meshgrids its
coordinates with ``indexing="ij"``). PDEBench's 1-D generators write a ``t-coordinate`` one
entry longer than the time axis (the end time of a step that is never saved); the reader drops
that last entry and says so in ``attrs["t_coordinate_note"]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xarray as xr
from gridformer.datasets._hdf5 import (
    H5Array,
    H5File,
    attr_text,
    check_hdf5,
    h5_attrs,
    sniff_layout,
    string_list,
    write_hdf5,
)
from xarray.core import indexing

__all__ = ["open_pdebench", "write_pdebench"]

PathLike = str | os.PathLike[str]
SPATIAL = ("x", "y", "z")
LAYOUTS = ("arrays", "samples")
_T_NOTE = ("t-coordinate had one entry more than the time axis (as PDEBench's generators "
           "write it); its last entry was dropped")


# ---------------------------------------------------------------------------------- reading
def open_pdebench(path: PathLike, *, chunks: Any = "auto") -> xr.Dataset:
    """Open a PDEBench HDF5 file lazily as an ``xr.Dataset`` (either layout, found by content).

    Parameters
    ----------
    path
        A PDEBench ``.hdf5`` (arrays) or ``.h5`` (one group per sample) file.
    chunks
        Dask chunks (``"auto"``, a dict, ``{}`` for one chunk) or ``None`` for lazily indexed
        arrays without dask.

    Returns
    -------
    xr.Dataset
        *arrays* layout: each array under its HDF5 name (``tensor``; ``density``, ``Vx``...;
        ``nu``) over ``(sample, time, x[, y[, z]])`` or ``(sample, x, ...)``; *samples*
        layout: ``data`` over ``(sample, time, x[, y[, z]], channel)`` with the group names in
        the coordinate ``group``. Coordinates ``time``, ``x``, ``y``, ``z`` from the file
        (``time`` is the step index where a file has none); root attrs kept, plus
        ``pdebench_layout`` (``"arrays"``/``"samples"``). Nothing is read until used.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not HDF5; neither layout (the message lists the keys expected and found); a coordinate
        whose length disagrees with the array axis it labels (the message names both).
    """
    p = check_hdf5(path, "PDEBench")
    h5 = H5File(p)
    try:
        f = h5.file
        layout = sniff_layout(f)
        if layout == "pdebench_arrays":
            ds = _open_arrays(h5, f, p)
        elif layout == "pdebench_samples":
            ds = _open_samples(h5, f, p)
        else:
            _not_pdebench(f, p, layout)
    except BaseException:
        h5.close()
        raise
    ds = ds.assign_coords(sample=np.arange(ds.sizes["sample"]))
    if chunks is not None:
        ds = ds.chunk(chunks)
    return h5.attach(ds)


def _not_pdebench(f: h5py.File, path: Path, layout: str | None) -> None:
    hint = "; it is a The Well file: use open_the_well" if layout == "the_well" else ""
    msg = (f"{str(path)!r} is in neither PDEBench layout: expected the datasets 'tensor' (or "
           f"'density', 'Vx', ...) with 'x-coordinate' and 't-coordinate', or groups "
           f"'0000', '0001', ... each with 'data' and 'grid/x'; found keys {sorted(f.keys())}"
           f"{hint}")
    raise ValueError(msg)


def _coordinate(f: h5py.Group, key: str, path: Path) -> np.ndarray:
    values = f[key][()]
    if values.ndim != 1:
        msg = f"{str(path)!r}: {f[key].name} has shape {values.shape}; coordinates must be 1-D"
        raise ValueError(msg)
    return values


def _time_coord(t: np.ndarray | None, n_time: int, source: str, path: Path,
                attrs: dict) -> np.ndarray:
    if t is None:
        attrs["t_coordinate_note"] = "the file has no t-coordinate; time is the step index"
        return np.arange(n_time)
    if len(t) == n_time + 1:
        attrs["t_coordinate_note"] = _T_NOTE
        return t[:n_time]
    if len(t) != n_time:
        msg = (f"{str(path)!r}: {source} has {len(t)} entries but the data have {n_time} time "
               f"steps (expected {n_time}, or {n_time + 1} as PDEBench's generators write)")
        raise ValueError(msg)
    return t


def _open_arrays(h5: H5File, f: h5py.File, path: Path) -> xr.Dataset:
    spatial = [d for d in SPATIAL if f"{d}-coordinate" in f]
    if spatial != list(SPATIAL[: len(spatial)]):
        msg = (f"{str(path)!r} has coordinates for {spatial}; PDEBench files have x, (x, y) or "
               f"(x, y, z)")
        raise ValueError(msg)
    coords = {d: _coordinate(f, f"{d}-coordinate", path) for d in spatial}
    coord_keys = {f"{d}-coordinate" for d in (*SPATIAL, "t")}
    names = [k for k in f if k not in coord_keys and isinstance(f[k], h5py.Dataset)]
    if not names:
        _not_pdebench(f, path, "pdebench_arrays")
    data_vars, n_time = {}, None
    for name in names:
        shape = f[name].shape
        n = len(spatial)
        if len(shape) not in (n + 1, n + 2):
            msg = (f"{str(path)!r}: {name!r} has shape {shape}; with coordinates {spatial} "
                   f"PDEBench arrays are (sample, time, {', '.join(spatial)}) or "
                   f"(sample, {', '.join(spatial)})")
            raise ValueError(msg)
        for dim, size in zip(spatial, shape[-n:], strict=True):
            if size != len(coords[dim]):
                msg = (f"{str(path)!r}: {name!r} has {size} points along {dim!r} (axis "
                       f"{len(shape) - n + spatial.index(dim)} of shape {shape}) but "
                       f"'{dim}-coordinate' has {len(coords[dim])}")
                raise ValueError(msg)
        timed = len(shape) == n + 2
        if timed and n_time is not None and shape[1] != n_time:
            msg = (f"{str(path)!r}: {name!r} has {shape[1]} time steps, other arrays "
                   f"{n_time}")
            raise ValueError(msg)
        n_time = shape[1] if timed else n_time
        dims = ("sample", "time", *spatial) if timed else ("sample", *spatial)
        data_vars[name] = h5.variable(name, dims, _attrs(f[name]))
    attrs = {**_attrs(f), "pdebench_layout": "arrays"}
    if n_time is not None:
        t = _coordinate(f, "t-coordinate", path) if "t-coordinate" in f else None
        coords["time"] = _time_coord(t, n_time, "'t-coordinate'", path, attrs)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


class _SampleGroups(H5Array):
    """``<group>/data`` of every group, stacked along a leading sample axis (read lazily)."""

    def __init__(self, h5: H5File, groups: list[str], shape: tuple[int, ...],
                 dtype: np.dtype) -> None:
        super().__init__(h5.manager, "", shape, dtype)
        self.groups = groups

    def _read(self, key: tuple) -> np.ndarray:
        f = self.manager.acquire()
        first, rest = key[0], key[1:]
        if isinstance(first, int | np.integer):
            return np.asarray(f[self.groups[first]]["data"][rest])
        picked = range(len(self.groups))[first]
        out = np.empty((len(picked), *_sliced_shape(self.shape[1:], rest)), dtype=self.dtype)
        for i, g in enumerate(picked):
            out[i] = f[self.groups[g]]["data"][rest]
        return out


def _sliced_shape(shape: tuple[int, ...], key: tuple) -> tuple[int, ...]:
    """Shape of ``array[key]`` for a basic (int/slice) ``key`` over ``shape``."""
    key = key + (slice(None),) * (len(shape) - len(key))
    return tuple(len(range(n)[k]) for n, k in zip(shape, key, strict=True)
                 if isinstance(k, slice))


def _open_samples(h5: H5File, f: h5py.File, path: Path) -> xr.Dataset:
    groups = sorted(k for k in f if isinstance(f[k], h5py.Group))
    first = f[groups[0]]
    shape = first["data"].shape
    n = len(shape) - 2
    spatial = list(SPATIAL[:n])
    grid = first.get("grid")
    if n < 1 or grid is None or any(d not in grid for d in spatial):
        found = sorted(grid.keys()) if grid is not None else []
        msg = (f"{str(path)!r}: {first.name}/data has shape {shape}, read as (time, "
               f"{', '.join(spatial) or '?'}, channel); expected {first.name}/grid to hold "
               f"{spatial}, found {found}")
        raise ValueError(msg)
    coords: dict[str, Any] = {}
    for axis, dim in enumerate(spatial, start=1):
        coords[dim] = _coordinate(grid, dim, path)
        if len(coords[dim]) != shape[axis]:
            msg = (f"{str(path)!r}: {grid.name}/{dim} has {len(coords[dim])} entries but "
                   f"{first.name}/data has {shape[axis]} points along {dim!r} (axis {axis} of "
                   f"shape {shape})")
            raise ValueError(msg)
    for g in groups[1:]:
        other = f[g]["data"].shape if "data" in f[g] else None
        if other != shape:
            msg = (f"{str(path)!r}: group {g!r} has data of shape {other}, group "
                   f"{groups[0]!r} has {shape}; all samples must share one grid")
            raise ValueError(msg)
    attrs = {**_attrs(f), "pdebench_layout": "samples"}
    t = _coordinate(grid, "t", path) if "t" in grid else None
    coords["time"] = _time_coord(t, shape[0], f"{grid.name}/t", path, attrs)
    channel_names = attrs.pop("channel_names", None)
    if channel_names is not None and len(string_list(channel_names)) == shape[-1]:
        coords["channel"] = string_list(channel_names)
    coords["group"] = ("sample", np.asarray(groups, dtype=str))
    array = _SampleGroups(h5, groups, (len(groups), *shape), first["data"].dtype)
    data = xr.Variable(("sample", "time", *spatial, "channel"),
                       indexing.LazilyIndexedArray(array))
    return xr.Dataset({"data": data}, coords=coords, attrs=attrs)


def _attrs(obj: h5py.HLObject) -> dict:
    return {k: attr_text(v) for k, v in obj.attrs.items()}


# ---------------------------------------------------------------------------------- writing
def write_pdebench(
    trajectories: xr.Dataset | xr.DataArray,
    path: PathLike,
    *,
    layout: str | None = None,
    dtype: str = "float32",
) -> Path:
    """Write trajectories (e.g. ``solvers.solve`` output) in a PDEBench layout, atomically.

    Parameters
    ----------
    trajectories
        Variables over ``("time", ["sample",] x[, y[, z]])`` in any order (PDEBench names its
        axes ``x``, ``y``, ``z``: rename others first); a variable with a ``channel`` dim
        (``open_pdebench``'s ``data``) counts as one variable per channel.
    path
        Destination. Its suffix picks the layout as PDEBench's loaders do: ``.h5`` = one group
        per sample, ``.hdf5`` = arrays.
    layout
        ``"arrays"`` or ``"samples"``; must agree with the suffix (default: from the suffix).
        *arrays* writes one variable as ``tensor`` and several under their own names (as the
        CFD sets do); *samples* stacks the variables along the last axis of ``data`` and
        lists them in the root attr ``channel_names``.
    dtype
        ``"float32"`` (PDEBench's) or ``"float64"``.

    Returns
    -------
    Path
        The written path. Arrays are ``(sample, time, x, y)``, whatever the input's dim order.
    """
    ds = trajectories.to_dataset(name=trajectories.name or "u") if isinstance(
        trajectories, xr.DataArray) else trajectories
    if not isinstance(ds, xr.Dataset) or not ds.data_vars:
        msg = (f"trajectories must be an xr.Dataset or xr.DataArray with data, not "
               f"{type(trajectories).__name__}")
        raise TypeError(msg)
    real = np.dtype(dtype)
    if real not in (np.float32, np.float64):
        msg = f"dtype={dtype!r} must be 'float32' or 'float64'"
        raise ValueError(msg)
    chosen = _layout_for(Path(os.fspath(path)), layout)
    channels = _channels(ds)
    spatial = _spatial(channels)
    if "sample" not in ds.dims:
        channels = {k: v.expand_dims("sample") for k, v in channels.items()}
    order = ["sample", "time", *spatial]
    channels = {k: v.transpose(*order) for k, v in channels.items()}
    coords = {d: _coord(ds, d).astype(real) for d in ["time", *spatial]}
    attrs = {k: v for k, v in h5_attrs(ds.attrs).items() if k != "pdebench_layout"}
    if "spatial_dims" in attrs:  # the solvers' record of the dim order, which changed here
        attrs["spatial_dims"] = " ".join(spatial)

    def fill(f: h5py.File) -> None:
        f.attrs.update(attrs)
        if chosen == "arrays":
            _fill_arrays(f, channels, coords, real)
        else:
            _fill_samples(f, channels, coords, real)

    return write_hdf5(path, fill, suffixes=(".h5", ".hdf5", ".hdf"), what="PDEBench")


def _layout_for(path: Path, layout: str | None) -> str:
    implied = "samples" if path.suffix.lower() == ".h5" else "arrays"
    if layout is None:
        return implied
    if layout not in LAYOUTS:
        msg = f"layout={layout!r} must be one of {LAYOUTS} or None (from the suffix)"
        raise ValueError(msg)
    if layout != implied:
        need = ".h5" if layout == "samples" else ".hdf5"
        msg = (f"layout={layout!r} does not fit path={str(path)!r}: PDEBench's loaders read "
               f"'.h5' files as one group per sample and other suffixes as arrays; use a "
               f"path ending in {need}")
        raise ValueError(msg)
    return layout


def _channels(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """One DataArray per variable (a ``channel`` dim split into its channels)."""
    out: dict[str, xr.DataArray] = {}
    for name, var in ds.data_vars.items():
        if not np.issubdtype(var.dtype, np.number):
            msg = f"variable {name!r} has dtype {var.dtype}; only numbers can be written"
            raise TypeError(msg)
        if "channel" in var.dims:
            labels = (var["channel"].values if "channel" in var.coords
                      else np.arange(var.sizes["channel"]))
            for i, label in enumerate(labels):
                out[str(label)] = var.isel(channel=i, drop=True)
        else:
            out[str(name)] = var
    return out


def _spatial(channels: dict[str, xr.DataArray]) -> list[str]:
    dims = None
    for name, var in channels.items():
        if "time" not in var.dims:
            msg = f"variable {name!r} has dims {var.dims}; it needs a 'time' dim"
            raise ValueError(msg)
        other = [d for d in var.dims if d not in ("sample", "time")]
        bad = [d for d in other if d not in SPATIAL]
        if bad:
            msg = (f"variable {name!r} has dims {var.dims}: PDEBench names its spatial axes "
                   f"x, y, z, not {bad}; rename them (e.g. ds.rename(lat='y', lon='x'))")
            raise ValueError(msg)
        here = [d for d in SPATIAL if d in other]
        if here != list(SPATIAL[: len(here)]) or not here:
            msg = (f"variable {name!r} has spatial dims {tuple(other)}; PDEBench data span x, "
                   f"(x, y) or (x, y, z)")
            raise ValueError(msg)
        if dims is not None and here != dims:
            msg = f"variable {name!r} spans {here}, others span {dims}; they must share a grid"
            raise ValueError(msg)
        dims = here
    return dims or []


def _coord(ds: xr.Dataset, dim: str) -> np.ndarray:
    if dim in ds.coords:
        return np.asarray(ds[dim].values, dtype=np.float64)
    return np.arange(ds.sizes[dim], dtype=np.float64)


def _fill_arrays(f: h5py.File, channels: dict[str, xr.DataArray], coords: dict,
                 real: np.dtype) -> None:
    single = len(channels) == 1
    for name, var in channels.items():
        dset = f.create_dataset("tensor" if single else name, shape=var.shape, dtype=real)
        for b in range(var.sizes["sample"]):  # one sample at a time: bounded memory
            dset[b] = np.asarray(var.isel(sample=b).values, dtype=real)
    for dim, values in coords.items():
        f.create_dataset(f"{'t' if dim == 'time' else dim}-coordinate", data=values)


def _fill_samples(f: h5py.File, channels: dict[str, xr.DataArray], coords: dict,
                  real: np.dtype) -> None:
    f.attrs["channel_names"] = np.asarray(list(channels), dtype=h5py.string_dtype())
    first = next(iter(channels.values()))
    n_samples = first.sizes["sample"]
    width = max(4, len(str(n_samples - 1)))
    for b in range(n_samples):
        group = f.create_group(f"{b:0{width}d}")
        frames = [np.asarray(v.isel(sample=b).values, dtype=real) for v in channels.values()]
        group.create_dataset("data", data=np.stack(frames, axis=-1))  # (T, x, [y,] C)
        for dim, values in coords.items():
            group.create_dataset(f"grid/{'t' if dim == 'time' else dim}", data=values)
