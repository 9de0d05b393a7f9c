"""CUDA (torch, float64) against the CPU numba path; skipped without a GPU.

``benchmarks/gpu_check.sh`` runs these (``pytest -m gpu``) on a GPU machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import BlowUpError, solve

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
]

CASES = [
    ("heat", {"diffusivity": (0.4, 0.2)}, "neumann"),
    ("heat", {"diffusivity": 0.3}, "periodic"),
    ("advection", {"velocity": (0.5, -0.3), "scheme": "lax_wendroff"}, "periodic"),
    ("advection", {"velocity": (-0.6, 0.2)}, "dirichlet"),
    ("burgers", {"viscosity": 0.05}, "periodic"),
    ("burgers", {"viscosity": 0.0, "scheme": "upwind"}, "dirichlet"),
    ("wave", {"speed": 0.7}, "periodic"),
    ("allen_cahn", {"diffusivity": 0.2, "rate": 1.0}, "neumann"),
    ("fisher_kpp", {"diffusivity": 1.0, "rate": 0.5}, "periodic"),
]


def _state(rng: np.random.Generator, shape=(4, 32, 48)) -> xr.DataArray:
    return xr.DataArray(rng.uniform(0, 1, size=shape), dims=("sample", "y", "x"),
                        coords={"y": np.arange(shape[1]) * 0.5, "x": np.arange(shape[2]) * 0.5})


@pytest.mark.parametrize(("equation", "params", "bc"), CASES)
def test_cuda_matches_cpu(equation, params, bc, rng):
    u0 = _state(rng)
    cpu = solve(equation, u0, steps=40, save_every=10, bc=bc, **params)
    gpu = solve(equation, u0, steps=40, save_every=10, bc=bc, device="cuda", **params)
    assert gpu.attrs["backend"] == "torch:cuda"
    assert gpu.u.dtype == np.float64
    np.testing.assert_allclose(gpu.u.values, cpu.u.values, rtol=1e-11, atol=1e-12)


def test_gray_scott_cuda_matches_cpu(rng):
    u = 1.0 - 0.5 * _state(rng)
    params = {"v0": 0.25 * _state(rng), "diffusivity_u": 0.16, "diffusivity_v": 0.08,
              "feed": 0.035, "kill": 0.065, "steps": 30, "save_every": 10}
    cpu = solve("gray_scott", u, **params)
    gpu = solve("gray_scott", u, device="cuda", **params)
    for name in ("u", "v"):
        np.testing.assert_allclose(gpu[name].values, cpu[name].values, rtol=1e-11, atol=1e-12)


def test_cuda_blow_up_names_the_same_step_as_cpu():
    u0 = np.full((2, 2, 16), 0.5)
    u0[1, 0, 3] = 1e300  # u^2 / 2 overflows on the first step
    messages = []
    for device in ("cpu", "cuda"):
        with pytest.raises(BlowUpError) as info:
            solve("burgers", u0, steps=80, dt=1e-310, spacing=1.0, save_every=40,
                  viscosity=0.0, device=device)
        messages.append(str(info.value))
    assert "found at step 32 of 80" in messages[0]
    assert messages[1] == messages[0]
