import numpy as np
import pytest
import torch
import xarray as xr

from gridformer.analysis import (
    compare_stencils,
    rollout,
    rollout_errors,
    spectral_error,
    stencil_moments,
    stencil_to_dict,
    upwind_consistency,
    upwind_lean,
)

from ._helpers import apply_stencil, heat_stencil, smooth_fields


def _stencil(weights, radius=2):
    axis = np.arange(-radius, radius + 1)
    da = xr.DataArray(np.zeros((len(axis), len(axis))), dims=("dy", "dx"),
                      coords={"dy": axis, "dx": axis})
    for (dy, dx), w in weights.items():
        da.loc[{"dy": dy, "dx": dx}] = w
    return da


def test_moments_are_the_consistency_conditions():
    r_y, r_x = 0.15, 0.05
    m0, m1, m2 = stencil_moments(_stencil(heat_stencil(r_y, r_x)))
    assert m0 == pytest.approx(1.0)  # constants preserved
    np.testing.assert_allclose(m1, 0.0, atol=1e-15)  # no advection
    np.testing.assert_allclose(m2, np.diag([2 * r_y, 2 * r_x]), atol=1e-15)  # 2 D dt / h^2


def test_compare_identical_and_perturbed():
    ref = _stencil(heat_stencil(0.1, 0.1))
    same = compare_stencils(ref, ref)
    assert same.max_abs_error == 0.0
    assert same.mass_in_support == pytest.approx(1.0)
    assert same.support_size == 5
    # move 0.01 of the centre weight two cells right, on a smaller grid of offsets
    learned = ref.sel(dy=slice(-1, 1)).copy()
    learned.loc[{"dy": 0, "dx": 0}] -= 0.01
    learned.loc[{"dy": 0, "dx": 2}] += 0.01
    cmp = compare_stencils(learned, ref)
    assert cmp.max_abs_error == pytest.approx(0.01)
    assert cmp.l1_error == pytest.approx(0.02)
    assert cmp.mass_in_support == pytest.approx(0.99)
    assert cmp.moment0_error == pytest.approx(0.0, abs=1e-15)
    assert cmp.moment1_error == pytest.approx((0.0, 0.02))
    assert cmp.moment2_error[1][1] == pytest.approx(0.04)
    assert cmp.as_dict()["max_moment_error"] == pytest.approx(0.04)


def test_compare_errors_and_dict():
    ref = _stencil(heat_stencil(0.1, 0.1))
    with pytest.raises(ValueError, match=r"stencils have different offset dims: learned "
                                         r"\('dlat', 'dx'\), reference \('dy', 'dx'\)"):
        compare_stencils(ref.rename(dy="dlat"), ref)
    with pytest.raises(TypeError, match=r"stencil must be an xr\.DataArray over offset dims "
                                        r"such as \('dy', 'dx'\); got ndarray"):
        compare_stencils(np.zeros((3, 3)), ref)
    d = stencil_to_dict(ref, atol=0.0)
    assert len(d["offsets"]) == 5
    assert d["offsets"][0] == [-1, 0]
    assert sum(d["weights"]) == pytest.approx(1.0)
    assert len(stencil_to_dict(ref, radius=1)["weights"]) == 9


