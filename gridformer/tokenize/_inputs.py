"""Input normalisation for the tokenizer: DataArray / Dataset / ndarray / tensor -> DataArray.

Also holds :class:`SourceInfo`, what :meth:`PatchTokenizer.decode` needs to rebuild the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

__all__ = [
    "SourceInfo",
    "as_dataarray",
    "find_spatial_dims",
    "is_truthy",
    "to_numpy",
    "token_dtype",
    "without_auxiliary",
]

SPATIAL_CANDIDATES = (("lat", "lon"), ("y", "x"), ("x",))
DATASET_CHANNEL_DIM = "variable"


@dataclass(frozen=True, eq=False)
class SourceInfo:
    """Everything about the encoded input that the tokens themselves do not carry.

    Attributes
    ----------
    kind : str
        ``"dataarray"``, ``"dataset"`` or ``"array"`` (ndarray / tensor with ``dims=``).
    dims : tuple of str
        Original dim order.
    batch_dims, batch_shape
        Dims flattened (row-major, in their original order) into the token batch axis ``B``.
    channel_dim : str or None
        Dim stacked into the token features (``"variable"`` for a Dataset).
    n_channels : int
    coords : xr.Coordinates or None
        Original coordinates (with attrs).
    name, attrs, dtype
        Of the DataArray (``dtype``: NumPy dtype restored by decode).
    variables : tuple of str
        Dataset variable names, in channel order.
    var_attrs, var_dtypes, var_dims : dict
        Per-variable attrs, dtypes and dim orders of a Dataset.
    auxiliary : tuple of str
        Data variables of a Dataset that CF marks as auxiliary (bounds, grid mapping, ...):
        carried as coordinates, not tokenized, and made data variables again by decode.
    cell_missing : torch.Tensor or None
        ``(B, N, D)`` bool, True for NaN cells (and padding), None when the input had no NaN.
    """

    kind: str
    dims: tuple[str, ...]
    batch_dims: tuple[str, ...]
    batch_shape: tuple[int, ...]
    channel_dim: str | None
    n_channels: int
    coords: xr.Coordinates | None
    name: Any = None
    attrs: dict = field(default_factory=dict)
    dtype: np.dtype = field(default_factory=lambda: np.dtype("float32"))
    variables: tuple[str, ...] = ()
    var_attrs: dict = field(default_factory=dict)
    var_dtypes: dict = field(default_factory=dict)
    var_dims: dict = field(default_factory=dict)
    auxiliary: tuple[str, ...] = ()
    cell_missing: torch.Tensor | None = field(default=None, repr=False)


def is_truthy(value: Any) -> bool:
    """Interpret attrs such as ``periodic=1``, ``"true"``, ``True`` (NetCDF has no bool)."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "y", "periodic"}
    try:
        return bool(value)
    except (TypeError, ValueError):
        return False


