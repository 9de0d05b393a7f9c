"""Token stores: values against a NumPy reference, the dataset against ForecastDataset, refusals."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
import zarr
from gridformer.datasets import (
    ForecastDataset,
    TokenStoreDataset,
    open_token_store,
    write_token_store,
)
from gridformer.datasets.preprocess import TASK_MEMORY_FACTOR, plan_chunks

from gridformer import PatchTokenizer, __version__

T, LAT, LON, P = 730, 6, 10, 4  # two years, daily; patch 4 pads to 8 x 12: 2 x 3 tokens


pytestmark = pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")  # land


@pytest.fixture(scope="module")
def climate() -> xr.Dataset:
    rng = np.random.default_rng(7)
    time = pd.date_range("2001-01-01", periods=T, freq="D")
    season = 10 * np.cos(2 * np.pi * time.day_of_year.values / 365.0)[:, None, None]
    t = (280 + season + rng.normal(size=(T, LAT, LON))).astype(np.float32)
    u = (3 * rng.normal(size=(T, LAT, LON)) - 1).astype(np.float32)
    t[:, 0, :3] = np.nan  # 'land' in the first token of t
    u[100:110, 5, 9] = np.nan  # a few missing values of u
    return xr.Dataset(
        {"t": (("time", "lat", "lon"), t), "u": (("time", "lat", "lon"), u)},
        coords={"time": time, "lat": np.linspace(-75.0, 75.0, LAT),
                "lon": np.arange(LON) * 36.0},
    )


def reference(ds: xr.Dataset, stats: slice) -> dict[str, np.ndarray]:
    """Monthly anomalies of the statistics period, standardised by its mean and std (NumPy)."""
    month = ds["time"].dt.month.values
    out = {}
    for name in ("t", "u"):
        x = ds[name].values.astype(np.float64)
        clim = {m: np.nanmean(x[stats][month[stats] == m], axis=0) for m in range(1, 13)}
        anom = x - np.stack([clim[m] for m in month])
        out[name] = (anom - np.nanmean(anom[stats])) / np.nanstd(anom[stats])
    return out


def patches(z: np.ndarray, fill: float) -> np.ndarray:
    """(T, 6, 10) -> (T, 6 tokens, 16 cells): pad to 8 x 12, then 4 x 4 patches, row-major."""
    padded = np.pad(np.nan_to_num(z, nan=fill), ((0, 0), (0, 2), (0, 2)), constant_values=fill)
    return padded.reshape(-1, 2, P, 3, P).transpose(0, 1, 3, 2, 4).reshape(-1, 6, P * P)


@pytest.fixture(scope="module")
def store(climate, tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "t.zarr"
    with pytest.warns(UserWarning, match="looks periodic but needs 2 padding cells"):
        return write_token_store(climate, path, patch_size=P, anomalies="month",
                                 stats_time=("2001-01-01", "2001-12-31"), fill_value=-5.0,
                                 chunk_steps=96, store_steps=32)


def test_tokens_are_standardised_anomalies_of_the_statistics_period(climate, store):
    z = reference(climate, slice(0, 365))
    want = np.concatenate([patches(z["t"], -5.0), patches(z["u"], -5.0)], axis=2)
    got = store.read("tokens", 0, T)
    assert got.shape == (T, 6, 32)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)
    stats = store.meta["statistics"]
    assert stats["u"]["std"] == pytest.approx(
        np.nanstd(climate["u"].values[:365] - np.nanmean(climate["u"].values[:365])), rel=0.05)
    assert store.tokens.chunks == (32, 6, 32)
    # tokens (and validity) are read from their chunk files directly, equal to zarr's read
    np.testing.assert_array_equal(got, store.tokens[:])
    assert store._readers["tokens"] is not None
    assert store.settings["stats_steps"] == [0, 365]
    clim = store.dataset["climatology_t"].sel(month=1).values
    np.testing.assert_allclose(clim, np.nanmean(climate["t"].values[:31], axis=0), rtol=1e-6)


def test_validity_and_latitude_weights(climate, store):
    valid = store.read("valid", 0, T)
    assert valid.all()  # every token has a cell of some variable
    assert store._readers["valid"] is not None  # stored uncompressed, read directly
    weight = store.read("weight", 0, T)  # (T, N)
    lat_w = np.cos(np.deg2rad(climate["lat"].values))
    lat_w = lat_w / lat_w.mean()
    # token 0: rows 0-3, cols 0-3; row 0 cols 0-2 are NaN in t at every step
    cells = np.repeat(lat_w[:4, None], 4, axis=1)
    cells[0, :3] = 0.0
    assert weight[50, 0] == pytest.approx(cells.mean(), rel=1e-6)
    # token 5: rows 4-5 (+2 padding rows), cols 8-9 (+2 padding cols): 4 grid cells
    assert weight[50, 5] == pytest.approx(lat_w[4:6].mean(), rel=1e-6)
    assert weight[105, 5] == pytest.approx(np.array([lat_w[4], lat_w[4], lat_w[5], 0.0]).mean(),
                                           rel=1e-6)  # u is NaN at (5, 9)


@pytest.mark.filterwarnings("ignore:dim 'lon' looks periodic")
def test_store_items_equal_forecast_dataset_items(climate, store):
    z = reference(climate, slice(0, 365))
    zds = climate.copy(data={k: v.astype(np.float64) for k, v in z.items()})
    tok = PatchTokenizer(P, fill_value=-5.0, dtype=torch.float32)
    opts = {"inputs": ["u", "t"], "targets": ["t", "u"], "window": 2, "lead": 3, "stride": 5,
            "lat_weighted": True}
    want = ForecastDataset(zds, tokenizer=tok, **opts)
    got = TokenStoreDataset(store, frames=slice(0, None), **opts)
    assert len(got) == len(want) == 146
    for i in (0, 6, 20, 145):  # 20: steps 100-101 -> 104, where u has NaN
        for a, b in zip(got[i], want[i], strict=True):
            assert a.dtype == torch.float32
            torch.testing.assert_close(a, b, rtol=1e-5, atol=2e-5)
    assert got.layout.n_tokens == 6
    assert got.layout.is_geographic


def test_frames_restrict_inputs_and_targets(store):
    data = TokenStoreDataset(store, window=1, lead=2, frames=slice(700, 710))
    assert len(data) == 8
    x, y = data[0]
    np.testing.assert_array_equal(x.numpy(), store.read("tokens", 700, 701)[0])
    np.testing.assert_array_equal(y.numpy(), store.read("tokens", 702, 703)[0])
    with pytest.raises(ValueError, match=r"needs more than the 2 steps of frames=slice\(0, 2"):
        TokenStoreDataset(store, window=2, frames=slice(0, 2))
    with pytest.raises(ValueError, match=r"inputs \['q'\] not in the token store; it has"):
        TokenStoreDataset(store, inputs="q")
    with pytest.raises(ValueError, match=r"needs targets = all stored variables"):
        TokenStoreDataset(store, targets="t", lat_weighted=True)


def test_opening_checks_format_version_and_settings(store, tmp_path):
    assert open_token_store(store.path, expect={"variables": ["t", "u"], "patch_size": 4,
                                                "anomalies": "month"}).n_time == T
    with pytest.raises(ValueError, match=r"patch_size: store has \[4, 4\], expected \[2, 2\]; "
                                         r"anomalies: store has 'month', expected None"):
        open_token_store(store.path, expect={"patch_size": 2, "anomalies": None})
    with pytest.raises(ValueError, match=r"unknown store settings \['patch'\]"):
        open_token_store(store.path, expect={"patch": 2})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_token_store(tmp_path / "none.zarr")
    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    with pytest.raises(ValueError, match="is not a gridformer token store"):
        open_token_store(tmp_path / "plain.zarr")
    for key, value, pin in (("gridformer_version", "0.0.1", "written by gridformer '0.0.1'"),
                            ("format_version", 99, "has format version 99")):
        other = tmp_path / f"{key}.zarr"
        group = zarr.open_group(other, mode="w")
        group.attrs["gridformer_store"] = json.dumps({**store.meta, key: value})
        with pytest.raises(ValueError, match=pin):
            open_token_store(other)
    assert store.meta["gridformer_version"] == __version__


def test_step_labels_given_as_text_select_steps_by_value(climate, tmp_path):
    """An integer time axis with labels as the CLI passes them (text): compared as numbers."""
    steps = climate.assign_coords(time=np.arange(climate.sizes["time"]))
    with pytest.warns(UserWarning, match="looks periodic"):
        store = write_token_store(steps, tmp_path / "s.zarr", patch_size=P,
                                  stats_time=("0", "99"), time=("0", "199"))
    assert store.meta["settings"]["stats_steps"] == [0, 100]  # as text, "99" > "199"
    assert store.times.size == 200
    with pytest.raises(ValueError, match=r"stats_time label '1e' is not a int64 value, as the "
                                         r"time coordinate's are \(0 \.\. "):
        write_token_store(steps, tmp_path / "bad.zarr", patch_size=P, stats_time=("0", "1e"))


def test_write_refuses_bad_input_and_leaves_nothing(climate, tmp_path):
    with pytest.raises(ValueError, match="stats_time lacks month \\[7, 8, 9, 10, 11, 12\\]"):
        write_token_store(climate, tmp_path / "a.zarr", patch_size=2, anomalies="month",
                          stats_time=("2001-01-01", "2001-06-30"))
    with pytest.raises(ValueError, match=r"anomalies='year' is not one of \['month', "):
        write_token_store(climate, tmp_path / "a.zarr", patch_size=2, anomalies="year")
    with pytest.raises(ValueError, match=r"stats_time=\('1990', '1991'\) selects no time step"):
        write_token_store(climate, tmp_path / "a.zarr", patch_size=2,
                          stats_time=("1990", "1991"))
    level = climate.expand_dims(level=[500])
    with pytest.raises(ValueError, match=r"variable 't' has dims \('level', 'time', 'lat', "):
        write_token_store(level, tmp_path / "a.zarr", patch_size=2)
    assert list(tmp_path.iterdir()) == []  # no store, no temporary folder


def test_a_failed_write_keeps_the_old_store(climate, tmp_path):
    path = tmp_path / "s.zarr"
    first = write_token_store(climate.isel(time=slice(0, 40)), path, patch_size=2,
                              normalize=False)
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        write_token_store(climate, path, patch_size=2)
    broken = climate.isel(time=slice(0, 40)).chunk({"time": 10})
    broken["t"] = broken["t"].copy(data=broken["t"].data.map_blocks(_fail_on_third_chunk,
                                                                    dtype=np.float32))
    with pytest.raises(RuntimeError, match="disk went away"):
        write_token_store(broken, path, patch_size=2, normalize=False, overwrite=True,
                          chunk_steps=10, store_steps=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]  # no temporary folder
    again = open_token_store(path)
    np.testing.assert_array_equal(again.read("tokens", 0, 40), first.read("tokens", 0, 40))


def _fail_on_third_chunk(block: np.ndarray, block_info=None) -> np.ndarray:
    if block_info[0]["chunk-location"][0] == 2:
        raise RuntimeError("disk went away")
    if block_info[0]["chunk-location"][0] == 1:  # still running (then writing) when 2 fails
        time.sleep(0.5)
    return block


def test_chunk_plan_follows_the_memory_limit():
    mib, f = 2**20, TASK_MEMORY_FACTOR
    # one step: 1 MiB as float64, a task needs f of them: 8 f MiB available fit 8 steps
    assert plan_chunks(mib, mib // 4, 1000, memory=(8 * f * mib, 10 * f * mib)) == (8, 8)
    assert plan_chunks(mib, mib // 4, 1000, memory=None, store_steps=4) == (16, 4)
    with pytest.raises(ValueError, match=rf"the worker memory limit 10.0 MiB \(4.0 MiB of it "
                                         rf"available to tasks\) is too small for one chunk: a "
                                         rf"single time step is 1.00 MiB .* \({f}.0 MiB\)"):
        plan_chunks(mib, mib // 4, 1000, memory=(4 * mib, 10 * mib))
    with pytest.raises(ValueError, match=rf"chunk_steps=16 needs about {16 * f}.0 MiB per task, "
                                         rf"more than the worker memory limit {10 * f}.0 MiB "
                                         rf"\({8 * f}.0 MiB of it available to tasks\); use "
                                         rf"chunk_steps <= 8"):
        plan_chunks(mib, mib // 4, 1000, memory=(8 * f * mib, 10 * f * mib), chunk_steps=16)
    with pytest.raises(ValueError, match="chunk_steps=6 must be a multiple of store_steps=4"):
        plan_chunks(mib, mib // 4, 1000, memory=None, chunk_steps=6, store_steps=4)


def test_one_step_items_are_collated_from_the_cache_without_aliasing_it(store):
    # window 1 of every variable: __getitems__ hands the collation views of the cached block;
    # the batch, and dataset[i], must still be copies with the stored values
    data = TokenStoreDataset(store, lead=2, lat_weighted=True, frames=slice(700, 740))
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=False)
    x, y, w = next(iter(loader))
    np.testing.assert_array_equal(x.numpy(), store.read("tokens", 700, 708))
    np.testing.assert_array_equal(y.numpy(), store.read("tokens", 702, 710))
    np.testing.assert_array_equal(w.numpy(), store.read("weight", 702, 710))
    x[:] = 99.0
    item = data[0]
    item[0][:] = -99.0
    again = data[0][0]
    np.testing.assert_array_equal(again.numpy(), store.read("tokens", 700, 701)[0])
