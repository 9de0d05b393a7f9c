"""A field with the token grid drawn over it: where each patch token starts and ends."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from gridformer.plot._axes import axes_for, colorbar, label

__all__ = ["patch_edges", "token_grid"]


def patch_edges(layout: Any, dim: str) -> np.ndarray:
    """Coordinates of the patch boundaries along ``dim`` (cell edges, clipped to the grid).

    Patches start every ``patch_size`` cells from ``-padding_before``; a boundary lies on the
    edge between two cells (midway between their centres; half a spacing beyond the ends).
    """
    i = layout.spatial_dims.index(dim)
    size, patch, (before, _) = layout.grid_shape[i], layout.patch_size[i], layout.padding[i]
    starts = np.arange(-before, size + 1, patch)
    cells = np.unique(np.clip(np.append(starts, size), 0, size))
    return _cell_edges(np.asarray(layout.coords[dim], dtype=float))[cells]


def token_grid(
    field: xr.DataArray,
    layout: Any = None,
    *,
    patch_size: int | tuple[int, ...] | None = None,
    sample: int = 0,
    cmap: str = "viridis",
    line_color: str = "w",
    ax: Axes | None = None,
) -> Figure:
    """Draw a 1-D or 2-D field with the boundaries of its patch tokens.

    Parameters
    ----------
    field
        ``xr.DataArray`` over the layout's spatial dims (size-1 other dims are dropped).
    layout
        The ``TokenLayout`` from ``PatchTokenizer.encode`` (padding and coordinates included);
        or leave it out and give ``patch_size``.
    patch_size
        Cells per patch, for a layout made here with ``TokenLayout.for_grid``.
    sample
        Which row of ``layout.valid`` marks invalid tokens (hatched) when the batch has several.
    cmap, line_color
        Colour map of the field and colour of the patch boundaries.
    ax
        Axes to draw into; default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The field (``pcolormesh`` with a colour bar in 2-D, a line in 1-D) with one line per
        patch boundary; axis labels name the dims and their units.
    """
    da = _squeeze(field)
    layout = _layout(da, layout, patch_size)
    dims = tuple(layout.spatial_dims)
    if set(dims) != set(da.dims):
        msg = f"field dims {da.dims} differ from the layout's spatial dims {dims}"
        raise ValueError(msg)
    da = da.transpose(*dims)
    fig, (axis,) = axes_for(ax, 1, names=["field"], panel_size=(6.0, 4.2))
    coords = {d: np.asarray(layout.coords[d], dtype=float) for d in dims}
    if len(dims) == 1:
        axis.plot(coords[dims[0]], da.values, color="tab:blue")
        for edge in patch_edges(layout, dims[0]):
            axis.axvline(edge, color="0.4", linewidth=0.8, linestyle="--")
        axis.set_ylabel(label(da, "value"))
    else:
        rows, cols = dims
        mesh = axis.pcolormesh(_cell_edges(coords[cols]), _cell_edges(coords[rows]), da.values,
                               cmap=cmap, shading="flat")
        colorbar(fig, mesh, axis, label(da, "value"))
        for edge in patch_edges(layout, cols):
            axis.axvline(edge, color=line_color, linewidth=0.8)
        for edge in patch_edges(layout, rows):
            axis.axhline(edge, color=line_color, linewidth=0.8)
        _hatch_invalid(axis, layout, sample)
        axis.set_ylabel(_dim_label(da, rows))
    axis.set_xlabel(_dim_label(da, dims[-1]))
    n = int(np.prod([len(patch_edges(layout, d)) - 1 for d in dims]))
    axis.set_title(f"{n} tokens of {' x '.join(map(str, layout.patch_size))} cells")
    return fig


def _squeeze(field: Any) -> xr.DataArray:
    if not isinstance(field, xr.DataArray):
        msg = f"field must be an xr.DataArray, not {type(field).__name__}"
        raise TypeError(msg)
    da = field.squeeze(drop=True)
    if da.ndim not in (1, 2):
        msg = (f"field must be 1-D or 2-D after dropping size-1 dims, got {dict(field.sizes)}; "
               f"select one time/sample first")
        raise ValueError(msg)
    return da


def _layout(da: xr.DataArray, layout: Any, patch_size: Any) -> Any:
    if (layout is None) == (patch_size is None):
        msg = "give exactly one of layout= (a TokenLayout) or patch_size="
        raise ValueError(msg)
    if layout is not None:
        return layout
    from gridformer.tokenize import TokenLayout

    coords = {d: np.asarray(da[d].values, dtype=float) for d in da.dims if d in da.coords}
    return TokenLayout.for_grid(da.shape, patch_size, dims=da.dims, coords=coords,
                                periodic=False)


def _cell_edges(centres: np.ndarray) -> np.ndarray:
    c = np.asarray(centres, dtype=float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def _hatch_invalid(ax: Axes, layout: Any, sample: int) -> None:
    valid = getattr(layout, "valid", None)
    if valid is None or bool(valid.all()):
        return
    rows, cols = layout.spatial_dims
    row_edges, col_edges = patch_edges(layout, rows), patch_edges(layout, cols)
    n_rows, n_cols = len(row_edges) - 1, len(col_edges) - 1
    flags = np.asarray(valid[min(sample, valid.shape[0] - 1)])[: n_rows * n_cols]
    for token in np.flatnonzero(~flags.astype(bool)):
        r, c = divmod(int(token), n_cols)
        ax.add_patch(Rectangle((col_edges[c], row_edges[r]), col_edges[c + 1] - col_edges[c],
                               row_edges[r + 1] - row_edges[r], fill=False, hatch="xx",
                               edgecolor="0.5", linewidth=0))


def _dim_label(da: xr.DataArray, dim: str) -> str:
    if dim not in da.coords:
        return f"{dim} (cell index)"
    units = da[dim].attrs.get("units")
    return f"{dim} ({units})" if units else dim
