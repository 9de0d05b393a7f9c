"""Viscous Burgers against the Cole-Hopf exact solution; conservation; shock speed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import solve
from scipy.integrate import quad
from scipy.special import roots_hermite
from solver_helpers import periodic_line


def cole_hopf_sine(x: np.ndarray, viscosity: float, t: float, nodes: int = 200) -> np.ndarray:
    """Exact solution of u_t + u u_x = nu u_xx with u(x, 0) = sin(x), by Gauss-Hermite quadrature.

    Cole-Hopf: u = -2 nu (log phi)_x with phi the heat-equation solution from
    phi_0 = exp(-(1 - cos y) / (2 nu)); substituting y = x - sqrt(4 nu t) eta gives
    u(x, t) = int (x - y) / t w(eta) phi_0(y) d eta / int w(eta) phi_0(y) d eta, w = exp(-eta^2).
    """
    eta, weights = roots_hermite(nodes)
    scale = np.sqrt(4 * viscosity * t)
    y = x[:, None] - scale * eta[None, :]  # (X, nodes)
    exponent = -(1 - np.cos(y)) / (2 * viscosity)
    kernel = weights * np.exp(exponent - exponent.max(axis=1, keepdims=True))
    return (kernel * scale * eta / t).sum(axis=1) / kernel.sum(axis=1)


def test_cole_hopf_quadrature_matches_adaptive_quadrature():
    viscosity, t, x = 0.05, 0.8, 2.3
    def phi(y):
        return np.exp(-(x - y) ** 2 / (4 * viscosity * t) - (1 - np.cos(y)) / (2 * viscosity))

    num = quad(lambda y: (x - y) / t * phi(y), x - 3, x + 3, limit=200, epsabs=0, epsrel=1e-12)[0]
    den = quad(phi, x - 3, x + 3, limit=200, epsabs=0, epsrel=1e-12)[0]
    assert abs(cole_hopf_sine(np.array([x]), viscosity, t)[0] - num / den) < 1e-10


@pytest.mark.parametrize("scheme", ["godunov", "upwind"])
def test_error_against_cole_hopf_falls_under_refinement(scheme):
    viscosity, t_end = 0.05, 0.8
    errors = []
    for n in (64, 128, 256):
        x = periodic_line(n)
        h = float(x[1] - x[0])
        steps = int(np.ceil(t_end / (0.5 / (1.0 / h + 2 * viscosity / h**2))))
        ds = solve("burgers", np.sin(x), steps=steps, dt=t_end / steps, save_every=steps,
                   viscosity=viscosity, scheme=scheme)
        exact = cole_hopf_sine(x.values, viscosity, t_end)
        errors.append(float(np.abs(ds.u.isel(time=-1).values - exact).max()))
    rates = [np.log2(a / b) for a, b in itertools.pairwise(errors)]
    print(f"burgers {scheme} max errors {errors}, observed orders {rates}")
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.02
    assert rates[-1] > 0.8  # first-order scheme


def test_periodic_burgers_conserves_the_integral_and_stays_bounded():
    x = periodic_line(64)
    u0 = xr.DataArray(0.5 + np.sin(x.values)[None] * [[1.0], [0.5]], dims=("sample", "x"),
                      coords={"x": x.values})
    ds = solve("burgers", u0, steps=400, viscosity=0.0, save_every=100)
    mass = ds.u.sum("x")
    assert float(np.abs(mass - mass.isel(time=0)).max() / mass.isel(time=0).min()) < 1e-12
    assert float(ds.u.max()) <= float(u0.max()) + 1e-12  # monotone scheme: no new extrema
    assert float(ds.u.min()) >= float(u0.min()) - 1e-12


def test_inviscid_shock_moves_at_rankine_hugoniot_speed():
    x = np.arange(200) * 0.1
    u0 = xr.DataArray(np.where(x < 5, 2.0, 0.0), dims="x", coords={"x": x})
    ds = solve("burgers", u0, steps=200, dt=0.025, viscosity=0.0, bc="neumann", save_every=200)
    # speed (2 + 0) / 2 = 1: after t = 5 the shock sits at x = 10, where u crosses 1
    position = float(x[np.argmax(ds.u.isel(time=-1).values < 1.0)])
    assert abs(position - 10.0) < 0.2


def test_burgers_2d_runs_and_decays():
    y = x = np.arange(16) * (2 * np.pi / 16)
    u0 = xr.DataArray(np.sin(x)[None, :] + np.cos(y)[:, None], dims=("y", "x"),
                      coords={"y": y, "x": x})
    ds = solve("burgers", u0, steps=50, viscosity=0.05)
    assert float(np.abs(ds.u.isel(time=-1)).max()) < float(np.abs(u0).max())


def test_godunov_opens_a_transonic_rarefaction_and_upwind_does_not():
    """u0 = -1 | +1: the entropy solution is the fan u = x / t; Roe-type upwind keeps the jump."""
    h = 0.05
    x = (np.arange(200) - 99.5) * h
    u0 = xr.DataArray(np.sign(x), dims="x", coords={"x": x})
    runs = {scheme: solve("burgers", u0, steps=100, dt=0.02, viscosity=0.0, bc="neumann",
                          scheme=scheme, save_every=100).u.isel(time=-1)
            for scheme in ("godunov", "upwind")}
    inside = np.abs(x) < 1.5  # the fan covers |x| < t = 2
    fan_error = float(np.abs(runs["godunov"].values[inside] - x[inside] / 2.0).max())
    assert fan_error < 0.1
    np.testing.assert_array_equal(runs["upwind"].values, u0.values)  # expansion shock stays
