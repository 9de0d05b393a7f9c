"""Time split, anomalies and standardisation: training statistics only, no overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gridformer import datasets
from gridformer.teleconnect import TeleconnectConfig, setup
from gridformer.teleconnect.prep import split_pairs

from ._helpers import planted


def test_split_pairs_are_contiguous_disjoint_and_lead_shifted():
    pairs = split_pairs(100, 3, (0.7, 0.15, 0.15))
    inputs = {part: p[0] for part, p in pairs.items()}
    targets = {part: p[1] for part, p in pairs.items()}
    np.testing.assert_array_equal(inputs["train"], np.arange(0, 67))
    np.testing.assert_array_equal(inputs["val"], np.arange(70, 82))
    np.testing.assert_array_equal(inputs["test"], np.arange(85, 97))
    for part in pairs:
        np.testing.assert_array_equal(targets[part], inputs[part] + 3)
    # no step serves two parts, as input or as target
    used = [np.union1d(inputs[p], targets[p]) for p in pairs]
    assert not np.intersect1d(used[0], used[1]).size
    assert not np.intersect1d(used[1], used[2]).size


def test_statistics_come_from_the_training_part_only(tmp_path):
    ds = planted(100).drop_vars(["source_mask", "target_mask"])
    ds["x"] = ds["x"] + xr.DataArray(np.r_[np.zeros(70), np.full(30, 50.0)], dims="time")
    path = tmp_path / "jump.nc"
    datasets.write_netcdf(ds, path)
    prepared = setup(path, TeleconnectConfig(inputs=("x",), target="target_index")).prepared
    x = prepared.inputs["x"]
    train = x.isel(time=slice(0, 70))
    np.testing.assert_allclose(train.mean("time"), 0.0, atol=1e-12)
    np.testing.assert_allclose(train.std("time"), 1.0, rtol=1e-12)
    # the jump after the training period stays visible: nothing was fitted on it
    raw = ds["x"]
    expected = (raw[85] - raw[:70].mean("time")) / raw[:70].std("time")
    np.testing.assert_allclose(x[85], expected, rtol=1e-12)
    assert float(x.isel(time=slice(70, None)).mean()) > 10.0
    # tokens hold the standardised values (patch 2 x 2, cells in row-major order)
    token = prepared.tokens[85, 0].numpy()
    np.testing.assert_allclose(token, x[85, :2, :2].values.reshape(-1), rtol=1e-6)


def test_monthly_cycle_of_the_training_years_is_removed(tmp_path):
    time = pd.date_range("2000-01-01", periods=120, freq="MS")
    ds = planted(120).drop_vars(["source_mask", "target_mask"]).assign_coords(time=time)
    cycle = xr.DataArray(10.0 * np.sin(2 * np.pi * (time.month.values - 1) / 12), dims="time",
                         coords={"time": time})
    ds["target_index"] = ds["target_index"] + cycle
    path = tmp_path / "monthly.nc"
    datasets.write_netcdf(ds, path)
    ready = setup(path, TeleconnectConfig(inputs=("x",), target="target_index"))
    assert ready.prepared.seasonal == "month"
    clean = ds["target_index"] - cycle
    train = ready.prepared.pairs["train"][0]
    clim = clean[train].groupby("time.month").mean()  # the cycle-free training climatology
    expected = clean.groupby("time.month") - clim
    expected = (expected - expected[train].mean()) / expected[train].std()
    np.testing.assert_allclose(ready.prepared.target, expected, rtol=1e-9, atol=1e-9)


def test_seasonal_cycle_needs_dates(planted_file):
    with pytest.raises(ValueError, match=r"seasonal_cycle='month' needs a datetime time axis"):
        setup(planted_file, TeleconnectConfig(inputs=("x",), target="target_index",
                                              seasonal_cycle="month"))


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match=r"give a query point or a query box, not both"):
        TeleconnectConfig(inputs=("x",), target="y", query=(0, 0), query_box=(0, 1, 0, 1))
    with pytest.raises(ValueError, match=r"query=\(95\.0, 10\.0\): latitudes must lie in "
                                         r"\[-90, 90\]"):
        TeleconnectConfig(inputs=("x",), target="y", query=(95, 10))
    with pytest.raises(ValueError, match=r"target='x' is also an input"):
        TeleconnectConfig(inputs=("x",), target="x")
    with pytest.raises(ValueError, match=r"distance_bias='near' must be a finite number or "
                                         r"'learned'"):
        TeleconnectConfig(inputs=("x",), target="y", distance_bias="near")
    with pytest.raises(ValueError, match=r"patch_size=0 must be an integer >= 1"):
        TeleconnectConfig(inputs=("x",), target="y", patch_size=0)
