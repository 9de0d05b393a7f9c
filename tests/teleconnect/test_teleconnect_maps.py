"""Maps and their comparison: token-grid averages, peaks, masses, lagged correlation."""

from __future__ import annotations

import numpy as np
import xarray as xr

from gridformer import datasets
from gridformer.teleconnect import TeleconnectConfig, region_mass, setup, to_tokens
from gridformer.teleconnect.maps import map_metrics

from ._helpers import planted


def _ready(tmp_path, **kw):
    ds = planted(80).drop_vars(["source_mask", "target_mask"])
    path = tmp_path / "p.nc"
    datasets.write_netcdf(ds, path)
    config = TeleconnectConfig(**{"inputs": ("x",), "target": "target_index", **kw})
    return setup(path, config), ds


def test_correlation_map_is_the_lagged_pearson_correlation(tmp_path):
    ready, _ = _ready(tmp_path, lead=2)
    x = ready.prepared.inputs["x"].values  # (T, lat, lon), standardised
    t = ready.prepared.target.values  # (T,)
    a, b = x[:-2], t[2:]  # x(t) against target(t + 2)
    a = a - a.mean(0)
    b = b - b.mean()
    expected = (a * b[:, None, None]).sum(0) / np.sqrt((a**2).sum(0) * (b**2).sum())
    np.testing.assert_allclose(ready.correlation.values, expected, atol=1e-10)


def test_to_tokens_averages_each_patch_and_skips_nan_cells(tmp_path):
    ready, _ = _ready(tmp_path)
    field = ready.correlation.copy()
    field[0, 0] = np.nan
    tokens = to_tokens(field, ready.prepared)
    assert tokens.dims == ("lat", "lon")
    assert tokens.shape == (6, 12)
    blocks = field.values.reshape(6, 2, 12, 2)
    expected = np.nanmean(blocks.transpose(0, 2, 1, 3).reshape(6, 12, 4), axis=-1)
    np.testing.assert_allclose(tokens.values, expected)
    np.testing.assert_allclose(tokens["lat"], field["lat"].values.reshape(6, 2).mean(1))


def test_map_metrics_on_a_known_map():
    lat, lon = np.array([-45.0, 0.0, 45.0]), np.array([60.0, 180.0, 300.0])
    corr = xr.DataArray([[0.1, 0.2, 0.0], [0.0, 0.9, 0.5], [0.1, 0.0, 0.0]],
                        dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    attention = xr.DataArray([[0.0, 0.1, 0.0], [0.0, 0.6, 0.2], [0.1, 0.0, 0.0]],
                             dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    attention = attention.assign_coords(spread=attention * 0)
    m = map_metrics(attention, corr)
    assert (m["peak_lat"], m["peak_lon"]) == (0.0, 180.0)
    # |corr| >= 0.45 (half of 0.9): the cells (0, 180) and (0, 300), holding 0.8 of 1.0
    assert m["top_correlation_tokens"] == 2
    assert m["attention_mass_in_top_correlation_region"] == np.float64(0.8)
    assert m["uniform_mass_in_top_correlation_region"] == 2 / 9
    assert m["max_abs_correlation"] == 0.9
    assert 0.8 < m["pattern_correlation"] <= 1.0


def test_region_mass_normalises_by_the_map_total():
    attention = xr.DataArray([[0.2, 0.2], [0.1, 0.0]], dims=("lat", "lon"))
    region = xr.DataArray([[True, False], [False, False]], dims=("lat", "lon"))
    assert region_mass(attention, region) == 0.4
