"""Climatology/anomalies (cftime calendars), standardisation, lat weights, time splits."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gridformer.datasets import (
    Standardizer,
    anomalies,
    climatology,
    lat_weights,
    open_dataset,
    split_by_time,
)


def monthly(calendar: str, years: int = 3) -> xr.DataArray:
    time = xr.date_range(
        "2000-01-01", periods=12 * years, freq="MS", calendar=calendar, use_cftime=True
    )
    month = np.asarray(time.month, dtype=float)
    rng = np.random.default_rng(0)
    values = 10.0 * np.sin(2 * np.pi * month / 12)[:, None] + rng.standard_normal((time.size, 3))
    return xr.DataArray(
        values, dims=("time", "x"), coords={"time": time}, name="v", attrs={"units": "K"}
    )


@pytest.mark.parametrize("calendar", ["360_day", "noleap"])
def test_monthly_anomalies_cftime(calendar):
    da = monthly(calendar)
    clim = climatology(da, freq="month")
    assert clim.sizes["month"] == 12
    anom = anomalies(da, freq="month")
    assert anom.dims == da.dims
    assert anom.attrs["units"] == "K"
    np.testing.assert_allclose(anom.groupby("time.month").mean().values, 0.0, atol=1e-12)
    # with a training-period climatology applied to later data
    train_clim = climatology(da.isel(time=slice(0, 24)))
    later = anomalies(da.isel(time=slice(24, None)), clim=train_clim)
    assert later.sizes["time"] == 12


def test_dayofyear_anomalies_360_day():
    time = xr.date_range("2000-01-01", periods=720, freq="D", calendar="360_day", use_cftime=True)
    da = xr.DataArray(
        np.tile(np.arange(360.0), 2) + np.repeat([0.0, 1.0], 360),
        dims="time",
        coords={"time": time},
    )
    clim = climatology(da, freq="dayofyear")
    assert clim.sizes["dayofyear"] == 360
    anom = anomalies(da, freq="dayofyear")
    np.testing.assert_allclose(anom.values, np.repeat([-0.5, 0.5], 360))


def test_climatology_bad_args():
    with pytest.raises(ValueError, match=r"freq='season' is not one of \['dayofyear', 'month'\]"):
        climatology(monthly("noleap"), freq="season")
    with pytest.raises(ValueError, match="time_dim='t' is not a dim"):
        climatology(monthly("noleap"), time_dim="t")


def test_standardizer_roundtrip_and_save(tmp_path):
    ds = xr.Dataset({"a": monthly("noleap") * 3 + 5, "b": monthly("noleap")})
    stats = Standardizer.fit(ds, dims="time")
    z = stats.transform(ds)
    np.testing.assert_allclose(z["a"].mean("time"), 0.0, atol=1e-12)
    np.testing.assert_allclose(z["a"].std("time"), 1.0)
    xr.testing.assert_allclose(stats.inverse_transform(z), ds)
    loaded = Standardizer.load(stats.save(tmp_path / "stats.nc"))
    xr.testing.assert_allclose(loaded.transform(ds), z)
    da_stats = Standardizer.fit(ds["a"])
    xr.testing.assert_allclose(da_stats.transform(ds["a"]), z["a"])
    with pytest.raises(
        ValueError, match=r"no statistics for \['c'\]; fitted variables are \['a', 'b'\]"
    ):
        stats.transform(ds.assign(c=ds["a"]))
    with pytest.raises(ValueError, match=r"dims \['lat'\] are not dims of the data"):
        Standardizer.fit(ds, dims=("lat",))


def test_lat_weights_from_coordinate_values(quirky_file):
    ds = open_dataset(quirky_file[0])
    w = lat_weights(ds)
    np.testing.assert_allclose(
        w.values, np.cos(np.deg2rad(ds["lat"].values)) / np.cos(np.deg2rad(ds["lat"].values)).mean()
    )
    assert float(w.mean()) == pytest.approx(1.0)
    flipped = lat_weights(ds["lat"].values[::-1])
    np.testing.assert_allclose(flipped.sel(lat=ds["lat"].values).values, w.values)
    with pytest.raises(ValueError, match=r"latitudes must lie in \[-90, 90\] degrees"):
        lat_weights(np.array([0.0, 100.0]))


def test_split_by_time_fractions_and_labels():
    da = monthly("360_day", years=4)
    parts = split_by_time(da, train=0.5, val=0.25, test=0.25)
    assert [parts[k].sizes["time"] for k in ("train", "val", "test")] == [24, 12, 12]
    assert parts["train"]["time"].values[-1] < parts["val"]["time"].values[0]
    labelled = split_by_time(
        da, train=("2000", "2001"), val=("2002", "2002"), test=("2003", "2003")
    )
    assert labelled["train"].sizes["time"] == 24
    with pytest.raises(
        ValueError,
        match=r"time splits 'train' \('2000', '2002'\) and 'val' \('2002', '2003'\) overlap",
    ):
        split_by_time(da, train=("2000", "2002"), val=("2002", "2003"))
    with pytest.raises(
        ValueError,
        match=r"give every part as a fraction or every part as a \(start, stop\) pair, not a mix",
    ):
        split_by_time(da, train=0.5, val=("2002", "2003"))
    with pytest.raises(
        ValueError,
        match=r"split fractions \{'train': 0\.8, 'val': 0\.4\} must be positive and sum to at "
        r"most 1",
    ):
        split_by_time(da, train=0.8, val=0.4)
