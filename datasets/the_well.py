"""The Well's HDF5 layout in and out: :func:`open_the_well` and :func:`write_the_well`.

A Well file (``the_well`` package, PolymathicAI) holds one set of trajectories of one physical
system::

    /                      attrs dataset_name, grid_type, n_spatial_dims, n_trajectories,
                           simulation_parameters (+ one attr per parameter)
    /dimensions            attr spatial_dims; datasets time (T,) and one per spatial dim
    /boundary_conditions/* one group per boundary: attrs bc_type (periodic | wall | open),
                           associated_dims, associated_fields; dataset mask over the dim(s)
    /scalars               attr field_names; one dataset per scalar, () or over sample/time
    /t0_fields, /t1_fields, /t2_fields
                           attr field_names; scalar, vector (..., D) and tensor (..., D, D)
                           fields, each with attrs sample_varying, time_varying, dim_varying

Every dataset says by its attrs which of ``(sample, time, *spatial)`` it spans; the reader uses
them to name the dims, so nothing is guessed from shapes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xarray as xr
from gridformer.datasets._hdf5 import (
    H5File,
    attr_text,
    check_hdf5,
    h5_attrs,
    sniff_layout,
    string_list,
    write_hdf5,
)

__all__ = ["open_the_well", "write_the_well"]

PathLike = str | os.PathLike[str]
WELL_GROUPS = ("dimensions", "boundary_conditions", "scalars",
               "t0_fields", "t1_fields", "t2_fields")
WELL_BC_TYPES = ("periodic", "wall", "open")
COMPONENT_DIMS = ("i", "j")  # tensor-component dims, named as the_well's own xarray export
_RESERVED = ("dataset_name", "grid_type", "n_spatial_dims", "n_trajectories",
             "simulation_parameters")
_DIRICHLET = re.compile(r"dirichlet(?:\(\s*([^,()]+)\s*,\s*([^,()]+)\s*\))?$")


# ---------------------------------------------------------------------------------- reading
def open_the_well(path: PathLike, *, chunks: Any = "auto") -> xr.Dataset:
    """Open a Well HDF5 file (or a folder of them) lazily as an ``xr.Dataset``.

    Parameters
    ----------
    path
        One ``.h5``/``.hdf5`` file, or a folder whose ``*.h5``/``*.hdf5`` files (one physical
        system, e.g. ``data/train``) are joined along ``sample`` in name order.
    chunks
        Dask chunks (``"auto"``, a dict, ``{}`` for one chunk); ``None`` keeps lazily indexed
        arrays without dask (a folder of several files always uses dask).

    Returns
    -------
    xr.Dataset
        Fields with dims ``(sample, time, *spatial)`` in the file's axis order (a dim a field
        does not vary over is absent, as xarray broadcasts by name), plus ``i`` (and ``j``) for
        vector and tensor components (coordinate: the spatial dim names); scalars over
        ``(sample, time)`` where they vary. Coordinates ``time`` and the spatial dims. Root
        attrs are kept. Boundary conditions: each spatial coordinate has attrs ``bc``
        (``"periodic"``, ``"wall"``, ``"open"``, ``"wall/open"`` when the two sides differ;
        gridformer's own kind such as ``"dirichlet(0, 1)"`` for files it wrote) and
        ``periodic`` (1/0, read by ``PatchTokenizer``); ``attrs["bc"]`` summarises them as
        the solvers do (``"periodic"`` or ``"y: periodic; x: wall"``). Nothing is read until
        values are used.

    Raises
    ------
    FileNotFoundError
        No such file, or a folder without HDF5 files.
    ValueError
        Not HDF5, not the Well layout (the message lists the expected and the found keys), or
        a dataset whose shape disagrees with its attrs (the message names it).
    """
    p = Path(os.fspath(path))
    if p.is_dir():
        files = sorted([*p.glob("*.h5"), *p.glob("*.hdf5")])
        if not files:
            msg = f"no .h5/.hdf5 files in the folder {str(p)!r}"
            raise FileNotFoundError(msg)
        parts = [_open_file(f, {} if chunks is None else chunks) for f in files]
        return _join_samples(parts, files)
    return _open_file(p, chunks)


def _open_file(path: Path, chunks: Any) -> xr.Dataset:
    h5 = H5File(check_hdf5(path, "The Well"))
    try:
        f = h5.file
        _check_layout(f, path)
        spatial = string_list(f["dimensions"].attrs["spatial_dims"])
        coords, sizes = _coords(f, spatial, path)
        sizes["sample"] = int(f.attrs["n_trajectories"])
        data_vars = {}
        for order in range(3):
            group = f[f"t{order}_fields"]
            for name in string_list(group.attrs.get("field_names", [])):
                data_vars[name] = _field(h5, group, name, order, spatial, sizes, path)
        for name in string_list(f["scalars"].attrs.get("field_names", [])):
            data_vars[name] = _field(h5, f["scalars"], name, -1, spatial, sizes, path)
        bcs = _read_bcs(f, spatial)
        attrs = {k: attr_text(v) for k, v in f.attrs.items()}
    except BaseException:
        h5.close()
        raise
    for dim, text in bcs.items():
        coords[dim][2].update(bc=text, periodic=int(text == "periodic"))
    attrs["bc"] = _bc_summary(bcs)
    ds = xr.Dataset(data_vars, coords={k: xr.Variable(*v) for k, v in coords.items()},
                    attrs=attrs)
    if "sample" in ds.dims:
        ds = ds.assign_coords(sample=np.arange(ds.sizes["sample"]))
    if chunks is not None:
        ds = ds.chunk(chunks)
    return h5.attach(ds)


def _check_layout(f: h5py.File, path: Path) -> None:
    found = sorted(f.keys())
    missing = [g for g in WELL_GROUPS if g not in f]
    missing_attrs = [a for a in ("n_trajectories",) if a not in f.attrs]
    if missing or missing_attrs:
        other = sniff_layout(f)
        hint = "; it looks like a PDEBench file: use open_pdebench" if other and \
            other.startswith("pdebench") else ""
        msg = (f"{str(path)!r} is not in The Well's layout: expected root groups "
               f"{list(WELL_GROUPS)} and attr 'n_trajectories', found groups {found}"
               f"{' and no n_trajectories attr' if missing_attrs else ''}{hint}")
        raise ValueError(msg)
    if "spatial_dims" not in f["dimensions"].attrs:
        msg = f"{str(path)!r}: /dimensions has no 'spatial_dims' attr naming the spatial dims"
        raise ValueError(msg)


def _coords(f: h5py.File, spatial: list[str], path: Path) -> tuple[dict, dict]:
    """``{name: (dims, values, attrs)}`` for time and the spatial dims, and the dim sizes."""
    group, coords, sizes = f["dimensions"], {}, {}
    for dim in [*spatial, "time"]:
        if dim not in group:
            msg = f"{str(path)!r}: /dimensions lacks the dataset {dim!r} (spatial_dims={spatial})"
            raise ValueError(msg)
        ds = group[dim]
        attrs = {k: attr_text(v) for k, v in ds.attrs.items()
                 if k not in ("sample_varying", "time_varying")}
        if dim == "time" and ds.ndim == 2:  # sample-varying time: a 2-D coordinate
            coords["sample_time"] = (("sample", "time"), ds[()], attrs)
        elif ds.ndim == 1:
            coords[dim] = ((dim,), ds[()], attrs)
        else:
            msg = (f"{str(path)!r}: /dimensions/{dim} has shape {ds.shape}; only 1-D spatial "
                   f"coordinates (not varying by sample or time) are supported")
            raise ValueError(msg)
        sizes[dim] = ds.shape[-1]
    return coords, sizes


def _field(h5: H5File, group: h5py.Group, name: str, order: int, spatial: list[str],
           sizes: dict, path: Path) -> xr.Variable:
    """A field (order 0-2) or scalar (order -1), with dims named from its attrs."""
    if name not in group:
        msg = f"{str(path)!r}: {group.name} lists {name!r} in field_names but has no such dataset"
        raise ValueError(msg)
    ds = group[name]
    dims = [d for d, key in (("sample", "sample_varying"), ("time", "time_varying"))
            if bool(ds.attrs.get(key, False))]
    if order >= 0:
        varying = np.asarray(ds.attrs.get("dim_varying", [True] * len(spatial)), dtype=bool)
        dims += [d for d, v in zip(spatial, varying, strict=True) if v]
        dims += list(COMPONENT_DIMS[:order])
    expected = tuple(len(spatial) if d in COMPONENT_DIMS else sizes[d] for d in dims)
    if order < 0 and not dims and ds.shape in ((), (1,)):  # a constant, sometimes stored (1,)
        return xr.Variable((), np.asarray(ds[()]).reshape(()), _plain_attrs(ds))
    if ds.shape != expected:
        msg = (f"{str(path)!r}: {ds.name} has shape {ds.shape}, but its attrs "
               f"(sample_varying, time_varying, dim_varying) say dims {tuple(dims)} of sizes "
               f"{expected}")
        raise ValueError(msg)
    attrs = _plain_attrs(ds)
    if order >= 0:
        attrs["tensor_order"] = order
    var = h5.variable(ds.name, dims, attrs)
    if order > 0:
        var.attrs["components"] = " ".join(spatial)
    return var


def _plain_attrs(ds: h5py.Dataset) -> dict:
    """A dataset's attrs without the Well's bookkeeping (the dims already say it)."""
    return {k: attr_text(v) for k, v in ds.attrs.items()
            if k not in ("sample_varying", "time_varying", "dim_varying")}


def _read_bcs(f: h5py.File, spatial: list[str]) -> dict[str, str]:
    """Per spatial dim: its boundary kind (``"low/high"`` when the two sides differ)."""
    sides = {d: ["open", "open"] for d in spatial}  # the_well's default where none is given
    exact: dict[str, str] = {}
    for group in f["boundary_conditions"].values():
        kind = str(attr_text(group.attrs.get("bc_type", "open"))).lower()
        dims = [d for d in string_list(group.attrs.get("associated_dims", [])) if d in sides]
        mask = np.asarray(group["mask"][()], dtype=bool) if "mask" in group else None
        lead = 0 if mask is None else mask.ndim - len(dims)  # sample/time axes, if varying
        for axis, dim in enumerate(dims):
            for side, index in ((0, 0), (1, -1)):
                face = True if mask is None else np.take(mask, index, axis=lead + axis)
                if np.all(face) if kind == "wall" else np.any(face):
                    sides[dim][side] = kind
            if "gridformer_bc" in group.attrs:
                exact[dim] = str(attr_text(group.attrs["gridformer_bc"]))
    return {d: exact.get(d, lo if lo == hi else f"{lo}/{hi}") for d, (lo, hi) in sides.items()}


def _bc_summary(bcs: dict[str, str]) -> str:
    if len(set(bcs.values())) == 1:
        return next(iter(bcs.values()))
    return "; ".join(f"{d}: {t}" for d, t in bcs.items())


def _join_samples(parts: list[xr.Dataset], files: list[Path]) -> xr.Dataset:
    first = parts[0]
    for other, file in zip(parts[1:], files[1:], strict=True):
        for dim in [d for d in first.dims if d not in ("sample", "i", "j")]:
            if other.sizes.get(dim) != first.sizes[dim]:
                msg = (f"{str(file)!r} has {other.sizes.get(dim)} points along {dim!r}, "
                       f"{str(files[0])!r} has {first.sizes[dim]}; a folder must hold one grid")
                raise ValueError(msg)
    joined = xr.concat(parts, dim="sample", data_vars="minimal", coords="minimal",
                       compat="override", join="override", combine_attrs="override")
    joined = joined.assign_coords(sample=np.arange(joined.sizes["sample"]))
    joined.attrs["n_trajectories"] = joined.sizes["sample"]

    def close_all() -> None:
        for part in parts:
            part.close()

    joined.set_close(close_all)
    return joined


# ---------------------------------------------------------------------------------- writing
def write_the_well(
    trajectories: xr.Dataset | xr.DataArray,
    path: PathLike,
    *,
    bc: str | Mapping[str, str] | None = None,
    dataset_name: str | None = None,
    parameters: Sequence[str] | None = None,
    dtype: str = "float32",
) -> Path:
    """Write trajectories (e.g. ``solvers.solve`` output) as a Well HDF5 file, atomically.

    Parameters
    ----------
    trajectories
        Variables over ``("time", ["sample",] *spatial)`` (1-3 spatial dims, any order; each
        variable its own field), ``i``/``j`` component dims for vector/tensor fields, and
        variables over ``sample``/``time`` only, which become scalars. A variable with
        ``time`` but no ``sample`` gets a sample axis of length 1.
    path
        Destination ending in ``.h5`` or ``.hdf5`` (``WellDataset`` reads only those); put it
        in a folder of its own to hand that folder to ``WellDataset(path=...)``.
    bc
        Boundary condition per spatial dim: one text for all or ``{dim: text}``. Default:
        the coordinates' ``bc`` attrs, else ``attrs["bc"]`` as the solvers write it
        (``"periodic"``, ``"y: periodic; x: dirichlet(0, 1)"``). ``periodic`` stays periodic,
        ``dirichlet``/``neumann``/``wall`` become Well ``wall`` (the exact kind is kept in the
        attr ``gridformer_bc``, Dirichlet wall values in the dataset ``values``), ``open``
        stays open.
    dataset_name
        The file's ``dataset_name`` (default ``attrs["dataset_name"]``, else
        ``"gridformer_<equation>"``).
    parameters
        Attrs listed as ``simulation_parameters`` (default: every numeric scalar attr); each
        is also written to ``/scalars``, as the Well format requires.
    dtype
        ``"float32"`` (the Well's convention) or ``"float64"`` for fields and coordinates.

    Returns
    -------
    Path
        The written path.
    """
    ds = _as_dataset(trajectories)
    real = _check_dtype(dtype)
    spatial = _spatial_dims(ds)
    bcs = _bc_per_dim(ds, spatial, bc)
    if "time" in ds.dims and "sample" not in ds.dims:
        ds = xr.Dataset({n: v.expand_dims("sample") if "time" in v.dims else v
                         for n, v in ds.data_vars.items()}, coords=ds.coords, attrs=ds.attrs)
    numeric = {k: v for k, v in ds.attrs.items() if _is_number(v) and k not in _RESERVED}
    params = list(numeric) if parameters is None else list(parameters)
    unknown = [p for p in params if p not in numeric]
    if unknown:
        msg = (f"parameters={params!r}: {unknown} are not numeric attrs of the data; "
               f"numeric attrs: {sorted(numeric)}")
        raise ValueError(msg)
    name = dataset_name or ds.attrs.get("dataset_name") or (
        f"gridformer_{ds.attrs['equation']}" if "equation" in ds.attrs else "gridformer")
    root = {k: v for k, v in h5_attrs(ds.attrs).items() if k not in (*_RESERVED, "bc")}
    root.update(dataset_name=str(name), grid_type=str(ds.attrs.get("grid_type", "cartesian")),
                n_spatial_dims=np.int64(len(spatial)),
                n_trajectories=np.int64(ds.sizes.get("sample", 1)),
                simulation_parameters=np.asarray(params, dtype=h5py.string_dtype()))

    def fill(f: h5py.File) -> None:
        f.attrs.update(root)
        _write_dimensions(f, ds, spatial, real)
        _write_bcs(f, ds, spatial, bcs)
        _write_fields(f, ds, spatial, real, numeric)

    return write_hdf5(path, fill, suffixes=(".h5", ".hdf5"), what="The Well")


def _as_dataset(obj: Any) -> xr.Dataset:
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=obj.name if obj.name is not None else "u")
    if not isinstance(obj, xr.Dataset):
        msg = f"trajectories must be an xr.Dataset or xr.DataArray, not {type(obj).__name__}"
        raise TypeError(msg)
    if not obj.data_vars:
        msg = "trajectories has no data variables to write"
        raise ValueError(msg)
    return obj


def _check_dtype(dtype: Any) -> np.dtype:
    real = np.dtype(dtype)
    if real not in (np.float32, np.float64):
        msg = f"dtype={dtype!r} must be 'float32' or 'float64'"
        raise ValueError(msg)
    return real


def _spatial_dims(ds: xr.Dataset) -> list[str]:
    """Spatial dims in the order of the variable that has most of them."""
    special = ("sample", "time", *COMPONENT_DIMS)
    best: list[str] = []
    for var in ds.data_vars.values():
        dims = [str(d) for d in var.dims if d not in special]
        if len(dims) > len(best):
            best = dims
    if not 1 <= len(best) <= 3:
        msg = (f"trajectories need 1 to 3 spatial dims besides 'sample' and 'time'; "
               f"variables have dims {[tuple(v.dims) for v in ds.data_vars.values()]}")
        raise ValueError(msg)
    for name, var in ds.data_vars.items():
        extra = [d for d in var.dims if d not in (*special, *best)]
        if extra:
            msg = (f"variable {name!r} has dims {var.dims}; {extra} are not among the spatial "
                   f"dims {tuple(best)}, 'sample', 'time', 'i', 'j'")
            raise ValueError(msg)
    return best


def _well_kind(dim: str, text: str) -> tuple[str, str, tuple[float, float] | None]:
    """Gridformer bc text -> (low Well type, high Well type, Dirichlet values or None)."""
    text = str(text).strip().lower()
    if text in WELL_BC_TYPES:
        return text, text, None
    if text == "neumann":
        return "wall", "wall", None
    if "/" in text:
        low, high = (t.strip() for t in text.split("/", 1))
        if low in WELL_BC_TYPES and high in WELL_BC_TYPES:
            return low, high, None
    match = _DIRICHLET.match(text)
    if match:
        values = (0.0, 0.0) if match.group(1) is None else (float(match.group(1)),
                                                           float(match.group(2)))
        return "wall", "wall", values
    msg = (f"boundary condition {text!r} for dim {dim!r} is not one of periodic, dirichlet, "
           f"dirichlet(low, high), neumann, wall, open or 'low/high' of periodic|wall|open")
    raise ValueError(msg)


def _bc_per_dim(ds: xr.Dataset, spatial: list[str], bc: Any) -> dict[str, str]:
    if bc is None:
        if all(d in ds.coords and "bc" in ds[d].attrs for d in spatial):
            bc = {d: ds[d].attrs["bc"] for d in spatial}
        elif "bc" in ds.attrs:
            text = str(ds.attrs["bc"])
            parts = [p.split(":", 1) for p in text.split(";")] if ":" in text else None
            bc = text if parts is None else {k.strip(): v.strip() for k, v in parts}
        else:
            msg = ("the data has no boundary conditions (no attrs['bc'], no 'bc' attr on the "
                   f"coordinates {spatial}); pass bc='periodic' or bc={{dim: kind}}")
            raise ValueError(msg)
    if isinstance(bc, str):
        bc = dict.fromkeys(spatial, bc)
    if not isinstance(bc, Mapping) or set(bc) != set(spatial):
        got = sorted(bc) if isinstance(bc, Mapping) else bc
        msg = f"bc={got!r} must be one text or name exactly the spatial dims {spatial}"
        raise ValueError(msg)
    for dim in spatial:
        _well_kind(dim, bc[dim])  # validate now, before the file is created
    return {d: str(bc[d]) for d in spatial}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_)


def _coord_values(ds: xr.Dataset, dim: str) -> np.ndarray:
    if dim in ds.coords:
        return np.asarray(ds[dim].values, dtype=np.float64)
    return np.arange(ds.sizes[dim], dtype=np.float64)


def _write_dimensions(f: h5py.File, ds: xr.Dataset, spatial: list[str], real: np.dtype) -> None:
    group = f.create_group("dimensions")
    group.attrs["spatial_dims"] = np.asarray(spatial, dtype=h5py.string_dtype())
    for dim in ["time", *spatial]:
        if dim not in ds.dims:
            msg = f"trajectories need a 'time' dim; dims are {tuple(ds.dims)}"
            raise ValueError(msg)
        dset = group.create_dataset(dim, data=_coord_values(ds, dim).astype(real))
        dset.attrs.update(h5_attrs(ds[dim].attrs if dim in ds.coords else {}))
        dset.attrs.update(sample_varying=False, time_varying=dim == "time")


def _write_bcs(f: h5py.File, ds: xr.Dataset, spatial: list[str], bcs: dict[str, str]) -> None:
    group = f.create_group("boundary_conditions")
    fields = np.asarray(list(map(str, ds.data_vars)), dtype=h5py.string_dtype())
    for dim in spatial:
        low, high, values = _well_kind(dim, bcs[dim])
        for kind in dict.fromkeys((low, high)):
            mask = np.zeros(ds.sizes[dim], dtype=bool)
            mask[0], mask[-1] = low == kind, high == kind
            sub = group.create_group(f"{dim}_{kind}")
            sub.attrs.update(bc_type=kind, sample_varying=False, time_varying=False,
                             associated_dims=np.asarray([dim], dtype=h5py.string_dtype()),
                             gridformer_bc=bcs[dim])
            sub.attrs["associated_fields"] = fields if values is not None else np.asarray(
                [], dtype=h5py.string_dtype())
            sub.create_dataset("mask", data=mask)
            if values is not None:
                sub.create_dataset("values", data=np.asarray(values, dtype=np.float64))


def _write_fields(f: h5py.File, ds: xr.Dataset, spatial: list[str], real: np.dtype,
                  numeric: dict[str, Any]) -> None:
    groups = {i: f.create_group(f"t{i}_fields") for i in range(3)}
    scalars = f.create_group("scalars")
    names: dict[int, list[str]] = {i: [] for i in (-1, 0, 1, 2)}
    for name, var in ds.data_vars.items():
        if not np.issubdtype(var.dtype, np.number):
            msg = f"variable {name!r} has dtype {var.dtype}; only numbers can be written"
            raise TypeError(msg)
        order = sum(d in var.dims for d in COMPONENT_DIMS)
        is_field = any(d in var.dims for d in spatial)
        lead = [d for d in ("sample", "time") if d in var.dims]
        dims = lead + [d for d in spatial if d in var.dims] + list(COMPONENT_DIMS[:order])
        target = groups[order] if is_field else scalars
        dset = target.create_dataset(str(name), shape=var.transpose(*dims).shape,
                                     dtype=real if is_field else np.float64)
        var = var.transpose(*dims)
        for b in range(var.sizes["sample"]) if "sample" in var.dims else [None]:
            part = var if b is None else var.isel(sample=b)
            dset[() if b is None else b] = np.asarray(part.values, dtype=dset.dtype)
        dset.attrs.update(h5_attrs({k: v for k, v in var.attrs.items()
                                    if k not in ("tensor_order", "components")}))
        dset.attrs.update(sample_varying="sample" in dims, time_varying="time" in dims)
        if is_field:
            dset.attrs["dim_varying"] = np.asarray([d in var.dims for d in spatial])
        names[order if is_field else -1].append(str(name))
    for key, value in numeric.items():
        if key in scalars:
            continue
        dset = scalars.create_dataset(key, data=np.asarray(value, dtype=np.float64))
        dset.attrs.update(sample_varying=False, time_varying=False)
        names[-1].append(key)
    for i, group in [*groups.items(), (-1, scalars)]:
        group.attrs["field_names"] = np.asarray(names[i], dtype=h5py.string_dtype())
