"""``plot.teleconnection``: the attention map, optionally beside the correlation map."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gridformer import plot


def _map(values, name, units="1"):
    lat = np.linspace(-75, 75, values.shape[0])
    lon = np.linspace(15, 345, values.shape[1])
    return xr.DataArray(values, dims=("lat", "lon"), name=name,
                        coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                                "lon": ("lon", lon, {"units": "degrees_east"})},
                        attrs={"units": units, "long_name": name, "query": "class token"})


def test_attention_beside_correlation_with_units_and_geographic_axes():
    rng = np.random.default_rng(0)
    attention = _map(rng.random((6, 12)), "attention")
    attention = attention.assign_coords(spread=attention * 0.1)
    correlation = _map(rng.uniform(-0.5, 0.9, (6, 12)), "correlation with index")
    fig = plot.teleconnection(attention, correlation, query=(45.0, 300.0),
                              box=(-10, 10, 190, 210), coastlines=False)
    assert isinstance(fig, Figure)
    maps = [ax for ax in fig.axes if ax.get_xlabel()]
    assert [ax.get_title() for ax in maps] == ["attention from class token",
                                               "correlation with index"]
    assert {ax.get_xlabel() for ax in maps} == {"longitude (degrees_east)"}
    assert {ax.get_ylabel() for ax in maps} == {"latitude (degrees_north)"}
    bars = [ax.get_ylabel() for ax in fig.axes if not ax.get_xlabel()]
    assert bars == ["attention weight (dimensionless)", "correlation (dimensionless)"]
    # the correlation panel is centred on zero: the colour scale is symmetric
    mesh = maps[1].collections[0]
    assert mesh.norm.vmin == pytest.approx(-mesh.norm.vmax)
    assert mesh.norm.vmax == pytest.approx(0.9, abs=1e-2)
    # the box is outlined on both panels, the query starred
    for ax in maps:
        outline = [line for line in ax.get_lines() if line.get_color() == "crimson"]
        np.testing.assert_allclose(outline[0].get_xdata(), [190, 210, 210, 190, 190])
        stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
        np.testing.assert_allclose(stars[0].get_xydata(), [[300.0, 45.0]])


def test_draws_into_given_axes_and_refuses_bad_input():
    attention = _map(np.ones((3, 4)), "attention")
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.teleconnection(attention, ax=ax, coastlines=False) is fig
    assert isinstance(fig.axes[0], Axes)
    with pytest.raises(TypeError, match=r"attention must be an xr.DataArray over \(lat, lon\), "
                                        r"not ndarray"):
        plot.teleconnection(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"ax must be a sequence of 2 Axes \(attention, "
                                         r"correlation\)"):
        plot.teleconnection(attention, attention, ax=ax, coastlines=False)
    with pytest.raises(ValueError, match=r"query=\(1.0,\) must be a \(lat, lon\) point"):
        plot.teleconnection(attention, query=(1.0,), coastlines=False)
