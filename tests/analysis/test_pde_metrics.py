"""PDEBench's metrics against values computed by hand on small arrays."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gridformer.analysis import pdebench_metrics, pdebench_metrics_per_step, rollout_errors


def one_step(values: np.ndarray, dims: tuple[str, ...]) -> xr.DataArray:
    """``values`` as a single time step (``time`` first)."""
    return xr.DataArray(values[:, None], dims=(dims[0], "time", *dims[1:]))


@pytest.fixture
def hand_1d() -> tuple[xr.DataArray, xr.DataArray]:
    """Two samples on 4 points: e_0 = [1, 0, 0, -1], e_1 = [0, 0, 0, 2]."""
    target = np.array([[1.0, 2, 3, 4], [2, 2, 2, 2]])
    error = np.array([[1.0, 0, 0, -1], [0, 0, 0, 2]])
    return (one_step(target + error, ("sample", "x")), one_step(target, ("sample", "x")))


def test_1d_values_by_hand(hand_1d):
    pred, target = hand_1d
    m = pdebench_metrics(pred, target, initial_step=0, bands=(1, 2))
    # rmse per sample: sqrt(2/4), sqrt(4/4); mean over samples
    assert float(m["rmse"]) == pytest.approx((np.sqrt(0.5) + 1.0) / 2)
    # nrmse: divided by the target's RMS, sqrt(30/4) and 2
    assert float(m["nrmse"]) == pytest.approx((np.sqrt(0.5) / np.sqrt(7.5) + 1.0 / 2) / 2)
    # crmse: sums of the errors are 0 and 2 -> sqrt((0 + 4) / 2) / 4 points
    assert float(m["crmse"]) == pytest.approx(np.sqrt(2.0) / 4)
    assert float(m["max_error"]) == 2.0
    # brmse: boundary cells 0 and 3: sqrt((1 + 1) / 2) = 1 and sqrt((0 + 4) / 2); mean
    assert float(m["brmse"]) == pytest.approx((1.0 + np.sqrt(2.0)) / 2)
    # rfft of e_0: |F|^2 = 0, 2, 4; of e_1: 4, 4, 4. sqrt(mean over samples) / 4 points
    expected = [np.sqrt(2.0) / 4, np.sqrt(3.0) / 4, np.sqrt(4.0) / 4]  # k = 0 | 1 | 2
    np.testing.assert_allclose(m["frmse"].values, expected)
    assert list(m["band"].values) == ["low", "mid", "high"]
    np.testing.assert_array_equal(m["k_start"].values, [0, 1, 2])


def test_default_bands_on_a_coarse_grid_leave_empty_bands_nan(hand_1d):
    m = pdebench_metrics(*hand_1d, initial_step=0)  # bands (4, 12), only k = 0, 1, 2 exist
    low = np.mean([np.sqrt(2.0) / 4, np.sqrt(3.0) / 4, np.sqrt(4.0) / 4])
    assert float(m["frmse"].sel(band="low")) == pytest.approx(low)
    assert np.isnan(m["frmse"].sel(band=["mid", "high"]).values).all()


def test_2d_fourier_bands_of_single_modes():
    n = 16
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    target = np.zeros((1, n, n))
    # a cos mode at (3, 0): |fftn| = 2 * n^2 / 2 at (3, 0) -> shell 3 holds amplitude 2 / 2
    pred = one_step(target + 2.0 * np.cos(2 * np.pi * 3 * i / n), ("sample", "y", "x"))
    m = pdebench_metrics(pred, one_step(target, ("sample", "y", "x")), initial_step=0)
    # shells 0..3 in the low band: mean of (0, 0, 0, 1); shells 4..7 (mid) are 0; high empty
    np.testing.assert_allclose(m["frmse"].values[:2], [0.25, 0.0], atol=1e-12)
    assert np.isnan(m["frmse"].values[2])
    # a diagonal mode (3, 4) lies in shell floor(5) = 5: the mid band, mean over 4 shells
    pred = one_step(target + 2.0 * np.cos(2 * np.pi * (3 * i + 4 * j) / n), ("sample", "y", "x"))
    m = pdebench_metrics(pred, one_step(target, ("sample", "y", "x")), initial_step=0,
                         lengths={"y": 2.0, "x": 3.0})
    np.testing.assert_allclose(m["frmse"].values[:2], [0.0, 1.0 / 4 * 6.0], atol=1e-12)


def test_2d_boundary_error_counts_faces_and_ignores_the_interior():
    error = np.ones((1, 3, 3))
    error[0, 1, 1] = 5.0  # interior: not on any face
    zero = one_step(np.zeros((1, 3, 3)), ("sample", "y", "x"))
    m = pdebench_metrics(one_step(error, ("sample", "y", "x")), zero, initial_step=0)
    assert float(m["brmse"]) == pytest.approx(1.0)
    assert np.isnan(float(m["nrmse"]))  # relative to an all-zero target: undefined
    error[0, 0, 0] = 3.0  # a corner lies on two faces: 10 ones + 2 * 9 over 12 face cells
    m = pdebench_metrics(one_step(error, ("sample", "y", "x")), zero, initial_step=0)
    assert float(m["brmse"]) == pytest.approx(np.sqrt(28.0 / 12.0))


def test_a_shifted_wave_conserves_the_total():
    x = np.arange(64) / 64
    target = xr.DataArray((1 + np.sin(2 * np.pi * x))[None], dims=("time", "x"))
    pred = target.copy(data=(1 + np.sin(2 * np.pi * (x - 0.1)))[None])
    m = pdebench_metrics(pred, target, initial_step=0)
    assert float(m["rmse"]) > 0.3
    assert float(m["crmse"]) < 1e-14  # both integrate to the same total


def test_nrmse_per_step_equals_relative_l2_of_rollout_errors():
    rng = np.random.default_rng(0)
    dims = ("time", "sample", "y", "x")
    target = xr.DataArray(rng.standard_normal((5, 3, 8, 8)), dims=dims,
                          coords={"time": np.arange(5) * 0.1})
    pred = target + 0.1 * rng.standard_normal(target.shape)
    steps = pdebench_metrics_per_step(pred, target, initial_step=0)
    np.testing.assert_allclose(steps["nrmse"].values, rollout_errors(pred, target)["rel_l2"])


def test_initial_step_is_left_out_of_the_average_and_the_curve():
    rng = np.random.default_rng(1)
    target = xr.DataArray(rng.standard_normal((4, 2, 16)), dims=("time", "sample", "x"),
                          coords={"time": [0.0, 0.5, 1.0, 1.5]}, attrs={"units": "K"})
    pred = target + xr.DataArray(np.arange(4.0), dims="time")  # error = the time index
    steps = pdebench_metrics_per_step(pred, target)
    np.testing.assert_array_equal(steps["time"].values, [0.5, 1.0, 1.5])
    np.testing.assert_array_equal(steps["step"].values, [1, 2, 3])
    np.testing.assert_allclose(steps["rmse"].values, [1.0, 2.0, 3.0])
    assert steps["rmse"].attrs["units"] == "K"
    assert float(pdebench_metrics(pred, target)["rmse"]) == pytest.approx(2.0)
    assert float(pdebench_metrics(pred, target, initial_step=0)["rmse"]) == pytest.approx(1.5)


def test_dataset_variables_are_channels_averaged():
    rng = np.random.default_rng(2)
    dims = ("time", "y", "x")
    target = xr.Dataset({n: (dims, rng.standard_normal((3, 6, 6))) for n in ("u", "v")})
    pred = target.copy()
    pred["u"] = target["u"] + 1.0
    pred["v"] = target["v"] + 3.0
    steps = pdebench_metrics_per_step(pred, target, initial_step=0)
    np.testing.assert_allclose(steps["rmse"].values, 2.0)  # mean of 1 and 3
    np.testing.assert_allclose(steps["max_error"].values, 2.0)


def test_array_prediction_takes_the_target_dims(hand_1d):
    pred, target = hand_1d
    from_array = pdebench_metrics(pred.values, target, initial_step=0)
    xr.testing.assert_allclose(from_array, pdebench_metrics(pred, target, initial_step=0))


def test_errors_name_the_argument(hand_1d):
    pred, target = hand_1d
    with pytest.raises(ValueError, match=r"initial_step=1 must be an integer in \[0, 0\]"):
        pdebench_metrics(pred, target)  # a single time step leaves nothing to score
    with pytest.raises(ValueError, match=r"bands=\(12, 4\) must be two integers 0 < i_low"):
        pdebench_metrics(pred, target, initial_step=0, bands=(12, 4))
    with pytest.raises(ValueError, match=r"prediction \{'sample': 2, 'time': 1, 'x': 3\} and "
                                         r"target \{'sample': 2, 'time': 1, 'x': 4\} differ"):
        pdebench_metrics(pred.isel(x=slice(3)), target, initial_step=0)
    with pytest.raises(ValueError, match="target needs a 'time' dim"):
        pdebench_metrics(pred.isel(time=0), target.isel(time=0))
    with pytest.raises(ValueError, match=r"lengths=\{'y': 1.0\} must give every spatial dim "
                                         r"\['x'\]"):
        pdebench_metrics(pred, target, initial_step=0, lengths={"y": 1.0})
    wide = xr.DataArray(np.zeros((2, 2, 2, 2, 2)), dims=("time", "a", "b", "c", "d"))
    with pytest.raises(ValueError, match=r"need 1 to 3 spatial dims; the target has \['a', 'b', "
                                         r"'c', 'd'\]"):
        pdebench_metrics(wide, wide, initial_step=0)
    with pytest.raises(TypeError, match=r"target must be an xr\.DataArray or xr\.Dataset, "
                                        r"not list"):
        pdebench_metrics(pred, [1, 2])
