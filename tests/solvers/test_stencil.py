"""Stencil data class and update_stencil: layout, algebra, agreement with the solver step."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import (
    BoundaryCondition,
    Stencil,
    UnstableStepWarning,
    solve,
    update_stencil,
)


def test_update_stencil_layout_2d():
    da = update_stencil("heat", dt=0.1, spacing=(1.0, 0.5), diffusivity=(0.6, 0.3))
    assert da.dims == ("dy", "dx")
    assert da.dy.values.tolist() == [-1, 0, 1]
    assert da.dx.dtype.kind == "i"
    r_y, r_x = 0.6 * 0.1 / 1.0, 0.3 * 0.1 / 0.25
    assert da.sel(dy=1, dx=0) == pytest.approx(r_y)
    assert da.sel(dy=0, dx=-1) == pytest.approx(r_x)
    assert da.sel(dy=0, dx=0) == pytest.approx(1 - 2 * r_y - 2 * r_x)
    assert da.sel(dy=1, dx=1) == 0.0
    assert da.attrs["equation"] == "heat"
    assert da.attrs["stable"] == 1
    assert float(da.sum()) == pytest.approx(1.0)


def test_update_stencil_layout_1d_and_upwind_direction():
    da = update_stencil("advection", dt=0.25, spacing=1.0, velocity=2.0)
    assert da.dims == ("dx",)
    # v > 0: information comes from the left, u_new[x] = 0.5 u[x] + 0.5 u[x - 1]
    assert da.sel(dx=-1) == 0.5
    assert da.sel(dx=0) == 0.5
    assert da.sel(dx=1) == 0.0
    lw = update_stencil("advection", dt=0.25, spacing=1.0, velocity=2.0, scheme="lax_wendroff")
    np.testing.assert_allclose(lw.values, [0.375, 0.75, -0.125])


def test_scalar_spacing_with_two_component_velocity_is_2d():
    da = update_stencil("advection", dt=0.5, spacing=1.0, velocity=(1.0, -1.0))
    assert da.dims == ("dy", "dx")
    assert da.shape == (3, 3)
    assert da.sel(dy=-1, dx=1) == pytest.approx(0.25)  # corner-transport upwind


@pytest.mark.parametrize("bc", ["periodic", "neumann", BoundaryCondition("dirichlet", (1.0, -2.0))])
@pytest.mark.parametrize(("equation", "params"), [
    ("heat", {"diffusivity": (0.3, 0.2)}),
    ("advection", {"velocity": (0.4, -0.3), "scheme": "lax_wendroff"}),
    ("advection", {"velocity": (-0.4, 0.3), "scheme": "upwind"}),
])
def test_solver_step_equals_stencil_apply(equation, params, bc, rng):
    u0 = xr.DataArray(rng.normal(size=(2, 7, 9)), dims=("sample", "y", "x"),
                      coords={"y": np.arange(7.0), "x": np.arange(9.0)})
    ds = solve(equation, u0, steps=3, dt=0.5, bc=bc, **params)
    stencil = Stencil.from_dataarray(update_stencil(equation, dt=0.5, spacing=(1.0, 1.0), **params))
    expected = u0.values
    for n in range(1, 4):
        expected = stencil.apply(expected, bc)
        np.testing.assert_allclose(ds.u.isel(time=n).values, expected, rtol=1e-13, atol=1e-14)


def test_roundtrip_and_algebra():
    s = Stencil.from_dict({(0, -1): 0.25, (0, 1): 0.25, (0, 0): 0.5})
    back = Stencil.from_dataarray(s.to_dataarray())
    assert back.as_dict() == s.as_dict()
    assert s.radius == (0, 1)
    assert s.ndim == 2
    square = s.compose(s)
    assert square.as_dict()[(0, 0)] == pytest.approx(0.375)
    theta = np.linspace(-np.pi, np.pi, 7)
    np.testing.assert_allclose(square.symbol(np.zeros(7), theta), s.symbol(np.zeros(7), theta) ** 2)
    with pytest.raises(ValueError, match="offsets must be unique"):
        Stencil(np.array([[0], [0]]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"weights must have shape \(2,\)"):
        Stencil(np.array([[0], [1]]), np.array([1.0]))
    with pytest.raises(ValueError, match=r"stencil array must have dims \('dy', 'dx'\)"):
        Stencil.from_dataarray(xr.DataArray(np.ones((3, 3)), dims=("a", "b")))


@pytest.mark.parametrize(("equation", "params"), [
    ("heat", {"diffusivity": 1.0}), ("advection", {"velocity": 1.0}),
    ("advection", {"velocity": 1.0, "scheme": "lax_wendroff"}),
])
def test_von_neumann_stability_matches_the_reported_limit(equation, params):
    """Just below the reported largest stable dt |G| <= 1; well above it some |G| > 1."""
    theta = np.linspace(-np.pi, np.pi, 181)
    ty, tx = np.meshgrid(theta, theta, indexing="ij")
    probe = update_stencil(equation, dt=1e-3, spacing=(1.0, 1.0), **params)
    dt_max = probe.attrs["cfl_limit"] * 1e-3 / probe.attrs["cfl"]
    assert probe.attrs["dt_max"] == pytest.approx(dt_max, rel=1e-12)
    stable = Stencil.from_dataarray(update_stencil(equation, dt=0.999 * dt_max, spacing=(1.0, 1.0),
                                                   **params))
    assert np.abs(stable.symbol(ty, tx)).max() <= 1 + 1e-12
    with pytest.warns(UnstableStepWarning, match=r"the largest stable dt is "):
        array = update_stencil(equation, dt=1.2 * dt_max, spacing=(1.0, 1.0), **params)
    assert array.attrs["stable"] == 0
    assert np.abs(Stencil.from_dataarray(array).symbol(ty, tx)).max() > 1 + 1e-3
