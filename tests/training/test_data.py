"""load_pairs: next-state pairs in time-major order, training-only normalisation, metadata."""

import json

import numpy as np
import pytest
import torch
import xarray as xr

from gridformer.training.data import load_pairs

T, M, LAT, LON = 6, 3, 4, 8


@pytest.fixture
def netcdf(tmp_path):
    """Two variables on (time, member, lat, lon); a NaN 'land' block on member 0; the last two
    times are far off (5000 + ...) so that statistics leaking from them would show."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(T, M, LAT, LON))
    u[-2:] += 5000.0
    u[:, 0, :2, 2:4] = np.nan
    ds = xr.Dataset(
        {"t2m": (("time", "member", "lat", "lon"), u), "z": (("time", "member", "lat", "lon"),
                                                              3.0 * u + 7.0)},
        coords={"time": np.arange(T), "member": [10, 20, 30],
                "lat": [-67.5, -22.5, 22.5, 67.5], "lon": np.arange(LON) * 45.0 + 22.5},
    )
    path = tmp_path / "field.nc"
    ds.to_netcdf(path)
    return path, ds


def test_pairs_are_time_major_next_states_normalised_with_training_times_only(netcdf):
    path, ds = netcdf
    # 5 starts x 3 members = 15 pairs; 6 for validation: starts 3 and 4 (inputs at t = 3, 4)
    pairs = load_pairs({"path": str(path), "variables": ["t2m"], "val_fraction": 0.4})
    assert pairs.source["train_pairs"] == 9
    assert pairs.source["val_pairs"] == 6
    train_inputs = ds["t2m"].isel(time=slice(0, 3)).values  # the training inputs' times
    mean, std = np.nanmean(train_inputs), np.nanstd(train_inputs)
    stats = pairs.source["normalization"]["t2m"]
    assert stats["mean"] == pytest.approx(mean, rel=1e-12)
    assert stats["std"] == pytest.approx(std, rel=1e-12)
    assert pairs.metadata["normalization"] == {"mean": {"t2m": stats["mean"]},
                                               "std": {"t2m": stats["std"]}}

    z = (ds["t2m"].values - mean) / std  # (T, M, lat, lon)
    inputs, targets = pairs.train
    x_val, y_val = pairs.val
    all_inputs, all_targets = torch.cat([inputs, x_val]), torch.cat([targets, y_val])
    for i in range(15):
        start, member = divmod(i, M)  # time-major: pair i is (start, member)
        want_x = np.nan_to_num(z[start, member]).reshape(-1)  # patch 1: tokens are cells
        want_y = np.nan_to_num(z[start + 1, member]).reshape(-1)
        np.testing.assert_allclose(all_inputs[i, :, 0].numpy(), want_x, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(all_targets[i, :, 0].numpy(), want_y, rtol=1e-6, atol=1e-6)


def test_valid_rows_follow_the_pairs_and_extra_dims_join_the_samples(netcdf):
    path, _ = netcdf
    pairs = load_pairs({"path": str(path), "patch_size": 2, "val_fraction": 0.2,
                        "normalize": False})
    n_train = pairs.source["train_pairs"]
    assert pairs.source["pairs"] == 15
    assert pairs.layout.valid.shape == (n_train, 8)  # (4 x 8) cells in (2 x 4) patches
    assert pairs.val_layout.valid.shape == (15 - n_train, 8)
    rows = torch.cat([pairs.layout.valid, pairs.val_layout.valid])
    land = torch.zeros(8, dtype=torch.bool)
    land[1] = True  # the NaN block lat 0:2, lon 2:4 is patch (0, 1)
    for i in range(15):
        expected = ~land if i % M == 0 else torch.ones(8, dtype=torch.bool)
        assert torch.equal(rows[i], expected), i
    assert pairs.source["features"] == 8  # 2 variables x 2 x 2 cells
    assert pairs.source["normalization"] is None
    assert pairs.layout.periodic == (False, True)  # global longitudes, inferred


def test_metadata_is_plain_json_with_what_the_tokenizer_and_grid_need(netcdf):
    path, _ = netcdf
    pairs = load_pairs({"path": str(path), "variables": ["z", "t2m"], "patch_size": [2, 4],
                        "lead": 2})
    meta = pairs.metadata
    assert json.loads(json.dumps(meta)) == meta
    assert meta["variables"] == ["z", "t2m"]
    assert meta["lead"] == 2
    assert meta["tokenizer"]["patch_size"] == [2, 4]
    assert meta["tokenizer"]["spatial_dims"] == ["lat", "lon"]
    assert meta["grid"] == {"dims": ["lat", "lon"], "shape": [4, 8], "periodic": [False, True],
                            "geographic": True}


def test_solver_pairs_step_the_heat_equation():
    """Targets are the solver's next saved step: the periodic 5-point heat update of the input
    (normalisation is an affine map per variable, which the convex update commutes with)."""
    pairs = load_pairs({"solver": {"equation": "heat", "params": {"diffusivity": 0.1},
                                   "grid": [8, 8], "steps": 3, "samples": 2, "dt": 0.5}})
    inputs, targets = pairs.train
    assert inputs.shape == (6, 64, 1)  # 3 starts x 2 samples
    u = inputs[..., 0].double().reshape(6, 8, 8).numpy()
    lap = sum(np.roll(u, s, axis=a) for s in (1, -1) for a in (1, 2)) - 4 * u
    np.testing.assert_allclose(targets[..., 0].double().reshape(6, 8, 8).numpy(),
                               u + 0.1 * 0.5 * lap, atol=1e-5)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"path": "PATH", "normalise": True}, r"unknown data keys \['normalise'\]; valid: "),
        ({"path": "PATH", "time_dim": "member"}, r"the data has both time_dim='member' and a "
                                                 r"'time' dim; rename one"),
        ({"path": "PATH", "time_dim": "step"}, r"the data has no time dim 'step' \(dims "),
        ({"path": "PATH", "val_fraction": 1.0}, r"val_fraction=1.0 leaves no training pairs"),
    ],
)
def test_bad_specs_name_the_problem(netcdf, spec, match):
    path, _ = netcdf
    spec = {k: (str(path) if v == "PATH" else v) for k, v in spec.items()}
    with pytest.raises(ValueError, match=match):
        load_pairs(spec)
