"""The fused numba path (many steps per compiled call) against the one-step-per-call path.

Both do the same floating-point operations in the same order, so the saved frames must agree
bit for bit, whichever driver (sample- or row-parallel) and however the steps are chunked.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import BoundaryCondition, Stencil, api, solve
from gridformer.solvers.backend import NumbaBackend
from gridformer.solvers.boundary import parse_bc
from gridformer.solvers.equation import LinearIntegrator

DIRICHLET = BoundaryCondition("dirichlet", (0.5, -1.0))
MIXED = {"y": DIRICHLET, "x": "periodic"}

CASES = [
    ("heat", {"diffusivity": 0.4}, "periodic", 1),
    ("heat", {"diffusivity": 0.4}, DIRICHLET, 1),
    ("heat", {"diffusivity": (0.4, 0.2)}, "neumann", 2),
    ("heat", {"diffusivity": (0.4, 0.2)}, MIXED, 2),
    ("advection", {"velocity": -0.7, "scheme": "lax_wendroff"}, "neumann", 1),
    ("advection", {"velocity": (0.5, -0.3)}, DIRICHLET, 2),  # 4-point upwind, box layout
    ("advection", {"velocity": (0.5, -0.3), "scheme": "lax_wendroff"}, "periodic", 2),
    ("advection", {"velocity": (0.0, 0.6)}, "periodic", 2),  # radius 0 along y
    ("burgers", {"viscosity": 0.05}, "periodic", 1),
    ("burgers", {"viscosity": 0.0, "scheme": "upwind"}, DIRICHLET, 2),
    ("burgers", {"viscosity": 0.02}, MIXED, 2),
    ("wave", {"speed": 0.7}, "periodic", 1),
    ("wave", {"speed": 0.7}, "neumann", 2),
    ("fisher_kpp", {"diffusivity": 0.5, "rate": 0.5}, DIRICHLET, 1),
    ("allen_cahn", {"diffusivity": (0.2, 0.1), "rate": 1.0}, "neumann", 2),
]


def _state(rng: np.random.Generator, ndim: int, samples: int = 3) -> xr.DataArray:
    shape = (samples, 7, 9) if ndim == 2 else (samples, 11)
    dims = ("sample", "y", "x") if ndim == 2 else ("sample", "x")
    coords = {d: np.arange(n) * 0.5 for d, n in zip(dims[1:], shape[1:], strict=True)}
    return xr.DataArray(rng.uniform(0.0, 1.0, size=shape), dims=dims, coords=coords)


def _solve_with(monkeypatch, backend: NumbaBackend, chunk_steps: int | None, *args, **kwargs):
    """``solve`` on ``backend``, returning to Python every ``chunk_steps`` steps."""
    with monkeypatch.context() as patch:
        patch.setattr(api, "get_backend", lambda device: backend)
        if chunk_steps is not None:
            cells = int(np.prod(args[1].shape))
            patch.setattr(api, "_CHUNK_CELLS", chunk_steps * cells)
        return solve(*args, **kwargs)


@pytest.mark.parametrize(("equation", "params", "bc", "ndim"), CASES)
@pytest.mark.parametrize(("driver", "chunk_steps"), [("samples", None), ("samples", 1),
                                                      ("rows", 5)])
def test_fused_equals_step_by_step(monkeypatch, rng, equation, params, bc, ndim, driver,
                                   chunk_steps):
    u0 = _state(rng, ndim)
    kwargs = {"steps": 12, "save_every": 3, "bc": bc, **params}
    if equation == "wave":
        kwargs["initial_velocity"] = 0.3 * u0
    reference = _solve_with(monkeypatch, NumbaBackend(fused=False), None, equation, u0, **kwargs)
    fused = _solve_with(monkeypatch, NumbaBackend(driver=driver), chunk_steps, equation, u0,
                        **kwargs)
    assert reference.attrs["backend"] == fused.attrs["backend"] == "numba"
    np.testing.assert_array_equal(fused.u.values, reference.u.values)


@pytest.mark.parametrize("driver", ["samples", "rows"])
def test_gray_scott_fused_equals_step_by_step(monkeypatch, rng, driver):
    u = 1.0 - 0.5 * _state(rng, 2)
    params = {"v0": 0.25 * _state(rng, 2), "diffusivity_u": 0.16, "diffusivity_v": 0.08,
              "feed": 0.035, "kill": 0.065, "steps": 10, "save_every": 2}
    reference = _solve_with(monkeypatch, NumbaBackend(fused=False), None, "gray_scott", u,
                            **params)
    fused = _solve_with(monkeypatch, NumbaBackend(driver=driver), 3, "gray_scott", u, **params)
    for name in ("u", "v"):
        np.testing.assert_array_equal(fused[name].values, reference[name].values)


@pytest.mark.parametrize("bc", ["periodic", "neumann", "dirichlet"])
@pytest.mark.parametrize("fused", [True, False])
def test_generic_stencil_matches_repeated_numpy_apply(rng, bc, fused):
    """Radius-2 and out-of-order offsets take the generic path; Stencil.apply is the reference."""
    stencil = Stencil(np.array([[0, 2], [-2, 0], [0, 0], [1, -1], [0, -2]]),
                      np.array([0.1, 0.15, 0.5, 0.05, 0.2]))
    u0 = rng.normal(size=(2, 6, 8))
    integrator = LinearIntegrator(stencil, NumbaBackend(fused=fused), parse_bc(bc, ("y", "x")),
                                  u0)
    frames = {"u": np.empty((3, *u0.shape))}
    integrator.save(frames, 0)
    assert integrator.run(6, 0, frames, 3, 32) is None
    expected = u0
    for n in range(1, 7):
        expected = stencil.apply(expected, bc)
        if n % 3 == 0:
            np.testing.assert_allclose(frames["u"][n // 3], expected, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("driver", ["samples", "rows"])
def test_blow_up_step_is_the_first_checked_step(monkeypatch, driver):
    """One sample overflows; the run reports the first check (a save or every 32nd step)."""
    u0 = np.full((2, 16), 0.5)
    u0[1, 3] = 1e300  # overflows to inf after a few steps of u^2 / 2 fluxes
    for save_every, expected in ((5, 5), (40, 32)):
        with monkeypatch.context() as patch:
            patch.setattr(api, "get_backend", lambda device: NumbaBackend(driver=driver))
            with pytest.raises(FloatingPointError, match=rf"found at step {expected} of 80 "):
                solve("burgers", u0[:, None, :].repeat(2, axis=1), steps=80, dt=1e-310,
                      spacing=1.0, save_every=save_every, viscosity=0.0)


def test_progress_sees_every_step_and_results_do_not_change(monkeypatch, rng):
    u0 = _state(rng, 2)
    seen = []

    def progress(iterable, total, desc):
        for n in iterable:
            seen.append(n)
            yield n

    plain = solve("heat", u0, steps=40, save_every=8, diffusivity=0.3)
    with monkeypatch.context() as patch:
        patch.setattr(api, "_CHUNK_CELLS", 6 * int(np.prod(u0.shape)))
        paced = solve("heat", u0, steps=40, save_every=8, diffusivity=0.3, progress=progress)
    assert seen == list(range(1, 41))
    np.testing.assert_array_equal(paced.u.values, plain.u.values)


def test_driver_name_is_checked():
    with pytest.raises(ValueError, match="driver='threads' is not one of 'auto', 'samples'"):
        NumbaBackend(driver="threads")
