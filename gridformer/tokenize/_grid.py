"""Per-token values back onto the grid (the work behind :meth:`TokenLayout.to_grid`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr

from gridformer.tokenize._inputs import to_numpy

if TYPE_CHECKING:
    from gridformer.tokenize.layout import TokenLayout

__all__ = ["values_to_grid"]


def _cell_coord(layout: TokenLayout, dim: str) -> tuple[np.ndarray, dict]:
    """Cell coordinate values and attrs of ``dim`` as the data had them (else the layout's)."""
    coords = getattr(layout.source, "coords", None)
    if coords is not None and dim in coords:
        return np.asarray(coords[dim].values), dict(coords[dim].attrs)
    return layout.coords[dim], {}


def _time_coord(layout: TokenLayout) -> np.ndarray | None:
    coords = getattr(layout.source, "coords", None)
    if coords is not None and layout.time_dim in coords:
        return np.asarray(coords[layout.time_dim].values)
    return None


def values_to_grid(
    layout: TokenLayout,
    values: torch.Tensor | np.ndarray,
    *,
    upsample: bool = False,
    name: str | None = None,
    dims: Sequence[str] | None = None,
) -> xr.DataArray:
    """See :meth:`TokenLayout.to_grid`."""
    values = to_numpy(values)
    if values.ndim == 0 or values.shape[-1] != layout.n_tokens:
        msg = (
            f"values of shape {values.shape} must end with the token axis of length "
            f"N={layout.n_tokens}"
        )
        raise ValueError(msg)
    lead = values.shape[:-1]
    lead_dims = tuple(dims) if dims is not None else tuple(f"dim_{i}" for i in range(len(lead)))
    if len(lead_dims) != len(lead):
        msg = f"dims={lead_dims!r} must name the {len(lead)} leading dims of values {values.shape}"
        raise ValueError(msg)
    frame_shape = (layout.n_frames,) if layout.is_spacetime else ()
    grid = values.reshape(*lead, *frame_shape, *layout.patch_grid_shape)  # (..., [F], *P)
    coords: dict[str, object] = {}
    time_values = _time_coord(layout) if layout.is_spacetime else None
    if not upsample:
        pc = layout.patch_coords()
        for dim in layout.spatial_dims:
            coords[dim] = (dim, pc[dim], _cell_coord(layout, dim)[1])
        frame_dims: tuple[str, ...] = ()
        if layout.is_spacetime:
            frame_dims = ("frame",)
            coords["frame"] = np.arange(layout.n_frames)
            if time_values is not None:
                starts = np.arange(layout.n_frames) * layout.time_patch
                coords[layout.time_dim] = ("frame", time_values[starts])
    else:
        axis0 = len(lead)
        if layout.is_spacetime:
            grid = np.repeat(grid, layout.time_patch, axis=axis0)[
                (slice(None),) * axis0
                + (slice(layout.time_padding[0], layout.time_padding[0] + layout.n_time),)
            ]
            axis0 += 1
        for d, dim in enumerate(layout.spatial_dims):
            before = layout.padding[d][0]
            grid = np.repeat(grid, layout.patch_size[d], axis=axis0 + d)
            index = (slice(None),) * (axis0 + d) + (slice(before, before + layout.grid_shape[d]),)
            grid = grid[index]
            coords[dim] = (dim, *_cell_coord(layout, dim))  # aligns with the data
        frame_dims = (layout.time_dim,) if layout.is_spacetime else ()
        if layout.is_spacetime and time_values is not None:
            coords[layout.time_dim] = time_values
    return xr.DataArray(
        grid, dims=(*lead_dims, *frame_dims, *layout.spatial_dims), coords=coords, name=name
    )
