"""The numba, numpy and torch backends agree; samples are solved independently; no torch import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import solve

CASES = [
    ("heat", {"diffusivity": (0.4, 0.2)}, "neumann"),
    ("advection", {"velocity": (0.5, -0.3), "scheme": "lax_wendroff"}, "periodic"),
    ("burgers", {"viscosity": 0.05}, "periodic"),
    ("burgers", {"viscosity": 0.0, "scheme": "upwind"}, "dirichlet"),
    ("wave", {"speed": 0.7}, "periodic"),
    ("allen_cahn", {"diffusivity": 0.2, "rate": 1.0}, "neumann"),
    ("fisher_kpp", {"diffusivity": 1.0, "rate": 0.5}, "periodic"),
]


def _state(rng, shape=(2, 6, 7)) -> xr.DataArray:
    return xr.DataArray(rng.uniform(-1, 1, size=shape), dims=("sample", "y", "x"),
                        coords={"y": np.arange(shape[1]) * 0.5, "x": np.arange(shape[2]) * 0.5})


@pytest.mark.parametrize(("equation", "params", "bc"), CASES)
def test_numpy_and_torch_backends_match_numba(equation, params, bc, rng):
    u0 = _state(rng)
    reference = solve(equation, u0, steps=6, bc=bc, **params)
    for device in ("numpy", "torch-cpu"):
        other = solve(equation, u0, steps=6, bc=bc, device=device, **params)
        np.testing.assert_allclose(other.u.values, reference.u.values, rtol=1e-12, atol=1e-13)
        assert other.attrs["backend"] != reference.attrs["backend"]


def test_gray_scott_backends_match(rng):
    u = xr.DataArray(1 - 0.5 * rng.random((8, 8)), dims=("y", "x"),
                     coords={"y": np.arange(8.0), "x": np.arange(8.0)})
    v = 0.25 * rng.random((8, 8))
    params = {"diffusivity_u": 0.16, "diffusivity_v": 0.08, "feed": 0.035, "kill": 0.065}
    reference = solve("gray_scott", u, v0=v, steps=5, **params)
    other = solve("gray_scott", u, v0=v, steps=5, device="torch-cpu", **params)
    for name in ("u", "v"):
        np.testing.assert_allclose(other[name].values, reference[name].values, rtol=1e-12)


@pytest.mark.parametrize(("equation", "params"), [("heat", {"diffusivity": 1.0}),
                                                  ("burgers", {"viscosity": 0.1})])
def test_samples_are_independent(equation, params, rng):
    u0 = _state(rng, (3, 5, 6))
    batch = solve(equation, u0, steps=4, dt=0.02, **params)
    for s in range(3):
        single = solve(equation, u0.isel(sample=s), steps=4, dt=0.02, **params)
        np.testing.assert_array_equal(batch.u.isel(sample=s).values, single.u.values)
    assert batch.u.dims == ("time", "sample", "y", "x")


def test_output_layout_and_attrs(rng):
    u0 = _state(rng)
    ds = solve("advection", u0, steps=6, save_every=3, dt=0.1, velocity=(0.5, 1.0))
    assert ds.u.dims == ("time", "sample", "y", "x")
    assert ds.u.dtype == np.float64
    np.testing.assert_allclose(ds.time.values, [0.0, 0.3, 0.6])
    np.testing.assert_array_equal(ds.x.values, u0.x.values)
    assert ds.attrs["velocity"] == [0.5, 1.0]
    assert ds.attrs["cfl_name"] == "Courant number"
    assert ds.attrs["cfl_formula"] == "max(|v_y|/dy, |v_x|/dx) dt"
    assert ds.attrs["cfl"] == pytest.approx(0.2)
    assert ds.attrs["spacing"] == [0.5, 0.5]
    for value in ds.attrs.values():  # NetCDF-legal: str, numbers, lists of numbers
        assert isinstance(value, str | int | float | list)
        assert not isinstance(value, bool)
    calls = []

    def progress(iterable, total, desc):
        calls.append((total, desc))
        return iterable

    solve("heat", u0, steps=4, progress=progress, diffusivity=1.0)
    assert calls == [(4, "solve heat")]


def test_importing_solvers_does_not_import_torch():
    code = "import sys, gridformer.solvers; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_auto_device_and_per_axis_numbers(rng):
    u0 = _state(rng)
    ds = solve("heat", u0, steps=2, dt=0.01, diffusivity=(0.5, 1.0), device="auto")
    assert ds.attrs["backend"] in {"numba", "torch:cuda"}
    np.testing.assert_allclose(ds.attrs["diffusion_numbers"], [0.02, 0.04])


@pytest.mark.slow
def test_compiled_torch_steps_match_numba(rng, monkeypatch):
    """GRIDFORMER_SOLVER_COMPILE=1 compiles the linear step (as on CUDA): same numbers."""
    import shutil
    import warnings

    if not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("torch.compile on the CPU needs a C++ compiler")

    import torch
    from gridformer.solvers import backend

    built = []

    def spy(prepared, ghosts, beta):
        built.append(beta)
        return real(prepared, ghosts, beta)

    real = backend._linear_step
    monkeypatch.setattr(backend, "_linear_step", spy)
    monkeypatch.setattr(backend, "_COMPILED", {})
    monkeypatch.setenv("GRIDFORMER_SOLVER_COMPILE", "1")
    # one compile per code object: each stencil must get its own (a shared one hit torch's
    # recompile limit on the GPU after a few stencils, and fell back to eager steps)
    u0 = _state(rng)
    with torch._dynamo.config.patch(recompile_limit=1), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a failed compile would warn
        for equation, params, bc in (CASES[0], CASES[1], CASES[4]):  # heat, advection, wave
            reference = solve(equation, u0, steps=6, bc=bc, **params)
            other = solve(equation, u0, steps=6, bc=bc, device="torch-cpu", **params)
            np.testing.assert_allclose(other.u.values, reference.u.values, rtol=1e-12,
                                       atol=1e-13)
    assert len(built) >= 3  # compiled steps were built (wave: its first step and the rest)
    assert any(beta != 0.0 for beta in built)  # the wave's two-level step


def test_solver_compile_setting_is_checked(monkeypatch):
    from gridformer.solvers.backend import compile_default

    monkeypatch.setenv("GRIDFORMER_SOLVER_COMPILE", "yes")
    with pytest.raises(ValueError, match=r"GRIDFORMER_SOLVER_COMPILE='yes' must be 1 \(compile\), "
                                         r"0 \(eager\) or unset"):
        compile_default("cuda")
    monkeypatch.setenv("GRIDFORMER_SOLVER_COMPILE", "0")
    assert compile_default("cuda") is False
    monkeypatch.delenv("GRIDFORMER_SOLVER_COMPILE")
    assert compile_default("cuda:1") is True
    assert compile_default("cpu") is False


def test_a_failed_compile_warns_and_steps_eagerly(rng, monkeypatch):
    import torch

    def broken_compile(fn, **_kwargs):
        def run(*_args):
            raise RuntimeError("no Triton here")
        return run

    from gridformer.solvers import backend

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(backend, "_COMPILED", {})
    monkeypatch.setenv("GRIDFORMER_SOLVER_COMPILE", "1")
    u0 = _state(rng)
    reference = solve("heat", u0, steps=6, diffusivity=(0.4, 0.2))
    with pytest.warns(RuntimeWarning, match=r"torch.compile of the solver step failed on cpu "
                                            r"\(RuntimeError: no Triton here\); stepping eagerly"):
        other = solve("heat", u0, steps=6, diffusivity=(0.4, 0.2), device="torch-cpu")
    np.testing.assert_allclose(other.u.values, reference.u.values, rtol=1e-12, atol=1e-13)
