"""Physical parameters: required (no silent defaults), checked up front (finite, sign, type)."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import EQUATIONS, UnstableStepWarning, solve, update_stencil

# a valid set of parameters per equation (the examples the error messages suggest)
VALID = {
    "heat": {"diffusivity": 1.0},
    "advection": {"velocity": 1.0},
    "burgers": {"viscosity": 0.01},
    "wave": {"speed": 1.0},
    "fisher_kpp": {"diffusivity": 1.0, "rate": 1.0},
    "allen_cahn": {"diffusivity": 1.0, "rate": 1.0},
    "gray_scott": {"diffusivity_u": 0.16, "diffusivity_v": 0.08, "feed": 0.035, "kill": 0.065},
}


@pytest.fixture
def u2d() -> xr.DataArray:
    return xr.DataArray(np.full((6, 6), 0.5), dims=("y", "x"),
                        coords={"y": np.arange(6.0), "x": np.arange(6.0)})


def _solve(equation: str, u0: xr.DataArray, **params: object) -> xr.Dataset:
    if equation == "gray_scott":
        params["v0"] = 0.25 * xr.ones_like(u0)
    return solve(equation, u0, steps=2, dt=0.01, **params)


def test_every_equation_lists_its_parameters_with_examples():
    assert {name: cls.example_params() for name, cls in EQUATIONS.items()} == VALID


@pytest.mark.parametrize(("equation", "name", "value", "message"), [
    # the case of the issue: a NaN rate used to pass the CFL check and end as a blow-up
    ("fisher_kpp", "rate", math.nan, "rate=nan for fisher_kpp must be a finite number >= 0"),
    ("fisher_kpp", "rate", -1.0, "rate=-1.0 for fisher_kpp must be a finite number >= 0"),
    ("allen_cahn", "rate", math.inf, "rate=inf for allen_cahn must be a finite number >= 0"),
    ("fisher_kpp", "diffusivity", (0.5, math.nan),
     "diffusivity=(0.5, nan) for fisher_kpp must be a finite number >= 0 or 2 of them, one per "
     "axis (D_y, D_x)"),
    ("heat", "diffusivity", -1.0,
     "diffusivity=-1.0 for heat must be a finite number >= 0 or 2 of them, one per axis "
     "(D_y, D_x)"),
    ("heat", "diffusivity", (1, 2, 3),
     "diffusivity=(1.0, 2.0, 3.0) for heat must be a finite number >= 0 or 2 of them, one per "
     "axis (D_y, D_x)"),
    ("advection", "velocity", -math.inf,
     "velocity=-inf for advection must be a finite number or 2 of them, one per axis "
     "(v_y, v_x)"),
    ("burgers", "viscosity", -0.1, "viscosity=-0.1 for burgers must be a finite number >= 0"),
    ("burgers", "viscosity", math.nan, "viscosity=nan for burgers must be a finite number >= 0"),
    ("wave", "speed", math.inf, "speed=inf for wave must be a finite number >= 0"),
    ("wave", "speed", -2.0, "speed=-2.0 for wave must be a finite number >= 0"),
    ("gray_scott", "feed", math.nan, "feed=nan for gray_scott must be a finite number >= 0"),
    ("gray_scott", "kill", -0.01, "kill=-0.01 for gray_scott must be a finite number >= 0"),
    ("gray_scott", "diffusivity_u", math.nan,
     "diffusivity_u=nan for gray_scott must be a finite number >= 0 or 2 of them"),
    ("gray_scott", "diffusivity_v", -0.08,
     "diffusivity_v=-0.08 for gray_scott must be a finite number >= 0 or 2 of them"),
])
def test_bad_values_are_rejected_before_solving(equation, name, value, message, u2d):
    params = {**VALID[equation], name: value}
    with pytest.raises(ValueError, match=re.escape(message)):
        _solve(equation, u2d, **params)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("rate", "fast", "rate='fast' for fisher_kpp must be a number, got str"),
    ("rate", True, "rate=True for fisher_kpp must be a number, got bool"),
    ("rate", None, "rate=None for fisher_kpp must be a number, got NoneType"),
    ("diffusivity", ["a", "b"], "diffusivity=['a', 'b'] for fisher_kpp must be a number or 2 "
                                "numbers, one per axis (D_y, D_x), got list"),
])
def test_non_numbers_are_type_errors(name, value, message, u2d):
    params = {**VALID["fisher_kpp"], name: value}
    with pytest.raises(TypeError, match=re.escape(message)):
        _solve("fisher_kpp", u2d, **params)


def test_update_stencil_checks_values_too():
    with pytest.raises(ValueError, match=re.escape(
            "diffusivity=nan for heat must be a finite number >= 0")):
        update_stencil("heat", dt=0.1, spacing=1.0, diffusivity=math.nan)
    with pytest.raises(ValueError, match=re.escape(
            "speed=-1.0 for wave must be a finite number >= 0")):
        update_stencil("wave", dt=0.1, spacing=1.0, speed=-1.0)


def test_numpy_numbers_and_arrays_are_accepted(u2d):
    ds = _solve("heat", u2d, diffusivity=np.array([0.6, 0.3]))
    assert ds.attrs["diffusivity"] == [0.6, 0.3]
    ds = _solve("fisher_kpp", u2d, diffusivity=np.float32(0.5), rate=np.int64(2))
    assert (ds.attrs["diffusivity"], ds.attrs["rate"]) == ([0.5, 0.5], 2.0)  # per axis (y, x)
    ds = _solve("advection", u2d, velocity=xr.DataArray([-0.5, 1.0]))
    assert ds.attrs["velocity"] == [-0.5, 1.0]
    assert _solve("wave", u2d, speed=np.array(2.0)).attrs["speed"] == 2.0
    with pytest.raises(TypeError, match=r"speed=array\(\[ True\]\) for wave must be a number, got "
                                        r"ndarray"):
        _solve("wave", u2d, speed=np.array([True]))


@pytest.mark.parametrize("equation", ["heat", "advection", "burgers", "wave", "fisher_kpp",
                                      "allen_cahn"])
def test_a_missing_physical_parameter_is_an_error_not_a_default(equation, u2d):
    for missing in VALID[equation]:
        params = {k: v for k, v in VALID[equation].items() if k != missing}
        with pytest.raises(TypeError, match=rf"missing parameter for {equation}: {missing}= "):
            _solve(equation, u2d, **params)


def test_missing_parameter_message_says_what_to_pass(u2d):
    message = ("missing parameter for heat: diffusivity= (D, length^2/time: a finite number >= 0 "
               "or 2 of them, one per axis (D_y, D_x)), e.g. diffusivity=1.0; physical "
               "parameters have no defaults")
    with pytest.raises(TypeError, match=re.escape(message)):
        solve("heat", u2d, steps=1)
    message = ("missing parameters for gray_scott: feed= (F, 1/time: a finite number >= 0), "
               "kill= (k, 1/time: a finite number >= 0), e.g. feed=0.035, kill=0.065")
    with pytest.raises(TypeError, match=re.escape(message)):
        solve("gray_scott", u2d, steps=1, v0=u2d, diffusivity_u=0.16, diffusivity_v=0.08)
    one_d = "missing parameter for advection: velocity= (v, length/time: a finite number), e.g."
    with pytest.raises(TypeError, match=re.escape(one_d)):
        update_stencil("advection", dt=0.1, spacing=1.0)


def test_unstable_update_stencil_warns_with_dt_limit_and_largest_stable_dt():
    message = ("dt=0.8 is unstable for heat with diffusivity=1.0, dx=1.0 (diffusion number "
               "D dt/dx^2 = 0.8 > 0.5): this stencil amplifies some Fourier modes; the largest "
               "stable dt is 0.5")
    with pytest.warns(UnstableStepWarning, match=re.escape(message)):
        da = update_stencil("heat", dt=0.8, spacing=1.0, diffusivity=1.0)
    assert issubclass(UnstableStepWarning, UserWarning)
    assert da.attrs["stable"] == 0
    assert float(da.sel(dx=0)) == pytest.approx(-0.6)  # the negative weight the warning is about
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stable dt gives no warning
        assert update_stencil("heat", dt=0.5, spacing=1.0, diffusivity=1.0).attrs["stable"] == 1
