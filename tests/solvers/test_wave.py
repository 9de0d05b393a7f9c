"""Wave equation (leapfrog): second-order convergence, initial velocity, energy behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import solve, update_stencil
from solver_helpers import observed_order, periodic_line


@pytest.mark.parametrize("start", ["displacement", "velocity"])
def test_second_order_convergence(start):
    speed, courant, t_end = 1.5, 0.5, 1.0
    errors, spacings = [], []
    for n in (32, 64, 128):
        x = periodic_line(n)
        h = float(x[1] - x[0])
        steps = round(t_end / (courant * h / speed))
        dt = t_end / steps
        if start == "displacement":  # u = sin(x) cos(c t)
            ds = solve("wave", np.sin(x), steps=steps, dt=dt, save_every=steps, speed=speed)
            exact = np.sin(x) * np.cos(speed * t_end)
        else:  # u = sin(2x) sin(2 c t) / (2 c), u(0) = 0, u_t(0) = sin(2x)
            ds = solve("wave", 0 * x, steps=steps, dt=dt, save_every=steps, speed=speed,
                       initial_velocity=np.sin(2 * x))
            exact = np.sin(2 * x) * np.sin(2 * speed * t_end) / (2 * speed)
        errors.append(float(np.abs(ds.u.isel(time=-1) - exact).max()))
        spacings.append(h)
    order = observed_order(errors, spacings)
    print(f"wave ({start}) convergence order {order:.3f} (errors {errors})")
    assert abs(order - 2.0) < 0.1


def test_wave_stencil_at_courant_one():
    stencil = update_stencil("wave", dt=0.5, spacing=0.5, speed=1.0)
    np.testing.assert_allclose(stencil.sel(dx=[-1, 0, 1]).values, [1.0, 0.0, 1.0])
    assert stencil.attrs["previous_weight"] == -1.0


def test_leapfrog_at_courant_one_is_exact_for_dalembert_given_an_exact_first_step(rng):
    """u = f(x - t) + g(x + t) on grid points, for arbitrary (even rough) grid functions f, g.

    At Courant number 1 leapfrog reads u_i^{n+1} = u_{i+1}^n + u_{i-1}^n - u_i^{n-1}, which the
    d'Alembert solution satisfies exactly; the Taylor start u^1 = (u_{i+1} + u_{i-1}) / 2 + dt v_i
    is exact too when v_i = (f_{i-1} - f_{i+1} + g_{i+1} - g_{i-1}) / (2 h), the central
    difference of -f' + g'. So every step equals the shifted data up to round-off.
    """
    n, h, steps = 48, 0.5, 60
    f, g = rng.normal(size=n), rng.normal(size=n)
    x = np.arange(n) * h
    u0 = xr.DataArray(f + g, dims="x", coords={"x": x})
    velocity = (np.roll(f, 1) - np.roll(f, -1) + np.roll(g, -1) - np.roll(g, 1)) / (2 * h)
    ds = solve("wave", u0, steps=steps, dt=h, speed=1.0, initial_velocity=velocity)
    assert ds.attrs["cfl"] == 1.0
    expected = np.stack([np.roll(f, k) + np.roll(g, -k) for k in range(steps + 1)])  # (T, X)
    np.testing.assert_allclose(ds.u.values, expected, rtol=0, atol=1e-12)


def test_neumann_wave_keeps_its_mean():
    x = np.arange(30) * 1.0
    u0 = xr.DataArray(np.exp(-0.05 * (x - 10) ** 2), dims="x", coords={"x": x})
    ds = solve("wave", u0, steps=300, bc="neumann", save_every=100, speed=1.0)
    mean = ds.u.mean("x")
    np.testing.assert_allclose(mean, mean.isel(time=0), rtol=1e-12)
