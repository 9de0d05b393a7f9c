"""A teleconnection map, optionally beside the correlation map it is compared with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gridformer.plot._axes import axes_for
from gridformer.plot._maps import _coastlines_wanted, field_map

__all__ = ["teleconnection"]


def teleconnection(
    attention: xr.DataArray,
    correlation: xr.DataArray | None = None,
    *,
    query: tuple[float, float] | None = None,
    box: Sequence[float] | None = None,
    coastlines: bool | str = "auto",
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Draw a ``teleconnection_map`` and, optionally, a correlation map beside it.

    Parameters
    ----------
    attention
        ``(lat, lon)`` map from :func:`gridformer.analysis.teleconnection_map` (token grid or
        upsampled); the ``query`` attr titles the panel.
    correlation
        ``(lat, lon)`` map from :func:`gridformer.analysis.correlation_map`, drawn on a
        diverging scale centred on 0 in a second panel.
    query
        ``(lat, lon)`` of a query point to mark with a star on both panels.
    box
        ``(lat0, lat1, lon0, lon1)`` of a region to outline on both panels (e.g. a query box or
        a known source region).
    coastlines
        As in :func:`field_map`: ``"auto"`` draws them only when cartopy and its data are
        already installed.
    ax
        One Axes (attention only) or two (attention, correlation) to draw into; default: a new
        figure with one or two panels.

    Returns
    -------
    matplotlib.figure.Figure
        Panels with longitude / latitude axes in degrees and colour bars with units.
    """
    if not isinstance(attention, xr.DataArray):
        msg = f"attention must be an xr.DataArray over (lat, lon), not {type(attention).__name__}"
        raise TypeError(msg)
    if correlation is not None and not isinstance(correlation, xr.DataArray):
        msg = (f"correlation must be None or an xr.DataArray over (lat, lon), not "
               f"{type(correlation).__name__}")
        raise TypeError(msg)
    n = 1 if correlation is None else 2
    names = ["attention", "correlation"][:n]
    subplot_kw: dict[str, Any] = {}
    if ax is None and _coastlines_wanted(coastlines) is not None:
        import cartopy.crs as ccrs

        subplot_kw = {"projection": ccrs.PlateCarree()}
    fig, axes = axes_for(ax, n, names=names, panel_size=(6.4, 3.6), **subplot_kw)
    if query is not None and len(query) != 2:
        msg = f"query={query!r} must be a (lat, lon) point"
        raise ValueError(msg)
    point = None if query is None else (float(query[0]), float(query[1]))
    title = f"attention from {attention.attrs.get('query', 'the query')}"
    shown = attention.drop_vars("spread", errors="ignore").copy()
    shown.attrs = {"long_name": "attention weight", "units": attention.attrs.get("units", "1")}
    field_map(shown, query=point, coastlines=coastlines, cmap="viridis", title=title,
              ax=axes[0])
    if correlation is not None:
        corr = correlation.copy()
        corr.attrs = {"long_name": "correlation", "units": correlation.attrs.get("units", "1")}
        field_map(corr, query=point, coastlines=coastlines, center=0.0,
                  title=str(correlation.attrs.get("long_name", "correlation")), ax=axes[1])
    if box is not None:
        for axis in axes:
            _outline(axis, box)
    return fig


def _outline(axis: Axes, box: Sequence[float]) -> None:
    if len(box) != 4:
        msg = f"box={box!r} must be (lat0, lat1, lon0, lon1)"
        raise ValueError(msg)
    lat0, lat1, lon0, lon1 = (float(v) for v in box)
    transform: dict[str, Any] = {}
    if hasattr(axis, "projection"):  # a cartopy GeoAxes
        import cartopy.crs as ccrs

        transform = {"transform": ccrs.PlateCarree()}
    axis.plot([lon0, lon1, lon1, lon0, lon0], [lat0, lat0, lat1, lat1, lat0], color="crimson",
              linewidth=1.4, **transform)