def test_rollout_of_exact_stencil_matches_numpy_and_has_zero_error():
    weights = heat_stencil(0.2, 0.1)
    u0 = smooth_fields(2, (8, 8))

    def step(u: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(apply_stencil(u.numpy(), weights))

    traj = rollout(step, u0, 5, dtype=torch.float64)
    assert traj.shape == (6, 2, 8, 8)
    ref = [u0]
    for _ in range(5):
        ref.append(apply_stencil(ref[-1], weights))
    ref = xr.DataArray(np.stack(ref), dims=("time", "sample", "y", "x"),
                       coords={"time": np.arange(6) * 0.5})
    errors = rollout_errors(traj, ref)
    np.testing.assert_allclose(errors.rel_l2.values, 0.0, atol=1e-14)
    assert list(errors.step.values) == list(range(6))
    # a 1% scaling error gives rel_l2 = 0.01 at every step; a constant shift does not move nrmse
    scaled = rollout_errors(1.01 * ref, ref)
    np.testing.assert_allclose(scaled.rel_l2.values, 0.01, rtol=1e-10)
    np.testing.assert_allclose(scaled.nrmse.values, 0.01 * np.sqrt(
        (ref**2).mean(("y", "x")) / ref.var(("y", "x"))).mean("sample").values, rtol=1e-10)


def test_spectral_error_puts_a_single_mode_error_in_its_shell():
    y, x = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    ref = xr.DataArray(np.cos(2 * np.pi * x / 16) + 0.5 * np.sin(2 * np.pi * 2 * y / 16),
                       dims=("y", "x"))
    pred = ref + 0.1 * np.cos(2 * np.pi * 3 * x / 16)  # error only at |k| = 3 * 2pi/16
    spec = spectral_error(pred, ref)
    shell = np.argmin(np.abs(spec.wavenumber.values - 3 * 2 * np.pi / 16))
    error = spec.error_power.values
    assert error[shell] > 0
    np.testing.assert_allclose(np.delete(error, shell), 0.0, atol=1e-20)
    assert spec.relative_error.sel(wavenumber=0.0).isnull()  # zero-mean reference


def _burgers_fd_stencils(u: np.ndarray, c: float = 0.4, r: float = 0.1) -> xr.DataArray:
    """Per-cell 1-D upwind Burgers stencils: u>0 takes from the left, u<0 from the right."""
    c_i = c * u
    w = np.stack([r + np.maximum(c_i, 0), 1 - 2 * r - np.abs(c_i), r + np.maximum(-c_i, 0)], -1)
    return xr.DataArray(w[None], dims=("sample", "x", "dx"), coords={"dx": [-1, 0, 1]})


def test_upwind_consistency_of_fd_burgers_and_its_mirror():
    u = np.sin(2 * np.pi * np.arange(32) / 32)
    velocity = xr.DataArray(u[None], dims=("sample", "x"))
    stencils = _burgers_fd_stencils(u)
    assert upwind_consistency(stencils, velocity, min_speed=1e-9) == 1.0
    mirrored = stencils.assign_coords(dx=-stencils.dx)
    assert upwind_consistency(mirrored, velocity, min_speed=1e-9) == 0.0
    lean = upwind_lean(stencils, velocity)
    np.testing.assert_allclose(lean.values[0], 0.4 * np.abs(u), atol=1e-12)
    with pytest.raises(ValueError, match=r"no cell has speed above min_speed=10\.0; lower "
                                         r"min_speed"):
        upwind_consistency(stencils, velocity, min_speed=10.0)


def test_diverged_rollout_is_not_hidden_and_1d_spectrum():
    ref = xr.DataArray(np.ones((3, 2, 8)) + np.arange(8), dims=("time", "sample", "x"))
    pred = ref.copy()
    pred[2, 0, 3] = np.nan  # a blown-up model must not look perfect (no NaN skipping)
    errors = rollout_errors(pred, ref)
    assert np.isnan(errors.rel_l2.values[2])
    assert errors.rel_l2.values[1] == 0.0
    x = np.arange(16)
    spec = spectral_error(xr.DataArray(np.sin(2 * np.pi * x / 16) * 1.1, dims="x"),
                          xr.DataArray(np.sin(2 * np.pi * x / 16), dims="x"), spacing=2.0)
    assert spec.wavenumber.values[1] == pytest.approx(2 * np.pi / 32)
    assert float(spec.relative_error.sel(wavenumber=2 * np.pi / 32)) == pytest.approx(0.1)


def test_rollout_errors_with_pdebench_metrics_by_hand():
    """An error of c * step, constant in space, on a 16 x 16 grid: PDEBench's RMSE, max error,
    boundary RMSE and conserved-total error are all c * step; in Fourier space it is the k = 0
    mode alone (shell 0 of the 8 shells 0..7), so the low band [0, 4) holds c * step / 4 and
    the mid band [4, 12) nothing."""
    rng = np.random.default_rng(3)
    ref = xr.DataArray(rng.standard_normal((4, 2, 16, 16)), dims=("time", "sample", "y", "x"),
                       coords={"time": [0.0, 0.5, 1.0, 1.5]}, attrs={"units": "K"})
    c = 0.01
    pred = ref + c * xr.DataArray(np.arange(4.0), dims="time")
    errors = rollout_errors(pred, ref, pdebench=True)
    expected = c * np.arange(4.0)
    for name in ("rmse", "max_error", "brmse", "crmse"):
        np.testing.assert_allclose(errors[f"pdebench_{name}"].values, expected, atol=1e-15,
                                   err_msg=name)
    np.testing.assert_allclose(errors["pdebench_frmse"].sel(band="low").values, expected / 4,
                               atol=1e-15)
    np.testing.assert_allclose(errors["pdebench_frmse"].sel(band="mid").values, 0.0, atol=1e-15)
    # PDEBench's nRMSE (RMSE / RMS of the target) is our relative L2, not our nrmse (RMSE / std)
    np.testing.assert_allclose(errors["pdebench_nrmse"].values, errors["rel_l2"].values,
                               rtol=1e-12)
    assert not np.allclose(errors["pdebench_nrmse"].values[1:], errors["nrmse"].values[1:])
    # step 0 is included (initial_step=0) and the time axis is the reference's
    np.testing.assert_array_equal(errors["time"].values, ref["time"].values)
    np.testing.assert_array_equal(errors["step"].values, [0, 1, 2, 3])
    assert "step" in errors.coords
    assert errors["pdebench_frmse"].dims == ("band", "time")
    assert errors["pdebench_rmse"].attrs["units"] == "K"
    assert errors["pdebench_nrmse"].attrs["units"] == "1"
    assert errors["pdebench_nrmse"].attrs["long_name"] == "PDEBench RMSE / RMS of the target"


def test_rollout_errors_pdebench_keeps_nan_and_reads_batch_as_samples():
    rng = np.random.default_rng(4)
    ref = xr.DataArray(rng.standard_normal((3, 2, 8)), dims=("time", "batch", "x"))
    pred = ref + 0.1 * rng.standard_normal(ref.shape)
    pred[2, 0, 3] = np.nan
    errors = rollout_errors(pred, ref, pdebench=True)
    assert np.isnan(errors["pdebench_rmse"].values[2])
    assert np.isnan(errors["pdebench_max_error"].values[2])
    assert np.isfinite(errors["pdebench_rmse"].values[1])
    # 'batch' is PDEBench's sample axis, not a second spatial dim
    named = rollout_errors(pred.rename(batch="sample"), ref.rename(batch="sample"),
                           pdebench=True)
    xr.testing.assert_identical(errors, named)
    with pytest.raises(ValueError, match=r"PDEBench metrics need 1 to 3 spatial dims; the target "
                                         r"has \[\] besides \['sample', 'time'\]"):
        rollout_errors(ref.isel(x=0).rename(batch="sample"), ref.isel(x=0).rename(batch="sample"),
                       pdebench=True)
