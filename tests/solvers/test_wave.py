"""Wave equation (leapfrog): second-order convergence, initial velocity, energy behaviour."""

from __future__ import annotations

import numpy as np
import pytest
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


def test_wave_stencil_and_courant_one_exactness():
    stencil = update_stencil("wave", dt=0.5, spacing=0.5, speed=1.0)
    np.testing.assert_allclose(stencil.sel(dx=[-1, 0, 1]).values, [1.0, 0.0, 1.0])
    assert stencil.attrs["previous_weight"] == -1.0
    # at CFL 1 in 1-D leapfrog is exact for the d'Alembert solution of a right-moving pulse
    x = periodic_line(64, 64.0)
    pulse = np.exp(-0.1 * (x - 20) ** 2)
    velocity = 0.2 * (x - 20) * pulse  # u_t = -u_x for a right-moving wave
    ds = solve("wave", pulse, steps=40, dt=1.0, speed=1.0, initial_velocity=velocity,
               save_every=40)
    assert float(np.abs(ds.u.isel(time=-1) - np.roll(pulse.values, 40)).max()) < 2e-2


def test_neumann_wave_keeps_its_mean():
    x = np.arange(30) * 1.0
    import xarray as xr

    u0 = xr.DataArray(np.exp(-0.05 * (x - 10) ** 2), dims="x", coords={"x": x})
    ds = solve("wave", u0, steps=300, bc="neumann", save_every=100)
    mean = ds.u.mean("x")
    np.testing.assert_allclose(mean, mean.isel(time=0), rtol=1e-12)
