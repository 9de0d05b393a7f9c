"""Linear advection: exact shifts at Courant number 1, convergence orders, conservation."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import solve
from solver_helpers import observed_order, periodic_line


@pytest.mark.parametrize("scheme", ["upwind", "lax_wendroff"])
@pytest.mark.parametrize("velocity", [1.0, -1.0])
def test_courant_one_is_an_exact_shift_1d(scheme, velocity, rng):
    u0 = xr.DataArray(rng.normal(size=17), dims="x", coords={"x": np.arange(17) * 0.5})
    ds = solve("advection", u0, steps=5, dt=0.5 / abs(velocity), velocity=velocity, scheme=scheme)
    shift = int(np.sign(velocity))
    for n in range(6):
        np.testing.assert_array_equal(ds.u.isel(time=n).values, np.roll(u0.values, shift * n))


@pytest.mark.parametrize("scheme", ["upwind", "lax_wendroff"])
def test_courant_one_is_an_exact_diagonal_shift_2d(scheme, rng):
    u0 = xr.DataArray(rng.normal(size=(2, 6, 9)), dims=("sample", "y", "x"),
                      coords={"y": np.arange(6.0), "x": np.arange(9.0) * 2})
    ds = solve("advection", u0, steps=4, dt=1.0, velocity=(-1.0, 2.0), scheme=scheme)
    expected = np.roll(u0.values, (-4, 4), axis=(1, 2))
    np.testing.assert_array_equal(ds.u.isel(time=-1).values, expected)


@pytest.mark.parametrize(("scheme", "theory", "sizes"),
                         [("upwind", 1.0, (128, 256, 512)), ("lax_wendroff", 2.0, (32, 64, 128))])
def test_convergence_order(scheme, theory, sizes):
    velocity, courant, t_end = 1.0, 0.5, 1.0
    errors, spacings = [], []
    for n in sizes:
        x = periodic_line(n)
        h = float(x[1] - x[0])
        steps = round(t_end / (courant * h / velocity))
        ds = solve("advection", np.sin(x), steps=steps, dt=t_end / steps, save_every=steps,
                   velocity=velocity, scheme=scheme)
        errors.append(float(np.abs(ds.u.isel(time=-1) - np.sin(x - velocity * t_end)).max()))
        spacings.append(h)
    order = observed_order(errors, spacings)
    print(f"advection {scheme} convergence order {order:.3f} (errors {errors})")
    assert abs(order - theory) < 0.1


@pytest.mark.parametrize("scheme", ["upwind", "lax_wendroff"])
def test_periodic_advection_conserves_the_integral(scheme, rng):
    u0 = xr.DataArray(2.0 + rng.random((2, 16, 20)), dims=("sample", "y", "x"),
                      coords={"y": np.arange(16.0), "x": np.arange(20.0)})
    ds = solve("advection", u0, steps=200, velocity=(0.3, -0.7), scheme=scheme, save_every=50)
    mass = ds.u.sum(("y", "x"))
    drift = float(np.abs(mass - mass.isel(time=0)).max() / np.abs(mass.isel(time=0)).min())
    print(f"advection {scheme} relative mass drift {drift:.2e}")
    assert drift < 1e-12


def test_upwind_is_monotone_and_dirichlet_inflow_enters():
    x = np.arange(40) * 1.0
    u0 = xr.DataArray(np.where(x < 10, 1.0, 0.0), dims="x", coords={"x": x})
    ds = solve("advection", u0, steps=60, velocity=0.5, bc="dirichlet", dt=1.0)
    assert float(ds.u.min()) >= 0.0
    assert float(ds.u.max()) <= 1.0
    # zero inflow from the left wall: after 60 steps (30 cells) the pulse has left x < 15
    assert float(ds.u.isel(time=-1).sel(x=slice(0, 15)).max()) < 1e-3
