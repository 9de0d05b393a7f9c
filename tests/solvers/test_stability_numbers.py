"""Stability numbers: each one named for what it is, with its formula, limit and the classical
per-axis numbers (diffusion number D dt/h^2, Courant number v dt/h, reaction number L dt)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import solve, update_stencil

DT = 0.1
SPACING = (1.0, 0.5)  # (dy, dx): unequal, so a mixed-up axis shows


def _u0(scale: float = 1.0) -> xr.DataArray:
    values = scale * np.cos(np.arange(6))[:, None] * np.ones(8)[None, :]  # max |u| = scale
    return xr.DataArray(values, dims=("y", "x"),
                        coords={"y": np.arange(6) * SPACING[0], "x": np.arange(8) * SPACING[1]})


# (equation, params, name, formula, number, limit, classical numbers), all worked out by hand for
# dt = 0.1, dy = 1, dx = 0.5 and max|u0| = 1
CASES = [
    ("heat", {"diffusivity": (0.6, 0.3)}, "diffusion number", "(D_y/dy^2 + D_x/dx^2) dt/2",
     (0.06 + 0.12) / 2, 0.25, {"diffusion_numbers": [0.06, 0.12]}),
    ("advection", {"velocity": (0.5, -1.0)}, "Courant number", "max(|v_y|/dy, |v_x|/dx) dt",
     0.2, 1.0, {"courant_numbers": [0.05, -0.2]}),
    ("wave", {"speed": 2.0}, "Courant number", "c dt sqrt(1/dy^2 + 1/dx^2)",
     0.2 * np.sqrt(5.0), 1.0, {"courant_numbers": [0.2, 0.4]}),
    ("burgers", {"viscosity": 0.05}, "advection-diffusion number",
     "(max|u0| (1/dy + 1/dx) + 2 nu (1/dy^2 + 1/dx^2)) dt",
     0.1 * (3.0 + 0.5), 1.0, {"courant_numbers": [0.1, 0.2], "diffusion_numbers": [0.005, 0.02]}),
    ("fisher_kpp", {"diffusivity": 0.1, "rate": 2.0}, "reaction-diffusion number",
     "(2 (D_y/dy^2 + D_x/dx^2) + r) dt", 0.1 * (1.0 + 2.0), 1.0,
     {"diffusion_numbers": [0.01, 0.04], "reaction_number": 0.2}),
    ("allen_cahn", {"diffusivity": 0.1, "rate": 2.0}, "reaction-diffusion number",
     "(2 (D_y/dy^2 + D_x/dx^2) + 2 r) dt", 0.1 * (1.0 + 4.0), 1.0,
     {"diffusion_numbers": [0.01, 0.04], "reaction_number": 0.4}),
    ("gray_scott", {"diffusivity_u": 0.16, "diffusivity_v": 0.08, "feed": 0.035, "kill": 0.065},
     "reaction-diffusion number",
     "(2 max(D_u,y/dy^2 + D_u,x/dx^2, D_v,y/dy^2 + D_v,x/dx^2) + F + k) dt",
     0.1 * (2 * 0.8 + 0.1), 1.0,
     {"diffusion_numbers_u": [0.016, 0.064], "diffusion_numbers_v": [0.008, 0.032],
      "reaction_number": 0.01}),
]


@pytest.mark.parametrize(("equation", "params", "name", "formula", "number", "limit", "named"),
                         CASES, ids=[c[0] for c in CASES])
def test_attrs_name_the_number_its_formula_and_the_classical_numbers(
        equation, params, name, formula, number, limit, named):
    extra = {"v0": 0.2 * xr.ones_like(_u0())} if equation == "gray_scott" else {}
    ds = solve(equation, _u0(), steps=1, dt=DT, **params, **extra)
    assert ds.attrs["cfl_name"] == name
    assert ds.attrs["cfl_formula"] == formula
    assert ds.attrs["cfl"] == pytest.approx(number, rel=1e-12)
    assert ds.attrs["cfl_limit"] == limit
    assert ds.attrs["dt_max"] == pytest.approx(DT * limit / number, rel=1e-12)
    for key, value in named.items():
        np.testing.assert_allclose(ds.attrs[key], value, rtol=1e-12)


def test_one_d_formulas_are_the_textbook_numbers():
    u0 = xr.DataArray(np.sin(np.arange(8.0)), dims="x", coords={"x": np.arange(8) * 0.5})
    heat = solve("heat", u0, steps=1, dt=0.05, diffusivity=2.0)
    assert (heat.attrs["cfl_name"], heat.attrs["cfl_formula"]) == ("diffusion number",
                                                                   "D dt/dx^2")
    assert heat.attrs["cfl"] == pytest.approx(2.0 * 0.05 / 0.25)
    assert heat.attrs["cfl_limit"] == 0.5
    wave = solve("wave", u0, steps=1, dt=0.2, speed=2.0)
    assert (wave.attrs["cfl_formula"], wave.attrs["cfl"]) == ("c dt/dx", pytest.approx(0.8))
    fisher = solve("fisher_kpp", u0, steps=1, dt=0.01, diffusivity=1.0, rate=3.0)
    assert fisher.attrs["cfl_formula"] == "(2 D/dx^2 + r) dt"
    assert fisher.attrs["cfl"] == pytest.approx(0.01 * (8.0 + 3.0))


@pytest.mark.parametrize(("equation", "params", "message"), [
    ("heat", {"diffusivity": 1.0},
     "dt=1.0 is unstable for heat with diffusivity=1.0, dx=0.5 (diffusion number D dt/dx^2 = 4 "
     "> 0.5); use dt <= 0.125"),
    ("advection", {"velocity": 2.0},
     "dt=1.0 is unstable for advection with velocity=2.0, dx=0.5 (Courant number |v| dt/dx = 4 "
     "> 1); use dt <= 0.25"),
    ("wave", {"speed": 1.0}, "(Courant number c dt/dx = 2 > 1); use dt <= 0.5"),
    ("burgers", {"viscosity": 0.0},
     "(advection-diffusion number (max|u0|/dx + 2 nu/dx^2) dt = 2 > 1); use dt <= 0.5"),
    ("fisher_kpp", {"diffusivity": 1.0, "rate": 1.0},
     "(reaction-diffusion number (2 D/dx^2 + r) dt = 9 > 1); use dt <= 0.111111"),
])
def test_unstable_dt_messages_name_the_number(equation, params, message):
    u0 = xr.DataArray(np.ones(8), dims="x", coords={"x": np.arange(8) * 0.5})
    with pytest.raises(ValueError, match=re.escape(message)):
        solve(equation, u0, steps=1, dt=1.0, **params)


def test_update_stencil_reports_the_same_numbers_as_solve():
    da = update_stencil("heat", dt=DT, spacing=SPACING, diffusivity=(0.6, 0.3))
    ds = solve("heat", _u0(), steps=1, dt=DT, diffusivity=(0.6, 0.3))
    for key in ("cfl_name", "cfl_formula", "cfl", "cfl_limit", "dt_max", "diffusion_numbers"):
        assert da.attrs[key] == ds.attrs[key]
