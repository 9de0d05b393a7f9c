"""Maps carry units, colour bars and query marks; token grids put lines on patch boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gridformer import PatchTokenizer, plot
from gridformer.plot import _maps


@pytest.fixture
def correlation() -> xr.DataArray:
    lat = np.linspace(-80, 80, 9)
    lon = np.arange(0, 360, 30.0)
    values = np.cos(np.deg2rad(lat))[:, None] * np.sin(np.deg2rad(lon))[None]
    return xr.DataArray(values[None], dims=("time", "lat", "lon"),
                        coords={"lat": lat, "lon": lon},
                        attrs={"long_name": "correlation with the index", "units": "1"})


def test_map_has_units_colour_bar_and_query_mark(correlation, monkeypatch):
    monkeypatch.setattr(_maps, "coastline_file", lambda: None)
    fig = plot.field_map(correlation, query=(40.0, 210.0))
    ax, bar = fig.axes
    assert bar.get_label() == "<colorbar>"
    assert bar.get_ylabel() == "correlation with the index (dimensionless)"
    assert ax.get_xlabel() == "longitude (degrees_east)"
    assert ax.get_ylabel() == "latitude (degrees_north)"
    mesh = ax.collections[0]
    assert mesh.get_cmap().name == "RdBu_r"  # both signs: diverging, centred on 0
    low, high = mesh.get_clim()
    assert low == pytest.approx(-high)
    assert high == pytest.approx(float(abs(correlation).max()))
    np.testing.assert_allclose(mesh.get_array().reshape(9, 12), correlation.values[0])
    (star,) = [line for line in ax.lines if line.get_marker() == "*"]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (210.0, 40.0)
    assert ax.get_title() == "correlation with the index"


def test_positive_field_uses_a_sequential_map_with_its_units(correlation, monkeypatch):
    monkeypatch.setattr(_maps, "coastline_file", lambda: None)
    attention = (correlation**2).assign_attrs(long_name="attention weight", units="1 / token")
    fig = plot.field_map(attention, coastlines="auto")
    assert fig.axes[0].collections[0].get_cmap().name == "viridis"
    assert fig.axes[1].get_ylabel() == "attention weight (1 / token)"


def test_map_errors(correlation, monkeypatch):
    monkeypatch.setattr(_maps, "coastline_file", lambda: None)
    with pytest.raises(ValueError, match=r"coastlines=True needs cartopy .*never downloads"):
        plot.field_map(correlation, coastlines=True)
    with pytest.raises(ValueError, match=r"field must have dims \('lat', 'lon'\) .* got "
                                         r"\{'time': 2, 'lat': 9, 'lon': 12\}; select or average "
                                         r"over \['time'\]"):
        plot.field_map(xr.concat([correlation, correlation], "time"))


def write_coastline(folder, points) -> None:
    shapefile = pytest.importorskip("shapefile", reason="pyshp comes with cartopy")
    target = folder / "shapefiles" / "natural_earth" / "physical"
    target.mkdir(parents=True)
    with shapefile.Writer(str(target / "ne_110m_coastline"), shapeType=shapefile.POLYLINE) as w:
        w.field("name", "C")
        w.line([points])
        w.record("test coast")


def test_coastlines_from_cartopy_data_on_disk(correlation, tmp_path, monkeypatch):
    cartopy = pytest.importorskip("cartopy", reason="cartopy is an optional extra (maps)")
    points = [[-10.0, 40.0], [0.0, 50.0], [10.0, 55.0]]
    write_coastline(tmp_path, points)
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", tmp_path)
    fig = plot.field_map(correlation)
    ax = fig.axes[0]
    assert type(ax).__name__ == "GeoAxes"
    coast = [line for line in ax.lines if line.get_color() == "k"]
    assert len(coast) == 1
    np.testing.assert_allclose(np.c_[coast[0].get_xdata(), coast[0].get_ydata()], points)


@pytest.fixture
def field() -> xr.DataArray:
    """10 x 12 cells, spacing 1 m in y and 0.5 m in x."""
    rng = np.random.default_rng(0)
    x = xr.DataArray(np.arange(12) * 0.5, dims="x", attrs={"units": "m"})
    y = xr.DataArray(np.arange(10) * 1.0, dims="y", attrs={"units": "m"})
    return xr.DataArray(rng.random((10, 12)), dims=("y", "x"), coords={"y": y, "x": x},
                        name="u", attrs={"units": "K"})


def line_positions(ax) -> tuple[list[float], list[float]]:
    vertical = [line.get_xdata()[0] for line in ax.lines if line.get_xdata()[0] ==
                line.get_xdata()[1]]
    horizontal = [line.get_ydata()[0] for line in ax.lines if line.get_ydata()[0] ==
                  line.get_ydata()[1]]
    return vertical, horizontal


def test_token_lines_sit_on_patch_boundaries(field):
    _, layout = PatchTokenizer(patch_size=4).encode(field)
    fig = plot.token_grid(field, layout)
    ax, bar = fig.axes
    vertical, horizontal = line_positions(ax)
    # x: 12 cells of 0.5 m -> patches start at cells 0, 4, 8; edges half a cell before
    np.testing.assert_allclose(vertical, [-0.25, 1.75, 3.75, 5.75])
    # y: 10 cells padded to 12 at the end -> boundaries at cells 0, 4, 8 and the grid's end
    np.testing.assert_allclose(horizontal, [-0.5, 3.5, 7.5, 9.5])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x (m)", "y (m)")
    assert bar.get_ylabel() == "u (K)"
    assert ax.get_title() == "9 tokens of 4 x 4 cells"
    again = plot.token_grid(field, patch_size=4)  # the same lines without a layout
    assert line_positions(again.axes[0]) == (vertical, horizontal)


def test_tokens_without_valid_cells_are_hatched(field):
    holes = field.where((field.y < 4) | (field.x < 4))  # NaN in patch rows 1, 2 of column 2
    _, layout = PatchTokenizer(patch_size=4).encode(holes)
    ax = plot.token_grid(holes, layout).axes[0]
    hatched = [(p.get_x(), p.get_y()) for p in ax.patches if p.get_hatch() == "xx"]
    assert sorted(hatched) == [(3.75, 3.5), (3.75, 7.5)]


def test_1d_token_grid_and_errors(field):
    line = field.isel(y=0)
    ax = plot.token_grid(line, patch_size=5).axes[0]
    vertical, _ = line_positions(ax)
    np.testing.assert_allclose(vertical, [-0.25, 2.25, 4.75, 5.75])  # 5 + 5 + 2 cells
    with pytest.raises(ValueError, match=r"give exactly one of layout= .* or patch_size="):
        plot.token_grid(field)
    with pytest.raises(ValueError, match=r"field must be 1-D or 2-D after dropping size-1 "
                                         r"dims, got \{'t': 2, 'y': 10, 'x': 12\}"):
        plot.token_grid(xr.concat([field, field], "t"), patch_size=4)
