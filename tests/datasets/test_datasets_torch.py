"""Torch datasets: forecast windows (lazy reads, lat weights, tokens) and PDE trajectory pairs."""

from __future__ import annotations

import dask
import dask.array as dsa
import numpy as np
import pytest
import torch
import xarray as xr
from gridformer.datasets import ForecastDataset, TrajectoryPairs, lat_weights

from gridformer import PatchTokenizer

N_TIME, N_LAT, N_LON = 12, 4, 6


def lazy_climate(loaded: list[int]) -> xr.Dataset:
    """Dask-backed (time, lat, lon) dataset whose step t holds the value t; records reads."""

    def load(i: int) -> np.ndarray:
        loaded.append(i)
        return np.full((1, N_LAT, N_LON), float(i))

    steps = [
        dsa.from_delayed(dask.delayed(load)(i), (1, N_LAT, N_LON), float) for i in range(N_TIME)
    ]
    lat = np.linspace(-60.0, 60.0, N_LAT)
    lon = np.arange(N_LON) * 60.0
    t = xr.DataArray(
        dsa.concatenate(steps),
        dims=("time", "lat", "lon"),
        coords={"time": np.arange(N_TIME), "lat": lat, "lon": lon},
    )
    return xr.Dataset({"t": t, "u": -t})


def test_forecast_items_and_lazy_reads():
    loaded: list[int] = []
    ds = lazy_climate(loaded)
    data = ForecastDataset(ds, inputs=["t", "u"], targets="t", window=2, lead=3)
    assert loaded == []  # nothing read at construction
    assert len(data) == N_TIME - 2 - 3 + 1
    x, y = data[5]
    assert sorted(loaded) == [5, 6, 9]  # only the window and the target step
    assert x.shape == (4, N_LAT, N_LON)  # (variables * window, lat, lon)
    assert x.dtype == torch.float32
    assert x[:, 0, 0].tolist() == [5.0, 6.0, -5.0, -6.0]
    assert y.shape == (1, N_LAT, N_LON)
    assert float(y[0, 0, 0]) == 9.0


def test_forecast_lat_weights_and_nan_target():
    ds = lazy_climate([]).compute()
    ds["t"][:, 0, 0] = np.nan
    data = ForecastDataset(ds, inputs="t", targets="t", lat_weighted=True)
    x, _y, w = data[0]
    assert w.shape == (N_LAT, N_LON)
    assert float(w[0, 0]) == 0.0  # NaN target cell carries no weight
    assert float(x[0, 0, 0]) == 0.0  # NaN input replaced by fill_value
    expected = lat_weights(ds["lat"]).values
    np.testing.assert_allclose(w[1:, 0].numpy(), expected[1:], rtol=1e-6)


def test_forecast_tokenized_exposes_layout():
    ds = lazy_climate([])
    data = ForecastDataset(
        ds, inputs="t", targets="t", window=3, tokenizer=PatchTokenizer(2), lat_weighted=True
    )
    assert data.layout is not None
    assert data.layout.is_geographic
    assert data.layout.periodic == (False, True)
    x, y, w = data[1]
    assert x.shape == (data.layout.n_tokens, 3 * 4)
    assert y.shape == (data.layout.n_tokens, 4)
    assert w.shape == (data.layout.n_tokens,)
    assert float(y[0, 0]) == 4.0


def test_forecast_bad_args():
    ds = lazy_climate([])
    with pytest.raises(ValueError, match=r"inputs \['q'\] not in the dataset; it has \['t', 'u'\]"):
        ForecastDataset(ds, inputs="q")
    with pytest.raises(ValueError, match="lead=0 must be a positive int"):
        ForecastDataset(ds, lead=0)
    with pytest.raises(ValueError, match="needs more than the 12 time steps"):
        ForecastDataset(ds, window=10, lead=5)


def solver_like(with_sample: bool = True, two_d: bool = True) -> xr.Dataset:
    """A hand-made Dataset shaped like gridformer.solvers.solve output."""
    n_time, n_sample, ny, nx = 5, 2, 4, 6
    dims = ("time", *(("sample",) if with_sample else ()), *(("y",) if two_d else ()), "x")
    shape = (n_time, *((n_sample,) if with_sample else ()), *((ny,) if two_d else ()), nx)
    u = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    coords = {"time": np.arange(n_time) * 0.1, "x": np.arange(nx) * 0.5}
    if two_d:
        coords["y"] = np.arange(ny) * 0.5
    return xr.Dataset(
        {"u": (dims, u)}, coords=coords, attrs={"equation": "heat", "bc": "periodic", "dt": 0.1}
    )


def test_trajectory_pairs_values():
    ds = solver_like()
    pairs = TrajectoryPairs(ds, lead=2)
    assert len(pairs) == 2 * (5 - 2)
    x, y = pairs[4]  # sample 1, t = 1
    np.testing.assert_array_equal(x.numpy(), ds["u"].isel(sample=1, time=1).values)
    np.testing.assert_array_equal(y.numpy(), ds["u"].isel(sample=1, time=3).values)
    assert x.dtype == torch.float32
    with pytest.raises(IndexError, match="index 6 out of range for 6 pairs"):
        pairs[len(pairs)]


def test_trajectory_pairs_tokens_and_layout():
    ds = solver_like()
    pairs = TrajectoryPairs(ds, lead=1, tokenizer=PatchTokenizer(2))
    layout = pairs.layout
    assert layout.periodic == (True, True)  # from attrs["bc"]
    assert layout.spatial_dims == ("y", "x")
    assert layout.n_tokens == 2 * 3
    x, y = pairs[0]
    assert x.shape == (6, 4)
    direct, _ = PatchTokenizer(2).encode(ds["u"].isel(sample=0, time=1))
    assert torch.equal(y, direct[0])


def test_trajectory_pairs_one_d_without_sample():
    ds = solver_like(with_sample=False, two_d=False)
    pairs = TrajectoryPairs(ds, lead=1, tokenizer=PatchTokenizer(1))
    assert len(pairs) == 4
    assert pairs.layout.spatial_dims == ("x",)
    x, y = pairs[3]
    assert x.shape == (6, 1)
    np.testing.assert_array_equal(y[:, 0].numpy(), ds["u"].isel(time=4).values)


def test_trajectory_pairs_bad_args():
    ds = solver_like()
    with pytest.raises(ValueError, match=r"lead=5 must be in 1..4"):
        TrajectoryPairs(ds, lead=5)
    with pytest.raises(ValueError, match=r"variables \['v'\] not in the dataset"):
        TrajectoryPairs(ds, variables="v")


def test_trajectory_pairs_periodic_override():
    ds = solver_like()
    with pytest.raises(
        ValueError, match=r"periodic dim 'y' \(4 cells\) needs 2 padding cells .* breaks the wrap"
    ):
        TrajectoryPairs(ds, tokenizer=PatchTokenizer(3))
    pairs = TrajectoryPairs(ds, tokenizer=PatchTokenizer(3), periodic=False)
    assert pairs.layout.periodic == (False, False)
    assert pairs.layout.padding == ((0, 2), (0, 0))
