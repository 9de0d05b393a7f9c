"""Latitude-weighted RMSE, anomaly correlation and index skill against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gridformer.analysis import anomaly_correlation, index_skill, lat_weighted_rmse

LAT = np.array([-60.0, 0.0, 60.0])  # cos(lat) = 0.5, 1, 0.5
LON = np.array([0.0, 180.0])


def _fields(values: np.ndarray, name: str = "t2m") -> xr.DataArray:
    coords = {"time": np.arange(values.shape[0]), "lat": LAT, "lon": LON}
    return xr.DataArray(values, dims=("time", "lat", "lon"), coords=coords, name=name,
                        attrs={"units": "K"})


def _rmse_case():
    target = _fields(np.zeros((2, 3, 2)))
    error = np.array([[[1, 1], [0, 0], [1, 1]], [[0, 0], [2, 2], [0, 0]]], dtype=float)
    return target + error, target


def test_rmse_is_the_root_of_the_time_mean_weighted_mse():
    prediction, target = _rmse_case()
    # t0: sum w e^2 / sum w = (0.5*2 + 0.5*2) / 4 = 0.5;  t1: (1*2*4) / 4 = 2
    result = lat_weighted_rmse(prediction, target)
    assert float(result) == pytest.approx(np.sqrt((0.5 + 2.0) / 2))
    assert result.attrs["units"] == "K"
    per_map = lat_weighted_rmse(prediction.isel(time=1), target.isel(time=1), dim=None)
    assert float(per_map) == pytest.approx(np.sqrt(2.0))


def test_rmse_leaves_out_missing_cells_and_keeps_other_dims():
    prediction, target = _rmse_case()
    target = target.copy()
    target[1, 0, 0] = np.nan  # weight 0.5 leaves the t1 sum: 8 / 3.5
    assert float(lat_weighted_rmse(prediction, target)) == pytest.approx(
        np.sqrt((0.5 + 8.0 / 3.5) / 2)
    )
    stacked = xr.concat([prediction, 2 * prediction], dim="lead")
    result = lat_weighted_rmse(stacked, xr.concat([target, target], dim="lead"))
    assert result.dims == ("lead",)
    assert float(result[1]) == pytest.approx(np.sqrt((4 * 0.5 + 4 * 8.0 / 3.5) / 2))


def test_acc_against_a_hand_computation_with_climatology():
    obs = np.array([[[1, 0], [0, 1], [0, 0]], [[1, 2], [0, -1], [3, 0]]], dtype=float)
    fct = np.array([[[1, 0], [0, 0], [0, 1]], [[1, 2], [0, -1], [3, 0]]], dtype=float)
    climatology = xr.DataArray([[10.0, 11.0], [20.0, 21.0], [30.0, 31.0]], dims=("lat", "lon"),
                               coords={"lat": LAT, "lon": LON})
    target = _fields(obs) + climatology
    prediction = _fields(fct) + climatology
    # t0: sum w f'o' = 0.5; sum w f'^2 = 0.5 + 0.5; sum w o'^2 = 0.5 + 1   -> 0.5 / sqrt(1.5)
    # t1: f' = o' -> 1
    expected = (0.5 / np.sqrt(1.5) + 1.0) / 2
    result = anomaly_correlation(prediction, target, climatology=climatology)
    assert float(result) == pytest.approx(expected)
    assert float(anomaly_correlation(_fields(fct), _fields(obs))) == pytest.approx(expected)
    assert float(anomaly_correlation(-prediction, -target, climatology=-climatology)) == (
        pytest.approx(expected)
    )
    assert float(anomaly_correlation(_fields(-obs), _fields(obs))) == pytest.approx(-1.0)


def test_centred_acc_removes_each_map_mean():
    obs = np.array([[[1, 0], [0, 1], [0, 0]]], dtype=float)
    fct = np.array([[[1, 0], [0, 0], [0, 1]]], dtype=float)
    w = np.array([[0.5, 0.5], [1, 1], [0.5, 0.5]])
    o = obs[0] - np.sum(w * obs[0]) / w.sum()  # 0.375 removed
    f = fct[0] - np.sum(w * fct[0]) / w.sum()  # 0.25 removed
    expected = np.sum(w * f * o) / np.sqrt(np.sum(w * f * f) * np.sum(w * o * o))
    result = anomaly_correlation(_fields(fct), _fields(obs), centered=True)
    assert float(result) == pytest.approx(expected)
    assert abs(expected - 0.5 / np.sqrt(1.5)) > 0.05  # differs from the uncentred value


def test_index_skill_correlation_and_rmse_skip_missing_steps():
    time = np.arange(5)
    target = xr.DataArray([1.0, 2.0, 3.0, 5.0, np.nan], dims="time", coords={"time": time})
    prediction = xr.DataArray([1.0, 2.0, 3.0, 4.0, 9.0], dims="time", coords={"time": time})
    result = index_skill(prediction, target)
    assert float(result["rmse"]) == pytest.approx(0.5)  # sqrt(mean([0, 0, 0, 1]))
    assert float(result["correlation"]) == pytest.approx(
        np.corrcoef([1, 2, 3, 4], [1, 2, 3, 5])[0, 1]
    )


def test_skill_errors_name_the_problem():
    prediction, target = _rmse_case()
    with pytest.raises(ValueError, match=r"must share their coordinates"):
        lat_weighted_rmse(prediction, target.assign_coords(lat=LAT + 1))
    with pytest.raises(ValueError, match=r"prediction lacks dims \['time'\]"):
        lat_weighted_rmse(prediction.isel(time=0), target.isel(time=0))
    with pytest.raises(TypeError, match=r"target must be an xarray.DataArray, got ndarray"):
        anomaly_correlation(prediction, target.values)
