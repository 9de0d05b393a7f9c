"""The ``.gridformer`` xarray accessor: registered by ``import gridformer`` without torch, each
method the public function it wraps, and errors that name the missing dim."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import xarray as xr

import gridformer
from gridformer import PatchTokenizer, analysis, datasets, solvers


@pytest.fixture
def t2m() -> xr.DataArray:
    """(time, lat, lon) on a global 30-degree grid, with a planted signal."""
    rng = np.random.default_rng(0)
    lat = np.arange(-75.0, 76.0, 30.0)
    lon = np.arange(0.0, 360.0, 30.0)
    data = rng.standard_normal((24, lat.size, lon.size))
    return xr.DataArray(data, dims=("time", "lat", "lon"),
                        coords={"time": np.arange(24), "lat": lat, "lon": lon},
                        name="t2m", attrs={"units": "K"})


def test_import_gridformer_registers_the_accessor_without_torch():
    code = ("import sys, xarray as xr, gridformer; "
            "print(hasattr(xr.DataArray(0.0), 'gridformer'), "
            "hasattr(xr.Dataset(), 'gridformer'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.split() == ["True", "True", "False"]


def test_accessor_follows_xarray_conventions(t2m):
    assert isinstance(t2m.gridformer, gridformer.accessor.DataArrayAccessor)
    assert t2m.gridformer is t2m.gridformer  # cached per object, as xarray does
    assert isinstance(t2m.to_dataset().gridformer, gridformer.accessor.DatasetAccessor)


def test_tokenize_is_patch_tokenizer_encode(t2m):
    tokens, layout = t2m.gridformer.tokenize(patch_size=2)
    expected, expected_layout = PatchTokenizer(patch_size=2).encode(t2m)
    torch.testing.assert_close(tokens, expected, rtol=0, atol=0)
    assert tokens.shape == (24, 3 * 6, 4)  # 6 x 12 cells in 2 x 2 patches
    assert layout.periodic == expected_layout.periodic == (False, True)  # global longitude
    xr.testing.assert_allclose(PatchTokenizer.decode(tokens, layout), t2m.drop_attrs())
    # options reach the tokenizer; a Dataset's variables become channels
    ds = xr.Dataset({"t2m": t2m, "sst": t2m + 1.0})
    tokens, _ = ds.gridformer.tokenize(patch_size=3, dtype=torch.float32)
    assert tokens.shape == (24, 2 * 4, 2 * 9)
    assert tokens.dtype == torch.float32
    with pytest.raises(ValueError, match=r"no spatial dims found among the data dims "
                                         r"\('time',\)"):
        t2m.isel(lat=0, lon=0).gridformer.tokenize()


def test_lat_weights_from_the_latitudes(t2m):
    w = t2m.gridformer.lat_weights()
    cos = np.cos(np.deg2rad(t2m["lat"].values))
    np.testing.assert_allclose(w.values, cos / cos.mean())
    assert w.dims == ("lat",)
    np.testing.assert_allclose(t2m.to_dataset().gridformer.lat_weights(normalize=False).values,
                               cos)
    plain = xr.DataArray(np.zeros((4, 5)), dims=("y", "x"))
    with pytest.raises(ValueError, match=r"DataArray\.gridformer\.lat_weights\(\) needs a 'lat' "
                                         r"coordinate \(latitude in degrees\); the data has dims "
                                         r"\('y', 'x'\)"):
        plain.gridformer.lat_weights()


def test_correlation_map_finds_a_lagged_copy_of_the_index(t2m):
    index = xr.DataArray(np.sin(np.arange(24) / 3.0), dims="time",
                         coords={"time": t2m["time"]}, name="index")
    field = t2m.copy()
    field[2:, 1, 4] = index.values[:-2]  # the cell follows the index two steps later
    r = field.gridformer.correlation_map(index, lag=2)
    assert float(r.isel(lat=1, lon=4)) == pytest.approx(1.0)
    xr.testing.assert_identical(r, analysis.correlation_map(field, index, lag=2))
    with pytest.raises(ValueError, match=r"DataArray\.gridformer\.correlation_map\(\) needs the "
                                         r"dim 'time' \(the dim to correlate along, "
                                         r"dim='time'\); the data has dims \('lat', 'lon'\)"):
        t2m.isel(time=0).gridformer.correlation_map(index)


def test_plot_map_draws_the_field_with_its_units(t2m):
    fig = t2m.isel(time=0).gridformer.plot_map(coastlines=False, title="t2m")
    ax = fig.axes[0]
    assert ax.get_title() == "t2m"
    assert ax.get_xlabel() == "longitude (degrees_east)"
    assert fig.axes[1].get_ylabel() == "t2m (K)"  # the colour bar
    with pytest.raises(ValueError, match=r"DataArray\.gridformer\.plot_map\(\) needs the dims "
                                         r"'lat' and 'lon' \(a map is drawn on "
                                         r"latitude/longitude\); the data has dims \('y', 'x'\)"):
        xr.DataArray(np.zeros((3, 4)), dims=("y", "x")).gridformer.plot_map()


def test_solve_starts_from_the_state():
    u0 = datasets.random_field((8, 8), n_samples=2, seed=0)
    traj = u0.gridformer.solve("heat", steps=6, dt=0.2, diffusivity=0.5, save_every=3)
    xr.testing.assert_identical(
        traj, solvers.solve("heat", u0, steps=6, dt=0.2, diffusivity=0.5, save_every=3))
    # periodic heat conserves every sample's total
    np.testing.assert_allclose(traj.u.sum(("y", "x")).values,
                               np.broadcast_to(u0.sum(("y", "x")).values, (3, 2)), atol=1e-12)
    with pytest.raises(ValueError, match=r"DataArray\.gridformer\.solve\(\) starts from one "
                                         r"state, but the data has a 'time' dim of size 3; "
                                         r"select the state first"):
        traj.u.gridformer.solve("heat", steps=2, diffusivity=0.5)


def test_pdebench_metrics_of_a_prediction():
    target = xr.DataArray(np.ones((3, 2, 16)), dims=("time", "sample", "x"))
    prediction = target + 0.5  # a constant error: RMSE 0.5, nRMSE 0.5 / RMS 1
    m = prediction.gridformer.pdebench_metrics(target)
    assert float(m["rmse"]) == pytest.approx(0.5)
    assert float(m["nrmse"]) == pytest.approx(0.5)
    xr.testing.assert_identical(m, analysis.pdebench_metrics(prediction, target))
    steps = prediction.to_dataset(name="u").gridformer.pdebench_metrics(
        target.to_dataset(name="u"), per_step=True, initial_step=0)
    np.testing.assert_allclose(steps["rmse"].values, [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match=r"Dataset\.gridformer\.pdebench_metrics\(\) needs the "
                                         r"dim 'time' \(metrics are taken per time step\); the "
                                         r"data has dims \('sample', 'x'\)"):
        prediction.isel(time=0).to_dataset(name="u").gridformer.pdebench_metrics(target)


def test_writers_round_trip(tmp_path):
    u0 = datasets.random_field((8, 6), n_samples=2, seed=1)
    traj = u0.gridformer.solve("heat", steps=2, dt=0.2, diffusivity=0.5)
    path = traj.gridformer.to_the_well(tmp_path / "train" / "heat.hdf5")
    assert path == tmp_path / "train" / "heat.hdf5"
    with datasets.open_the_well(path) as well:
        np.testing.assert_allclose(well["u"].transpose(*traj.u.dims).values, traj.u.values,
                                   rtol=1e-6, atol=1e-6)
        assert well.attrs["bc"] == "periodic"
    path = traj.u.gridformer.to_pdebench(tmp_path / "heat.h5", dtype="float64")
    with datasets.open_pdebench(path) as pde:
        np.testing.assert_array_equal(
            pde["data"].isel(channel=0).transpose("time", "sample", "y", "x").values,
            traj.u.values)


def test_the_interop_names_have_the_documented_signatures():
    """docs/architecture.md §3: open_*(path), write_*(trajectories, path),
    da.gridformer.tokenize(patch_size=...) -> (tokens, layout)."""
    import inspect

    for reader in (datasets.open_the_well, datasets.open_pdebench):
        assert next(iter(inspect.signature(reader).parameters)) == "path"
    for writer in (datasets.write_the_well, datasets.write_pdebench):
        assert list(inspect.signature(writer).parameters)[:2] == ["trajectories", "path"]
    tokenize = inspect.signature(gridformer.accessor.DataArrayAccessor.tokenize)
    assert list(tokenize.parameters)[1] == "patch_size"
    assert set(inspect.signature(analysis.rollout_errors).parameters) == {
        "prediction", "reference", "pdebench"}
