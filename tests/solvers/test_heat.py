"""Heat equation: exact discrete Fourier decay, second-order convergence, conservation, BCs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import BoundaryCondition, solve
from solver_helpers import observed_order, periodic_line


def test_fourier_mode_decays_by_exact_factor_1d():
    n, k, diffusivity, dt, steps = 32, 3, 0.7, 0.01, 20
    x = periodic_line(n)
    h = float(x[1] - x[0])
    ds = solve("heat", np.sin(k * x), steps=steps, dt=dt, diffusivity=diffusivity)
    r = diffusivity * dt / h**2
    factor = 1 + 2 * r * (np.cos(k * h) - 1)
    expected = np.sin(k * x.values)[None, :] * factor ** np.arange(steps + 1)[:, None]
    np.testing.assert_allclose(ds.u.values, expected, rtol=1e-12, atol=1e-13)


def test_fourier_mode_decays_by_exact_factor_per_axis_2d_anisotropic():
    ny, nx, ky, kx, dt, steps = 16, 24, 2, 5, 0.02, 15
    dy, dx, d_y, d_x = 0.5, 0.25, 0.6, 0.3
    y, x = np.arange(ny) * dy, np.arange(nx) * dx
    period_y, period_x = ny * dy, nx * dx
    mode = np.cos(2 * np.pi * ky * y / period_y)[:, None] * np.sin(2 * np.pi * kx * x / period_x)
    u0 = xr.DataArray(mode, dims=("y", "x"), coords={"y": y, "x": x})
    ds = solve("heat", u0, steps=steps, dt=dt, diffusivity=(d_y, d_x))
    fy = 1 + 2 * (d_y * dt / dy**2) * (np.cos(2 * np.pi * ky * dy / period_y) - 1)
    fx = 1 + 2 * (d_x * dt / dx**2) * (np.cos(2 * np.pi * kx * dx / period_x) - 1)
    # the 2-D forward-Euler factor is 1 + (fy - 1) + (fx - 1): the per-axis changes add
    factor = 1 + (fy - 1) + (fx - 1)
    expected = mode[None] * factor ** np.arange(steps + 1)[:, None, None]
    np.testing.assert_allclose(ds.u.values, expected, rtol=1e-11, atol=1e-13)


def test_second_order_convergence_with_dt_proportional_to_dx_squared():
    diffusivity, t_end, r = 0.5, 0.4, 0.4
    errors, spacings = [], []
    for n in (16, 32, 64):
        x = periodic_line(n)
        h = float(x[1] - x[0])
        steps = int(np.ceil(t_end / (r * h**2 / diffusivity)))
        ds = solve("heat", np.sin(x) + np.cos(2 * x), steps=steps, dt=t_end / steps,
                   save_every=steps, diffusivity=diffusivity)
        exact = (np.exp(-diffusivity * t_end) * np.sin(x)
                 + np.exp(-4 * diffusivity * t_end) * np.cos(2 * x))
        errors.append(float(np.abs(ds.u.isel(time=-1) - exact).max()))
        spacings.append(h)
    order = observed_order(errors, spacings)
    print(f"heat convergence order {order:.3f} (errors {errors})")
    assert abs(order - 2.0) < 0.1


@pytest.mark.parametrize("bc", ["periodic", "neumann"])
def test_heat_conserves_the_integral(bc, rng):
    u0 = xr.DataArray(1.0 + rng.random((3, 20, 24)), dims=("sample", "y", "x"),
                      coords={"y": np.arange(20.0), "x": np.arange(24.0)})
    ds = solve("heat", u0, steps=300, diffusivity=(0.3, 0.2), bc=bc, save_every=100)
    mass = ds.u.sum(("y", "x"))
    drift = np.abs(mass - mass.isel(time=0)).max() / np.abs(mass.isel(time=0)).min()
    print(f"heat {bc} relative mass drift {float(drift):.2e}")
    assert drift < 1e-12
    assert float(ds.u.isel(time=-1).std(("y", "x")).max()) < float(u0.std(("y", "x")).min())


def test_dirichlet_steady_state_is_linear_between_the_walls():
    n, h, low, high = 16, 0.5, 1.0, 3.0
    x = np.arange(n) * h
    u0 = xr.DataArray(np.zeros(n), dims="x", coords={"x": x})
    ds = solve("heat", u0, steps=4000, bc=BoundaryCondition("dirichlet", (low, high)),
               save_every=4000, diffusivity=1.0)
    wall_lo, length = x[0] - h / 2, n * h
    expected = low + (high - low) * (x - wall_lo) / length
    np.testing.assert_allclose(ds.u.isel(time=-1), expected, atol=1e-10)


def test_mixed_boundaries_per_dim():
    u0 = xr.DataArray(np.ones((6, 8)), dims=("y", "x"),
                      coords={"y": np.arange(6.0), "x": np.arange(8.0)})
    ds = solve("heat", u0, steps=50, bc={"y": "periodic", "x": BoundaryCondition("dirichlet", 1.0)},
               diffusivity=1.0)
    np.testing.assert_allclose(ds.u, 1.0, atol=1e-14)  # the constant 1 fits both conditions
    assert ds.attrs["bc"] == "y: periodic; x: dirichlet(1, 1)"
