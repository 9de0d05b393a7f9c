"""Bad input: every error names the argument, the value and what is valid (messages pinned)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import BlowUpError, BoundaryCondition, solve, update_stencil


@pytest.fixture
def u2d() -> xr.DataArray:
    return xr.DataArray(np.zeros((8, 8)), dims=("y", "x"),
                        coords={"y": np.arange(8.0), "x": np.arange(8.0)})


def test_unstable_dt_names_number_limit_and_largest_stable_dt(u2d):
    message = ("dt=0.8 is unstable for heat with diffusivity=1.0, dy=1.0, dx=1.0 "
               "(diffusion number (D_y/dy^2 + D_x/dx^2) dt/2 = 0.8 > 0.25); use dt <= 0.25")
    with pytest.raises(ValueError, match=re.escape(message)):
        solve("heat", u2d, steps=10, dt=0.8, diffusivity=1.0)


def test_dt_none_chooses_and_records_a_stable_step(u2d):
    ds = solve("heat", u2d, steps=2, diffusivity=1.0)
    assert ds.attrs["dt"] == pytest.approx(0.9 * 0.25)
    assert "dt=None: chose dt=0.225" in ds.attrs["dt_note"]
    assert ds.attrs["cfl"] == pytest.approx(0.225)


def test_non_finite_u0_is_rejected(u2d):
    u0 = u2d.copy()
    u0[3, 5] = np.nan
    u0[4, 1] = np.inf
    with pytest.raises(ValueError, match=r"u0 contains 2 non-finite value\(s\) \(NaN/inf\), "
                                         r"the first at \{'y': 3, 'x': 5\}"):
        solve("heat", u0, steps=1, diffusivity=1.0)


def test_unnamed_wrong_and_misordered_dims():
    with pytest.raises(ValueError, match=r"unnamed dims \('dim_0', 'dim_1'\).*valid dims: "):
        solve("heat", xr.DataArray(np.zeros((4, 4))), steps=1, spacing=1.0)
    with pytest.raises(ValueError, match=r"dims \('lat', 'lon'\) are not supported; valid dims: "
                                         r"\('x',\), \('y', 'x'\)"):
        solve("heat", xr.DataArray(np.zeros((4, 4)), dims=("lat", "lon")), steps=1, spacing=1.0)
    with pytest.raises(ValueError, match=r"wrong order; use u0.transpose\('y', 'x'\)"):
        solve("heat", xr.DataArray(np.zeros((4, 4)), dims=("x", "y")), steps=1, spacing=1.0)
    with pytest.raises(ValueError, match=r"u0 as an ndarray must have 1, 2 or 3 dims"):
        solve("heat", np.zeros((2, 2, 2, 2)), steps=1, spacing=1.0)
    with pytest.raises(ValueError, match="u0 is a plain array: pass spacing="):
        solve("heat", np.zeros(8), steps=1)
    with pytest.raises(TypeError, match=r"u0 must be an xr\.DataArray or a numpy array, got str"):
        solve("heat", "u0", steps=1)


def test_non_uniform_and_decreasing_coordinates():
    x = np.array([0.0, 1.0, 2.0, 3.5, 4.0])
    with pytest.raises(ValueError, match=r"coordinate 'x' is not uniformly spaced \(steps from "
                                         r"0\.5 to 1\.5\)"):
        solve("heat", xr.DataArray(np.zeros(5), dims="x", coords={"x": x}), steps=1)
    with pytest.raises(ValueError, match="coordinate 'x' must increase"):
        solve("heat", xr.DataArray(np.zeros(5), dims="x", coords={"x": -np.arange(5.0)}), steps=1)
    with pytest.raises(ValueError, match=r"spacing=0\.5 disagrees with u0's 'x' coordinate step"):
        solve("heat", xr.DataArray(np.zeros(5), dims="x", coords={"x": np.arange(5.0)}),
              steps=1, spacing=0.5)


def test_unknown_names_list_the_valid_ones(u2d):
    valid = "heat, advection, burgers, wave, fisher_kpp, allen_cahn, gray_scott"
    with pytest.raises(ValueError, match=f"unknown equation 'navier_stokes'; valid: {valid}"):
        solve("navier_stokes", u2d, steps=1)
    with pytest.raises(ValueError, match="unknown scheme 'weno' for advection; valid: upwind, "
                                         "lax_wendroff"):
        solve("advection", u2d, steps=1, scheme="weno")
    with pytest.raises(ValueError, match="unknown bc 'reflecting'; valid: periodic, dirichlet, "
                                         "neumann"):
        solve("heat", u2d, steps=1, bc="reflecting", diffusivity=1.0)
    with pytest.raises(TypeError, match="unknown parameter\\(s\\) 'velocity' for heat; valid: "
                                        "diffusivity, scheme"):
        solve("heat", u2d, steps=1, velocity=1.0)
    with pytest.raises(ValueError, match="unknown device 'tpu'; valid: cpu, auto, cuda"):
        solve("heat", u2d, steps=1, device="tpu", diffusivity=1.0)
    with pytest.raises(ValueError, match=r"bc mapping must name exactly the dims \('y', 'x'\)"):
        solve("heat", u2d, steps=1, bc={"x": "periodic"}, diffusivity=1.0)
    with pytest.raises(ValueError, match="bc 'neumann' takes no value"):
        BoundaryCondition("neumann", 1.0)


def test_steps_and_save_every(u2d):
    with pytest.raises(ValueError, match="save_every=7 does not divide steps=100; use a divisor "
                                         "of 100: 1, 2, 4, 5, 10, 20, 25, 50, 100"):
        solve("heat", u2d, steps=100, save_every=7, diffusivity=1.0)
    with pytest.raises(ValueError, match="steps=0 must be a positive integer"):
        solve("heat", u2d, steps=0, diffusivity=1.0)
    with pytest.raises(TypeError, match=r"steps must be an integer, got 2\.5"):
        solve("heat", u2d, steps=2.5, diffusivity=1.0)


def test_bad_parameter_values(u2d):
    with pytest.raises(ValueError, match="gray_scott is solved in 2-D, got a 1-D grid"):
        solve("gray_scott", np.ones(8), spacing=1.0, steps=1)
    with pytest.raises(ValueError, match=r"gray_scott needs v0="):
        solve("gray_scott", u2d, steps=1, diffusivity_u=0.16, diffusivity_v=0.08, feed=0.035,
              kill=0.065)
    with pytest.raises(ValueError, match=r"dt=None: nothing limits the step of heat with "
                                         r"diffusivity=0\.0; pass dt="):
        solve("heat", u2d, steps=1, diffusivity=0.0)
    with pytest.raises(ValueError, match=r"dt=-0\.1 must be a positive finite number"):
        solve("heat", u2d, steps=1, dt=-0.1, diffusivity=1.0)
    with pytest.raises(TypeError, match=r"dt must be a number or None, got '0\.1'"):
        solve("heat", u2d, steps=1, dt="0.1", diffusivity=1.0)


def test_an_overflowing_stability_number_is_an_error_not_dt_zero():
    with pytest.raises(ValueError, match=re.escape(
            "heat with diffusivity=1e+300 on spacing [1e-10] has no stable dt: its diffusion "
            "number per unit dt, D dt/dx^2 with dt = 1, overflows")):
        solve("heat", np.zeros(4), spacing=1e-10, steps=1, diffusivity=1e300)


@pytest.mark.parametrize("value", [np.nan, (0.0, np.inf)])
def test_non_finite_dirichlet_wall_values_are_rejected(value):
    with pytest.raises(ValueError, match=r"bc value=.* must be finite \(the wall value\(s\) in "
                                         r"units of u\)"):
        BoundaryCondition("dirichlet", value)
    with pytest.raises(TypeError, match=r"bc value must be a number or \(low, high\) numbers, "
                                        r"got 'hot'"):
        BoundaryCondition("dirichlet", "hot")


def test_blow_up_stops_with_the_step():
    u0 = xr.DataArray(np.full(8, -10.0), dims="x", coords={"x": np.arange(8.0)})
    with pytest.raises(BlowUpError, match=r"fisher_kpp solve blew up: non-finite values "
                                          r"\(NaN/inf\) "
                                          r"found at step 12 of 200 \(t=0\.6\)"):
        solve("fisher_kpp", u0, steps=200, dt=0.05, diffusivity=1.0, rate=1.0)
    # between saves the state is checked every 32 steps
    with pytest.raises(BlowUpError, match=r"found at step 32 of 200 \(t=1\.6\); the "
                                          r"reaction-diffusion number was 0\.15 \(limit 1\)"):
        solve("fisher_kpp", u0, steps=200, dt=0.05, save_every=50, diffusivity=1.0, rate=1.0)


def test_update_stencil_rejects_nonlinear_equations():
    with pytest.raises(ValueError, match="burgers is nonlinear: its update has no fixed stencil; "
                                         "update_stencil is defined for heat, advection, wave"):
        update_stencil("burgers", dt=0.1, spacing=1.0)
    with pytest.raises(ValueError, match="dt=0 must be a positive finite number"):
        update_stencil("heat", dt=0, spacing=1.0)
