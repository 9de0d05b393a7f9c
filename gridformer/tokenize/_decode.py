"""Tokens ``(B, N, D)`` back to the DataArray / Dataset they came from (see decode)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr

from gridformer.tokenize._inputs import to_numpy
from gridformer.tokenize._patchify import unpatchify

if TYPE_CHECKING:
    from gridformer.tokenize.layout import TokenLayout

__all__ = ["decode_tokens"]


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        return np.rint(values).astype(dtype) if dtype != np.bool_ else values.astype(bool)
    return values.astype(dtype, copy=False)


def decode_tokens(
    tokens: torch.Tensor | np.ndarray, layout: TokenLayout
) -> xr.DataArray | xr.Dataset:
    """See :meth:`PatchTokenizer.decode`."""
    src = layout.source
    if src is None:
        msg = "this layout has no source data (made by TokenLayout.for_grid); use layout.to_grid()"
        raise ValueError(msg)
    values = to_numpy(tokens)
    n_batch = int(np.prod(src.batch_shape))
    patch = (layout.time_patch, *layout.patch_size)
    d = src.n_channels * int(np.prod(patch))
    if values.shape != (n_batch, layout.n_tokens, d):
        msg = (
            f"tokens of shape {tuple(values.shape)} do not match the layout: expected "
            f"(B={n_batch}, N={layout.n_tokens}, D={d})"
        )
        raise ValueError(msg)
    if src.cell_missing is not None:
        values = np.where(src.cell_missing.numpy(), np.nan, values)
    spans = (layout.n_time, *layout.grid_shape)
    pads = (layout.time_padding, *layout.padding)
    arr = unpatchify(values, src.n_channels, patch, pads, spans)  # (B, C, T, *S)
    shape = [*src.batch_shape]
    dims = [*src.batch_dims]
    if src.channel_dim is not None:
        shape.append(src.n_channels)
        dims.append(src.channel_dim)
    if layout.time_dim is not None:
        shape.append(layout.n_time)
        dims.append(layout.time_dim)
    shape.extend(layout.grid_shape)
    dims.extend(layout.spatial_dims)
    arr = np.ascontiguousarray(arr.reshape(shape))

    if src.kind == "dataset":
        channel_axis = dims.index(src.channel_dim)
        var_dims = [x for x in dims if x != src.channel_dim]
        data_vars = {}
        for i, name in enumerate(src.variables):
            part = _cast(np.take(arr, i, axis=channel_axis), np.dtype(src.var_dtypes[name]))
            var = xr.Variable(var_dims, part, attrs=src.var_attrs[name])
            data_vars[name] = var.transpose(*src.var_dims[name])
        out = xr.Dataset(data_vars, coords=src.coords, attrs=src.attrs)
        return out.reset_coords(list(src.auxiliary)) if src.auxiliary else out

    out = xr.DataArray(_cast(arr, src.dtype), dims=dims).transpose(*src.dims)
    if src.coords is not None:
        out = out.assign_coords(src.coords)
    out.attrs = dict(src.attrs)
    out.name = src.name
    return out
