"""Lazy HDF5 arrays for xarray, and the checks shared by the PDE-benchmark formats.

The Well and PDEBench store plain HDF5 (no NetCDF dimension scales), so their readers build
``xr.Variable`` objects themselves. Each variable wraps an :class:`H5Array`, xarray's
documented extension point for backends: nothing is read until values are indexed, and the file
is opened through a :class:`xarray.backends.CachingFileManager` (reopened on demand, picklable
for dask workers, closed with ``Dataset.close()``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xarray as xr
from xarray.backends import BackendArray, CachingFileManager
from xarray.core import indexing

from gridformer._io import atomic_path

__all__ = [
    "H5Array",
    "H5File",
    "check_hdf5",
    "lazy_variable",
    "sniff_layout",
    "write_hdf5",
]

_MAGIC_HDF5 = b"\x89HDF\r\n\x1a\n"

PathLike = str | os.PathLike[str]


class H5Array(BackendArray):
    """One HDF5 dataset, read only when indexed (basic slicing; xarray does the rest)."""

    def __init__(self, manager: CachingFileManager, key: str, shape: tuple[int, ...],
                 dtype: np.dtype) -> None:
        self.manager = manager
        self.key = key
        self.shape = shape
        self.dtype = dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    def _read(self, key: tuple) -> np.ndarray:
        dataset = self.manager.acquire()[self.key]
        return np.asarray(dataset[key])


class H5File:
    """An HDF5 file opened for reading through a ``CachingFileManager``.

    ``file`` is the open ``h5py.File`` for reading metadata; :meth:`variable` wraps a dataset
    as a lazy ``xr.Variable``; :meth:`close` releases the handle (also ``Dataset.close()`` on a
    dataset made with :meth:`attach`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manager = CachingFileManager(h5py.File, str(path), mode="r")

    @property
    def file(self) -> h5py.File:
        return self.manager.acquire()

    def variable(self, key: str, dims: Sequence[str], attrs: dict | None = None) -> xr.Variable:
        """The dataset at ``key`` as a lazily indexed ``xr.Variable`` with ``dims``."""
        return lazy_variable(self.manager, self.file[key], dims, attrs)

    def attach(self, ds: xr.Dataset) -> xr.Dataset:
        """Let ``ds.close()`` close this file."""
        ds.set_close(self.close)
        return ds

    def close(self) -> None:
        self.manager.close()


def lazy_variable(manager: CachingFileManager, dataset: h5py.Dataset, dims: Sequence[str],
                  attrs: dict | None = None) -> xr.Variable:
    """Wrap ``dataset`` (read through ``manager``) as a lazy variable; ``dims`` must fit."""
    if len(dims) != dataset.ndim:
        msg = (f"HDF5 dataset {dataset.name!r} has shape {dataset.shape}; expected "
               f"{len(dims)} axes {tuple(dims)}")
        raise ValueError(msg)
    array = H5Array(manager, dataset.name, tuple(dataset.shape), dataset.dtype)
    return xr.Variable(tuple(dims), indexing.LazilyIndexedArray(array), attrs or {})


def check_hdf5(path: PathLike, what: str) -> Path:
    """``path`` as a ``Path`` after checking it exists and starts with the HDF5 signature."""
    p = Path(os.fspath(path))
    if not p.is_file():
        msg = f"{what} file not found: {str(p)!r}"
        raise FileNotFoundError(msg)
    with p.open("rb") as fh:
        head = fh.read(8)
    if head != _MAGIC_HDF5:
        msg = (f"{str(p)!r} is not an HDF5 file (it starts with {head[:4]!r}); {what} files "
               f"are HDF5 (.h5 / .hdf5)")
        raise ValueError(msg)
    return p


def sniff_layout(f: h5py.File) -> str | None:
    """``"the_well"``, ``"pdebench_arrays"``, ``"pdebench_samples"`` or ``None``."""
    keys = set(f.keys())
    if {"dimensions", "t0_fields"} <= keys:
        return "the_well"
    if "x-coordinate" in keys:
        return "pdebench_arrays"
    groups = [k for k in keys if isinstance(f[k], h5py.Group)]
    if groups and all("data" in f[k] for k in groups):
        return "pdebench_samples"
    return None


def attr_text(value: Any) -> Any:
    """HDF5 attribute values as plain Python: bytes to str, 0-d arrays to scalars."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return attr_text(value[()])
        if value.dtype.kind in "OSU":
            return [attr_text(v) for v in value.tolist()]
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def string_list(value: Any) -> list[str]:
    """An attribute that lists names (array of str/bytes, a single str, or empty)."""
    value = attr_text(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, np.ndarray):
        return [str(v) for v in value.tolist()]
    return [str(v) for v in value]


def h5_attrs(attrs: dict) -> dict:
    """xarray attrs that HDF5 can store: bools as numpy bools, None dropped, lists as arrays."""
    out = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, dict | set):
            msg = (f"attribute {key!r} is a {type(value).__name__}; HDF5 attributes hold "
                   f"numbers, strings and arrays of them")
            raise TypeError(msg)
        if isinstance(value, list | tuple):
            value = np.asarray(value)
            if value.dtype.kind == "U":
                value = value.astype(object)
        out[str(key)] = value
    return out


def write_hdf5(path: PathLike, fill: Callable[[h5py.File], None],
               *, suffixes: Iterable[str], what: str) -> Path:
    """Create ``path`` atomically with ``fill(h5py.File)``; its suffix must be in ``suffixes``."""
    p = Path(os.fspath(path))
    allowed = tuple(suffixes)
    if p.suffix.lower() not in allowed:
        msg = (f"path={str(p)!r}: {what} files must end in {' or '.join(allowed)} "
               f"(got suffix {p.suffix!r})")
        raise ValueError(msg)
    with atomic_path(p) as tmp, h5py.File(tmp, "w") as f:
        fill(f)
    return p
