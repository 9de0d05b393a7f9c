"""Maps on longitude/latitude: attention, teleconnection and correlation maps with units.

Coastlines come from cartopy's Natural Earth files when cartopy is installed and the files are
already on disk (``cartopy.config["pre_existing_data_dir"]`` or ``["data_dir"]``): nothing is
ever downloaded. Without them the map is a plain longitude/latitude plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gridformer.plot._axes import axes_for, colorbar, label

__all__ = ["coastline_file", "field_map"]

_COASTLINE = Path("shapefiles", "natural_earth", "physical", "ne_110m_coastline.shp")


def coastline_file() -> Path | None:
    """The Natural Earth 1:110m coastline shapefile if cartopy and that file are installed."""
    try:
        import cartopy
    except ImportError:
        return None
    for key in ("pre_existing_data_dir", "data_dir"):
        folder = cartopy.config.get(key)
        if folder and (Path(folder) / _COASTLINE).is_file():
            return Path(folder) / _COASTLINE
    return None


def field_map(
    field: xr.DataArray,
    *,
    query: tuple[float, float] | None = None,
    coastlines: bool | str = "auto",
    cmap: str | None = None,
    center: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw a ``(lat, lon)`` field, e.g. a teleconnection or correlation map, with a colour bar.

    Parameters
    ----------
    field
        ``xr.DataArray`` with dims ``lat`` and ``lon`` (in degrees; size-1 other dims are
        dropped). Its ``long_name``/``units`` attrs label the colour bar.
    query
        ``(lat, lon)`` of a query point to mark with a star (e.g. the attention query).
    coastlines
        ``"auto"``: draw them when cartopy and its coastline data are installed; ``True``:
        require them (``ValueError`` when missing); ``False``: never.
    cmap
        Colour map; default ``"RdBu_r"`` centred on ``center`` (default 0) for fields with
        both signs, ``"viridis"`` otherwise.
    center
        Value at the middle of a diverging colour map.
    title
        Axes title (default: the field's long name or name).
    ax
        Axes to draw into (a cartopy ``GeoAxes`` or a plain one); default: a new figure, on a
        cartopy PlateCarree map when coastlines are drawn.

    Returns
    -------
    matplotlib.figure.Figure
        The map, axes labelled ``longitude (degrees_east)`` / ``latitude (degrees_north)``.
    """
    da = _lat_lon(field)
    shapefile = _coastlines_wanted(coastlines)
    subplot_kw: dict[str, Any] = {}
    transform: dict[str, Any] = {}
    if shapefile is not None:
        import cartopy.crs as ccrs

        transform = {"transform": ccrs.PlateCarree()}
        if ax is None:
            subplot_kw = {"projection": ccrs.PlateCarree()}
    fig, (axis,) = axes_for(ax, 1, names=["map"], panel_size=(7.0, 3.8), **subplot_kw)
    values = np.asarray(da.values, dtype=float)
    finite = values[np.isfinite(values)]
    signs = finite.size and finite.min() < (center or 0.0) < finite.max()
    if cmap is None:
        cmap = "RdBu_r" if signs or center is not None else "viridis"
    norm_kw: dict[str, float] = {}
    if cmap == "RdBu_r" or center is not None:
        mid = 0.0 if center is None else center
        half = float(np.max(np.abs(finite - mid))) if finite.size else 1.0
        norm_kw = {"vmin": mid - half, "vmax": mid + half}
    mesh = axis.pcolormesh(da["lon"].values, da["lat"].values, values, cmap=cmap,
                           shading="nearest", **norm_kw, **transform)
    if shapefile is not None:
        _draw_coastlines(axis, shapefile, transform)
    if query is not None:
        axis.plot(query[1], query[0], marker="*", markersize=14, color="gold",
                  markeredgecolor="k", linestyle="none", label="query", **transform)
    colorbar(fig, mesh, axis, label(da, "value"))
    _geo_labels(axis, da)
    axis.set_title(title if title is not None else str(da.attrs.get("long_name", da.name or "")))
    return fig


def _lat_lon(field: Any) -> xr.DataArray:
    if not isinstance(field, xr.DataArray):
        msg = f"field must be an xr.DataArray over ('lat', 'lon'), not {type(field).__name__}"
        raise TypeError(msg)
    extra = [d for d in field.dims if d not in ("lat", "lon") and field.sizes[d] > 1]
    if extra or not {"lat", "lon"} <= set(field.dims):
        msg = (f"field must have dims ('lat', 'lon') (size-1 others are dropped), got "
               f"{dict(field.sizes)}; select or average over {extra or 'the other dims'} first")
        raise ValueError(msg)
    da = field.squeeze([d for d in field.dims if d not in ("lat", "lon")], drop=True)
    for dim in ("lat", "lon"):
        if dim not in da.coords:
            msg = f"field needs a {dim!r} coordinate in degrees to be drawn as a map"
            raise ValueError(msg)
    return da.transpose("lat", "lon")


def _coastlines_wanted(coastlines: bool | str) -> Path | None:
    if coastlines not in (True, False, "auto"):
        msg = f"coastlines={coastlines!r} must be True, False or 'auto'"
        raise ValueError(msg)
    if coastlines is False:
        return None
    path = coastline_file()
    if path is None and coastlines is True:
        msg = ("coastlines=True needs cartopy (pip install 'gridformer[maps]') and its Natural "
               "Earth 110m coastline file in cartopy.config['pre_existing_data_dir'] or "
               "['data_dir'] (gridformer never downloads it); use coastlines='auto' to skip")
        raise ValueError(msg)
    return path


def _draw_coastlines(ax: Axes, shapefile: Path, transform: dict) -> None:
    from cartopy.io import shapereader

    for geometry in shapereader.Reader(str(shapefile)).geometries():
        for line in getattr(geometry, "geoms", [geometry]):
            lon, lat = np.asarray(line.xy[0]), np.asarray(line.xy[1])
            ax.plot(lon, lat, color="k", linewidth=0.6, **transform)


def _geo_labels(ax: Axes, da: xr.DataArray) -> None:
    if hasattr(ax, "gridlines"):  # a cartopy GeoAxes has no tick labels by default
        grid = ax.gridlines(draw_labels=True, linewidth=0.3, alpha=0.5)
        grid.top_labels = grid.right_labels = False
    ax.set_xlabel(f"longitude ({da['lon'].attrs.get('units', 'degrees_east')})")
    ax.set_ylabel(f"latitude ({da['lat'].attrs.get('units', 'degrees_north')})")