def to_numpy(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """A tensor (any device; bfloat16 as float32, which holds it exactly) or array as NumPy."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.dtype == torch.bfloat16:  # NumPy has no bfloat16
            values = values.float()
        return values.numpy()
    return np.asarray(values)


_EXACT_IN_FLOAT32 = 2  # ints of at most this many bytes are exact in float32 (24-bit mantissa)


def token_dtype(dtype: np.dtype, requested: torch.dtype | None, tensor_dtype=None) -> torch.dtype:
    """The token dtype: ``requested``, else the input's float dtype, so decode is exact.

    float16/float32/float64 (and bfloat16 tensors, ``tensor_dtype``) are kept; bools and ints of
    up to 16 bits become float32, wider ints float64 (exact up to 2**53).

    Raises
    ------
    TypeError
        The data are not real numbers (complex, strings, objects, dates).
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        msg = (
            f"cannot tokenize data of dtype {dtype}: tokens hold real numbers (bool, int or "
            f"float); split complex data into real and imaginary parts first"
        )
        raise TypeError(msg)
    if requested is not None:
        return requested
    if tensor_dtype == torch.bfloat16:
        return torch.bfloat16
    if dtype.kind == "f":
        return {2: torch.float16, 4: torch.float32}.get(dtype.itemsize, torch.float64)
    return torch.float32 if dtype.itemsize <= _EXACT_IN_FLOAT32 else torch.float64


def _dataset_to_dataarray(ds: xr.Dataset) -> xr.DataArray:
    names = list(ds.data_vars)
    if not names:
        msg = "the Dataset has no data variables to tokenize"
        raise ValueError(msg)
    ref = ds[names[0]]
    for name in names[1:]:
        var = ds[name]
        if set(var.dims) != set(ref.dims) or any(var.sizes[d] != ref.sizes[d] for d in ref.dims):
            msg = (
                f"Dataset variables do not share the grid: {names[0]!r} has dims "
                f"{dict(ref.sizes)} but {name!r} has {dict(var.sizes)}; select variables on one "
                f"grid, e.g. ds[[{names[0]!r}, ...]]"
            )
            raise ValueError(msg)
    if DATASET_CHANNEL_DIM in ref.dims:
        msg = f"Dataset variables already use the dim name {DATASET_CHANNEL_DIM!r}; rename it"
        raise ValueError(msg)
    stacked = xr.concat(
        [ds[n].transpose(*ref.dims) for n in names],
        dim=DATASET_CHANNEL_DIM,
        coords="minimal",
        compat="override",
        join="exact",
    )
    return stacked.assign_coords({DATASET_CHANNEL_DIM: names})


def without_auxiliary(ds: xr.Dataset) -> tuple[xr.Dataset, tuple[str, ...]]:
    """``ds`` with its CF auxiliary data variables (bounds, grid mapping, ...) made coordinates.

    Returns the dataset and the names moved, for decode to move back.
    """
    # imported here: arrays and DataArrays tokenize without cf_xarray (GPU machines lack it)
    from gridformer._cf import auxiliary_variables

    names = tuple(auxiliary_variables(ds))
    return (ds.set_coords(list(names)) if names else ds), names


def as_dataarray(
    data: xr.DataArray | xr.Dataset | np.ndarray | torch.Tensor,
    dims: Sequence[str] | None,
    channel_dim: str | None,
) -> tuple[xr.DataArray, str, str | None]:
    """Return ``(dataarray, kind, channel_dim)`` for any supported input.

    A Dataset must have had its auxiliary variables moved to coordinates first
    (:func:`without_auxiliary`).
    """
    if isinstance(data, xr.Dataset):
        if channel_dim not in (None, DATASET_CHANNEL_DIM):
            msg = (
                f"channel_dim={channel_dim!r} cannot be used with a Dataset: its variables become "
                f"the channels (dim {DATASET_CHANNEL_DIM!r})"
            )
            raise ValueError(msg)
        return _dataset_to_dataarray(data), "dataset", DATASET_CHANNEL_DIM
    if isinstance(data, xr.DataArray):
        if dims is not None and tuple(dims) != data.dims:
            msg = f"dims={tuple(dims)!r} given for a DataArray with dims {data.dims!r}; drop dims="
            raise ValueError(msg)
        return data, "dataarray", channel_dim
    if isinstance(data, torch.Tensor):
        data = to_numpy(data)
    if isinstance(data, np.ndarray) or hasattr(data, "__array__"):
        if dims is None:
            msg = (
                f"an array of shape {np.shape(data)} has no dim names; pass dims=, e.g. "
                f"dims=('time', 'y', 'x')"
            )
            raise TypeError(msg)
        dims = tuple(dims)
        if len(dims) != np.ndim(data):
            msg = f"dims={dims!r} has {len(dims)} names but the array has shape {np.shape(data)}"
            raise ValueError(msg)
        return xr.DataArray(data, dims=dims), "array", channel_dim
    msg = (
        f"cannot tokenize data of type {type(data).__name__}; expected xr.DataArray, xr.Dataset, "
        f"np.ndarray or torch.Tensor"
    )
    raise TypeError(msg)


def find_spatial_dims(dims: Sequence[str], requested: Sequence[str] | None) -> tuple[str, ...]:
    """The spatial dims: ``requested`` if given (checked), else lat/lon, y/x or x, in that order."""
    dims = tuple(dims)
    if requested is not None:
        requested = (requested,) if isinstance(requested, str) else tuple(requested)
        missing = [d for d in requested if d not in dims]
        if missing:
            msg = f"spatial dims {missing} are not dims of the data; the data has dims {dims!r}"
            raise ValueError(msg)
        if not requested:
            msg = "spatial_dims must name at least one dim"
            raise ValueError(msg)
        return requested
    for candidate in SPATIAL_CANDIDATES:
        if all(d in dims for d in candidate):
            return candidate
    msg = (
        f"no spatial dims found among the data dims {dims!r}: expected ('lat', 'lon'), ('y', 'x') "
        f"or ('x',). Pass spatial_dims= to PatchTokenizer, or open NetCDF files with "
        f"gridformer.datasets.open_dataset, which renames latitude/longitude to lat/lon"
    )
    raise ValueError(msg)
