"""Correlation maps, pattern correlation and leading EOFs."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import xarray as xr

from gridformer import datasets
from gridformer.analysis import correlation_map, leading_eofs, pattern_correlation


def _field_and_index(n_time=40, shape=(6, 10), seed=0):
    rng = np.random.default_rng(seed)
    lat, lon = datasets.global_grid(*shape)
    index = rng.standard_normal(n_time)
    field = 0.6 * np.roll(index, 2)[:, None, None] + rng.standard_normal((n_time, *shape))
    field[:, 0, :3] = np.nan  # land: missing at every step
    field[rng.random(field.shape) < 0.05] = np.nan  # scattered missing observations
    coords = {"time": np.arange(n_time), "lat": lat, "lon": lon}
    field = xr.DataArray(field, dims=("time", "lat", "lon"), coords=coords, name="sst")
    index = xr.DataArray(index, dims=("time",), coords={"time": coords["time"]}, name="nino")
    return field, index


def _numpy_correlation(field: np.ndarray, index: np.ndarray, lag: int) -> np.ndarray:
    """corr_t(field[t], index[t - lag]) per cell over the steps where both exist."""
    n = len(index)
    t = np.arange(max(lag, 0), n + min(lag, 0))
    out = np.full(field.shape[1:], np.nan)
    for i, j in np.ndindex(*field.shape[1:]):
        f, x = field[t, i, j], index[t - lag]
        ok = ~np.isnan(f)
        if ok.sum() > 1:
            out[i, j] = np.corrcoef(f[ok], x[ok])[0, 1]
    return out


@pytest.mark.parametrize("lag", [0, 2, -3])
def test_correlation_map_equals_a_direct_computation(lag):
    field, index = _field_and_index()
    result = correlation_map(field, index, lag=lag)
    expected = _numpy_correlation(field.values, index.values, lag)
    assert result.dims == ("lat", "lon")
    assert result.attrs["units"] == "1"
    np.testing.assert_allclose(result.values, expected, atol=1e-6)
    assert np.isnan(result.values[0, :3]).all()  # land stays NaN
    if lag == 2:  # the planted lag: r = 0.6 / sqrt(1.36) = 0.51 in expectation
        assert np.nanmean(result.values) == pytest.approx(0.51, abs=0.1)


# dask's nanmean divides 0 by 0 on the all-NaN land cells when computed (NaN is the answer)
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_correlation_map_is_lazy_on_dask_and_equal():
    field, index = _field_and_index()
    lazy = correlation_map(field.chunk({"lat": 3}), index, lag=2)
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.compute().values, correlation_map(field, index, lag=2).values)


def test_correlation_map_finds_the_planted_teleconnection():
    tele = datasets.planted_teleconnection(400, shape=(16, 32), lag=3, seed=1)
    target = tele["target_mask"].values
    # y = strength * index + noise inside the target: r = 1 / sqrt(1 + noise^2) = 0.894
    expected = 1 / np.sqrt(1 + tele.attrs["noise"] ** 2)
    same_time = correlation_map(tele["y"], tele["index"])
    assert float(same_time.values[target].mean()) == pytest.approx(expected, abs=0.03)
    assert abs(float(same_time.values[~target].mean())) < 0.02
    # the source-region mean of x leads y by 3 steps: high at lag=3, noise at lag=0
    w = datasets.lat_weights(tele) * tele["source_mask"]
    source = tele["x"].weighted(w).mean(("lat", "lon"))
    at_lag = correlation_map(tele["y"], source, lag=3)
    assert float(at_lag.values[target].mean()) == pytest.approx(expected, abs=0.03)
    assert abs(float(correlation_map(tele["y"], source).values[target].mean())) < 0.1


def test_correlation_map_errors_name_the_problem():
    field, index = _field_and_index()
    with pytest.raises(ValueError, match=r"field has 40 steps along 'time' but index has 39"):
        correlation_map(field, index.isel(time=slice(1, None)))
    with pytest.raises(ValueError, match=r"different 'time' coordinates"):
        correlation_map(field, index.assign_coords(time=index.time + 100))
    with pytest.raises(ValueError, match=r"index has no dim 'month'"):
        correlation_map(field.rename(time="month"), index, dim="month")
    with pytest.raises(ValueError, match=r"lag=39 leaves fewer than 2 overlapping steps"):
        correlation_map(field, index, lag=39)
    with pytest.raises(TypeError, match=r"lag=1.5 must be an integer"):
        correlation_map(field, index, lag=1.5)
    with pytest.raises(TypeError, match=r"index must be an xarray.DataArray, got ndarray"):
        correlation_map(field, index.values)


def _weighted_corr(a: np.ndarray, b: np.ndarray, lat: np.ndarray) -> float:
    w = np.broadcast_to(np.cos(np.deg2rad(lat))[:, None], a.shape)
    ok = ~np.isnan(a) & ~np.isnan(b)
    a, b, w = a[ok], b[ok], w[ok]
    a = a - np.sum(w * a) / w.sum()
    b = b - np.sum(w * b) / w.sum()
    return float(np.sum(w * a * b) / np.sqrt(np.sum(w * a * a) * np.sum(w * b * b)))


def test_pattern_correlation_is_area_weighted_centred_and_nan_aware():
    rng = np.random.default_rng(3)
    lat, lon = datasets.global_grid(12, 24)
    coords = {"lat": lat, "lon": lon}
    a = xr.DataArray(rng.standard_normal((12, 24)), dims=("lat", "lon"), coords=coords)
    b = 0.5 * a + xr.DataArray(rng.standard_normal((12, 24)), dims=("lat", "lon"), coords=coords)
    a[2, :5] = np.nan
    b[7, 3] = np.nan
    value = pattern_correlation(a, b)
    assert isinstance(value, float)
    assert value == pytest.approx(_weighted_corr(a.values, b.values, lat), abs=1e-12)
    unweighted = _weighted_corr(a.values, b.values, np.zeros(12))
    assert abs(value - unweighted) > 1e-3  # the weights matter
    assert pattern_correlation(a + 7.0, 3.0 * b - 2.0) == pytest.approx(value, abs=1e-12)
    assert pattern_correlation(a, -a) == pytest.approx(-1.0, abs=1e-12)


def test_pattern_correlation_keeps_other_dims_and_checks_coords():
    field, _ = _field_and_index()
    per_time = pattern_correlation(field, field.isel(time=0).fillna(0.0) + field * 0)
    assert per_time.dims == ("time",)
    with pytest.raises(ValueError, match=r"a and b must share their coordinates"):
        pattern_correlation(field.isel(time=0), field.isel(time=0).assign_coords(lon=field.lon + 1))


def _blob(lat, lon, centre, radius_km=2500.0):
    d = datasets.synthetic.haversine_km(lat[:, None], lon[None, :], *centre)
    return np.exp(-((d / radius_km) ** 2))


def test_leading_eofs_recover_planted_orthogonal_patterns():
    pytest.importorskip("xeofs")
    lat, lon = datasets.global_grid(16, 32)
    w = np.cos(np.deg2rad(lat))[:, None]
    p1 = _blob(lat, lon, (10.0, 200.0))
    p2 = _blob(lat, lon, (-40.0, 300.0))
    p1 /= np.sqrt(np.sum(w * p1**2))
    p2 -= np.sum(w * p1 * p2) * p1  # area-weighted Gram-Schmidt
    p2 /= np.sqrt(np.sum(w * p2**2))
    rng = np.random.default_rng(0)
    z, _ = np.linalg.qr(rng.standard_normal((120, 2)) - 0.0)
    z -= z.mean(axis=0)
    z, _ = np.linalg.qr(z)  # orthonormal, zero-mean time series
    data = 2.0 * z[:, :1, None] * p1 + z[:, 1:, None] * p2  # variances 4 : 1
    data = data + 5.0  # a time mean, removed by the analysis
    data[:, 0, :4] = np.nan  # land
    field = xr.DataArray(data, dims=("time", "lat", "lon"), coords={"lat": lat, "lon": lon})
    result = leading_eofs(field, n=2)
    ocean = ~np.isnan(data[0])
    for mode, pattern in ((1, p1), (2, p2)):
        eof = result["eofs"].sel(mode=mode).values
        assert np.isnan(eof[~ocean]).all()
        scale = np.sqrt(np.sum(w * np.where(ocean, pattern, 0) ** 2))
        np.testing.assert_allclose(eof[ocean], (pattern / scale)[ocean], atol=2e-3)
    np.testing.assert_allclose(result["explained_variance_ratio"].values, [0.8, 0.2], atol=2e-3)
    rebuilt = (result["eofs"] * result["pcs"]).sum("mode").transpose("time", "lat", "lon")
    anomalies = field - field.mean("time")
    np.testing.assert_allclose(rebuilt.values[:, ocean], anomalies.values[:, ocean], atol=1e-8)


def test_leading_eofs_without_the_extra_names_it(monkeypatch):
    field, _ = _field_and_index()
    monkeypatch.setitem(sys.modules, "xeofs", None)  # makes `import xeofs` fail
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'gridformer\[climate\]'"):
        leading_eofs(field.fillna(0.0), n=2)


def test_leading_eofs_refuses_bad_input():
    field, _ = _field_and_index()
    with pytest.raises(ValueError, match=r"missing at some steps along 'time' but not at all"):
        leading_eofs(field, n=2)
    with pytest.raises(ValueError, match=r"n=0 must be a positive integer"):
        leading_eofs(field, n=0)
    with pytest.raises(ValueError, match=r"n=40 modes need at least 41 steps"):
        leading_eofs(field, n=40)
