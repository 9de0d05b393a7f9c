"""Reaction-diffusion: convergence orders (Fisher-KPP against its exact travelling wave, Allen-Cahn
by refinement), Fisher-KPP front speed, Allen-Cahn bounds, Gray-Scott patterns."""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr
from gridformer.solvers import BoundaryCondition, solve
from solver_helpers import observed_order


def fisher_kpp_wave(x: np.ndarray, t: float) -> np.ndarray:
    """Exact travelling wave of u_t = u_xx + u (1 - u) (Ablowitz-Zeppetella), speed 5 / sqrt(6)."""
    return (1.0 + np.exp(x / np.sqrt(6.0) - 5.0 * t / 6.0)) ** -2


def test_fisher_kpp_converges_at_second_order_to_the_exact_travelling_wave():
    """dt ~ h^2, so the O(dt) + O(h^2) error is second order in h. Walls at x = -50 and 50 hold
    the wave's limits 1 and 0 (the exact values there differ by < 1e-8 up to t = 2)."""
    t_end, errors, spacings = 2.0, [], []
    for level, h in enumerate((0.5, 0.25, 0.125)):
        x = -50.0 + h / 2 + np.arange(round(100.0 / h)) * h
        steps = 40 * 4**level  # dt = 0.05, 0.0125, 0.003125: exactly proportional to h^2
        u0 = xr.DataArray(fisher_kpp_wave(x, 0.0), dims="x", coords={"x": x})
        ds = solve("fisher_kpp", u0, steps=steps, dt=t_end / steps, save_every=steps,
                   bc=BoundaryCondition("dirichlet", (1.0, 0.0)), diffusivity=1.0, rate=1.0)
        errors.append(float(np.abs(ds.u.isel(time=-1).values - fisher_kpp_wave(x, t_end)).max()))
        spacings.append(h)
    order = observed_order(errors, spacings)
    print(f"fisher-kpp convergence order {order:.3f} (max errors {errors})")
    assert abs(order - 2.0) < 0.1
    assert errors[-1] < 1e-3


def test_allen_cahn_converges_at_second_order_under_refinement():
    """2-D periodic, dt ~ h^2; differences between successive grids at the shared points."""
    t_end, finals = 1.0, []
    for level, n in enumerate((16, 32, 64, 128)):
        h = 2 * np.pi / n
        x = np.arange(n) * h
        u0 = 0.8 * np.cos(x)[:, None] * np.sin(x)[None, :] + 0.3 * np.cos(2 * x)[None, :]
        steps = 8 * 4**level
        ds = solve("allen_cahn", xr.DataArray(u0, dims=("y", "x"), coords={"y": x, "x": x}),
                   steps=steps, dt=t_end / steps, save_every=steps, diffusivity=0.1, rate=1.0)
        finals.append(ds.u.isel(time=-1).values)
    # grid n's points are every second point of grid 2n
    gaps = [float(np.abs(a - b[::2, ::2]).max()) for a, b in itertools.pairwise(finals)]
    order = float(np.log2(gaps[-2] / gaps[-1]))
    print(f"allen-cahn convergence order {order:.3f} (successive differences {gaps})")
    assert abs(order - 2.0) < 0.1


def front_position(u: np.ndarray, x: np.ndarray) -> float:
    """Where u first drops below 1/2 (linear interpolation between grid points)."""
    i = int(np.argmax(u < 0.5))
    return float(x[i - 1] + (u[i - 1] - 0.5) / (u[i - 1] - u[i]) * (x[i] - x[i - 1]))


def test_fisher_kpp_front_speed_approaches_two_sqrt_d_r():
    diffusivity, rate, h, t_end = 0.5, 2.0, 0.0625, 40.0
    x = np.arange(int(110 / h)) * h
    u0 = xr.DataArray(np.where(x < 10, 1.0, 0.0), dims="x", coords={"x": x})
    steps = 4 * int(np.ceil(t_end / (0.9 / (2 * diffusivity / h**2 + rate)) / 4))
    ds = solve("fisher_kpp", u0, steps=steps, dt=t_end / steps, bc="neumann",
               save_every=steps // 4, diffusivity=diffusivity, rate=rate)
    t = ds.time.values
    positions = [front_position(ds.u.isel(time=i).values, x) for i in (2, 4)]
    speed = (positions[1] - positions[0]) / (t[4] - t[2])
    theory = 2 * np.sqrt(diffusivity * rate)
    print(f"fisher-kpp front speed {speed:.4f} vs 2 sqrt(D r) = {theory:.4f}")
    # fronts from steep data approach c* from below like c* - 3 / (2 r t) (Bramson): 1.974 here
    assert abs(speed - theory) < 0.03 * theory
    assert float(ds.u.min()) >= 0.0
    assert float(ds.u.max()) <= 1.0


def test_allen_cahn_stays_in_minus_one_one_and_separates_phases(rng):
    u0 = xr.DataArray(rng.uniform(-1, 1, size=(2, 24, 24)), dims=("sample", "y", "x"),
                      coords={"y": np.arange(24.0), "x": np.arange(24.0)})
    ds = solve("allen_cahn", u0, steps=300, diffusivity=0.3, rate=1.0, save_every=100)
    assert float(ds.u.min()) >= -1.0
    assert float(ds.u.max()) <= 1.0
    final = np.abs(ds.u.isel(time=-1).values)
    assert np.median(final) > 0.9  # most cells settle near the wells -1 and +1


def test_allen_cahn_1d_kink_is_stationary():
    x = np.arange(80) * 0.25 - 10.0
    u0 = xr.DataArray(np.tanh(x / np.sqrt(2)), dims="x", coords={"x": x})
    ds = solve("allen_cahn", u0, steps=400, bc="neumann", save_every=400, diffusivity=1.0,
               rate=1.0)
    assert float(np.abs(ds.u.isel(time=-1) - u0).max()) < 5e-3


def test_gray_scott_two_fields_stay_bounded_and_form_a_pattern():
    n = 32
    y = x = np.arange(n) * 1.0
    u = np.ones((n, n))
    v = np.zeros((n, n))
    u[12:20, 12:20], v[12:20, 12:20] = 0.5, 0.25
    initial = xr.Dataset({"u": (("y", "x"), u), "v": (("y", "x"), v)}, coords={"y": y, "x": x})
    ds = solve("gray_scott", initial, steps=400, dt=1.0, save_every=100, diffusivity_u=0.16,
               diffusivity_v=0.08, feed=0.035, kill=0.065)
    assert set(ds.data_vars) == {"u", "v"}
    assert ds.v.dims == ("time", "y", "x")
    assert float(ds.u.min()) >= 0.0
    assert float(ds.u.max()) <= 1.0
    assert float(ds.v.min()) >= 0.0
    assert float(ds.v.max()) <= 1.0
    assert float(ds.v.isel(time=-1).std()) > 0.01  # the spot grows into a structure
    assert ds.attrs["feed"] == 0.035
