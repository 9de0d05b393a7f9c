"""Boundary conditions against references that do not use the solvers' ghost filling.

1. Analytic discrete solutions: on the cell-centred grid (walls half a spacing outside the first
   and last points) ``sin(k pi (x - wall) / L)`` vanishes on both walls and ``cos(...)`` has zero
   slope there; both are exact eigenvectors of the discrete Laplacian with Dirichlet / Neumann
   ghosts, so heat multiplies them by exactly ``1 + 2 r (cos(k pi h / L) - 1)`` per step and
   leapfrog gives exactly ``cos(n theta)`` times the mode.
2. Step-by-step references written here with ``np.pad`` ("wrap" = periodic, "symmetric" =
   Neumann, ``2 b - symmetric`` = Dirichlet with wall value ``b``) and the schemes' formulas.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import BoundaryCondition, solve

DIRICHLET = ("dirichlet", 0.7, -0.4)  # (kind, low wall value, high wall value)


def _bc(spec):
    return BoundaryCondition("dirichlet", spec[1:]) if isinstance(spec, tuple) else spec


def _dataarray(values: np.ndarray, spacing: tuple[float, ...]) -> xr.DataArray:
    dims = ("y", "x")[2 - values.ndim:]
    coords = {d: np.arange(n) * h for d, n, h in zip(dims, values.shape, spacing, strict=True)}
    return xr.DataArray(values, dims=dims, coords=coords)


# ------------------------------------------------------------------------- analytic modes
def _modes(n: int, h: float, k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Dirichlet (sin) and Neumann (cos) modes on n cell centres, and cos(k pi h / L) - 1."""
    x = np.arange(n) * h
    phase = k * np.pi * (x + h / 2) / (n * h)  # wall at x = -h/2, length L = n h
    return np.sin(phase), np.cos(phase), np.cos(k * np.pi / n) - 1.0


@pytest.mark.parametrize("kind", ["dirichlet", "neumann"])
def test_heat_modes_decay_by_the_exact_discrete_factor_1d(kind):
    n, h, k, diffusivity, dt, steps = 20, 0.5, 3, 0.8, 0.1, 25
    sine, cosine, change = _modes(n, h, k)
    mode = sine if kind == "dirichlet" else cosine
    ds = solve("heat", _dataarray(mode, (h,)), steps=steps, dt=dt, bc=kind,
               diffusivity=diffusivity)
    factor = 1 + 2 * diffusivity * dt / h**2 * change
    expected = mode[None] * factor ** np.arange(steps + 1)[:, None]  # (T, X)
    np.testing.assert_allclose(ds.u.values, expected, rtol=1e-12, atol=1e-14)


def test_heat_mixed_walls_2d_with_nonzero_dirichlet_values():
    """y: Dirichlet (1, 3) -> linear profile + sin mode; x: Neumann -> cos mode."""
    (ny, dy, ky), (nx, dx, kx) = (10, 0.4, 2), (12, 0.25, 3)
    d_y, d_x, dt, steps, low, high = 0.3, 0.1, 0.05, 20, 1.0, 3.0
    sine_y, _, change_y = _modes(ny, dy, ky)
    _, cos_x, change_x = _modes(nx, dx, kx)
    y = np.arange(ny) * dy
    steady = low + (high - low) * (y + dy / 2) / (ny * dy)  # linear between the wall values
    mode = sine_y[:, None] * cos_x[None, :]
    u0 = _dataarray(steady[:, None] + mode, (dy, dx))
    bc = {"y": BoundaryCondition("dirichlet", (low, high)), "x": "neumann"}
    ds = solve("heat", u0, steps=steps, dt=dt, bc=bc, diffusivity=(d_y, d_x))
    factor = 1 + 2 * (d_y * dt / dy**2) * change_y + 2 * (d_x * dt / dx**2) * change_x
    expected = steady[None, :, None] + mode[None] * factor ** np.arange(steps + 1)[:, None, None]
    np.testing.assert_allclose(ds.u.values, expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind", ["dirichlet", "neumann"])
def test_wave_modes_oscillate_exactly_under_leapfrog(kind):
    n, h, k, speed, dt, steps = 16, 0.5, 2, 1.2, 0.3, 40
    sine, cosine, change = _modes(n, h, k)
    mode = sine if kind == "dirichlet" else cosine
    ds = solve("wave", _dataarray(mode, (h,)), steps=steps, dt=dt, bc=kind, speed=speed)
    theta = np.arccos(1 + (speed * dt / h) ** 2 * change)  # cos(theta) = 1 + (c dt)^2 lambda / 2
    expected = mode[None] * np.cos(theta * np.arange(steps + 1))[:, None]
    np.testing.assert_allclose(ds.u.values, expected, rtol=1e-11, atol=1e-12)


# ----------------------------------------------------------------- np.pad references
def _pad(u: np.ndarray, bcs: tuple) -> np.ndarray:
    """One ghost layer per axis with np.pad: x first, then y over whole rows (corners)."""
    out = u
    for axis, spec in zip((-1, -2), bcs[::-1], strict=False):
        width = [(0, 0)] * out.ndim
        width[axis] = (1, 1)
        if spec == "periodic":
            out = np.pad(out, width, mode="wrap")
            continue
        out = np.pad(out, width, mode="symmetric")  # ghost = the first/last cell (mirror)
        if isinstance(spec, tuple):  # Dirichlet b: ghost = 2 b - mirror
            low, high = spec[1:]
            lo = [slice(None)] * out.ndim
            hi = [slice(None)] * out.ndim
            lo[axis], hi[axis] = 0, -1
            out[tuple(lo)] = 2 * low - out[tuple(lo)]
            out[tuple(hi)] = 2 * high - out[tuple(hi)]
    return out


def _shift(padded: np.ndarray, shape: tuple[int, ...], offset: tuple[int, ...]) -> np.ndarray:
    """Interior-sized view of ``padded`` moved by ``offset`` (one entry per axis)."""
    return padded[tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, shape, strict=True))]


def _unit(axis: int, ndim: int, sign: int) -> tuple[int, ...]:
    return tuple(sign if a == axis else 0 for a in range(ndim))


def _laplacian(u, bcs, coefficients, spacing):
    """sum_a C_a (u_{+a} - 2 u + u_{-a}) / h_a^2 with np.pad ghosts."""
    p = _pad(u, bcs)
    return sum(c / h**2 * (_shift(p, u.shape, _unit(a, u.ndim, 1)) - 2 * u
                           + _shift(p, u.shape, _unit(a, u.ndim, -1)))
               for a, (c, h) in enumerate(zip(coefficients, spacing, strict=True)))


def _advection_weights(c: float, scheme: str) -> dict[int, float]:
    if scheme == "lax_wendroff":
        return {-1: c * (1 + c) / 2, 0: 1 - c * c, 1: -c * (1 - c) / 2}
    return {-1: c, 0: 1 - c} if c >= 0 else {0: 1 + c, 1: -c}


def _advection_step(u, bcs, dt, spacing, velocity, scheme):
    """Product of the 1-D schemes (corner transport upwind / tensor Lax-Wendroff)."""
    p = _pad(u, bcs)
    per_axis = [_advection_weights(v * dt / h, scheme)
                for v, h in zip(velocity, spacing, strict=True)]
    if u.ndim == 1:
        return sum(w * _shift(p, u.shape, (o,)) for o, w in per_axis[0].items())
    return sum(wy * wx * _shift(p, u.shape, (oy, ox))
               for oy, wy in per_axis[0].items() for ox, wx in per_axis[1].items())


def _godunov_flux(left, right):
    return np.maximum(0.5 * np.clip(left, 0, None) ** 2, 0.5 * np.clip(right, None, 0) ** 2)


def _burgers_step(u, bcs, dt, spacing, viscosity):
    p = _pad(u, bcs)
    out = u.copy()
    for a, h in enumerate(spacing):
        hi, lo = _shift(p, u.shape, _unit(a, u.ndim, 1)), _shift(p, u.shape, _unit(a, u.ndim, -1))
        out -= dt / h * (_godunov_flux(u, hi) - _godunov_flux(lo, u))
        out += viscosity * dt / h**2 * (hi - 2 * u + lo)
    return out


def _reference(equation, u0, bcs, dt, spacing, params, steps):
    """Trajectory (T, ...) of the reference scheme."""
    nd = u0.ndim
    frames = [u0]
    if equation == "wave":  # leapfrog with the Taylor start, v0 = 0
        c2 = (params["speed"] ** 2,) * nd
        frames.append(u0 + 0.5 * dt**2 * _laplacian(u0, bcs, c2, spacing))
        while len(frames) <= steps:
            u, prev = frames[-1], frames[-2]
            frames.append(2 * u - prev + dt**2 * _laplacian(u, bcs, c2, spacing))
        return np.stack(frames)
    for _ in range(steps):
        u = frames[-1]
        if equation == "heat":
            d = np.broadcast_to(params["diffusivity"], (nd,))
            new = u + dt * _laplacian(u, bcs, d, spacing)
        elif equation == "advection":
            v = np.broadcast_to(params["velocity"], (nd,))
            new = _advection_step(u, bcs, dt, spacing, v, params["scheme"])
        elif equation == "burgers":
            new = _burgers_step(u, bcs, dt, spacing, params["viscosity"])
        else:
            d = (params["diffusivity"],) * nd
            reaction = u * (1 - u) if equation == "fisher_kpp" else u - u**3
            new = u + dt * _laplacian(u, bcs, d, spacing) + dt * params["rate"] * reaction
        frames.append(new)
    return np.stack(frames)


CASES = [
    ("heat", {"diffusivity": (0.3, 0.2)}, 0.1),
    ("advection", {"velocity": (0.6, -0.9), "scheme": "upwind"}, 0.2),
    ("advection", {"velocity": (-0.6, 0.9), "scheme": "lax_wendroff"}, 0.2),
    ("burgers", {"viscosity": 0.05}, 0.1),
    ("wave", {"speed": 0.8}, 0.2),
    ("fisher_kpp", {"diffusivity": 0.2, "rate": 1.5}, 0.1),
    ("allen_cahn", {"diffusivity": 0.2, "rate": 1.5}, 0.1),
]
BCS_2D = [("periodic", "periodic"), ("neumann", "neumann"), (DIRICHLET, DIRICHLET),
          ("neumann", DIRICHLET), (DIRICHLET, "periodic")]


@pytest.mark.parametrize("bcs", BCS_2D, ids=["periodic", "neumann", "dirichlet", "neu-dir",
                                             "dir-per"])
@pytest.mark.parametrize(("equation", "params", "dt"), CASES,
                         ids=[f"{c[0]}-{c[1].get('scheme', '')}" for c in CASES])
def test_solver_matches_an_np_pad_reference_2d(equation, params, dt, bcs, rng):
    spacing = (0.8, 1.0)
    u0 = rng.uniform(-0.8, 0.8, size=(6, 7))
    ds = solve(equation, _dataarray(u0, spacing), steps=4, dt=dt,
               bc={"y": _bc(bcs[0]), "x": _bc(bcs[1])}, **params)
    expected = _reference(equation, u0, bcs, dt, spacing, params, steps=4)
    np.testing.assert_allclose(ds.u.values, expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("bc", ["periodic", "neumann", DIRICHLET], ids=["per", "neu", "dir"])
@pytest.mark.parametrize(("equation", "params", "dt"), CASES,
                         ids=[f"{c[0]}-{c[1].get('scheme', '')}" for c in CASES])
def test_solver_matches_an_np_pad_reference_1d(equation, params, dt, bc, rng):
    u0 = rng.uniform(-0.8, 0.8, size=9)
    one_d = {k: (v[1] if isinstance(v, tuple) else v) for k, v in params.items()}
    ds = solve(equation, _dataarray(u0, (1.0,)), steps=5, dt=dt, bc=_bc(bc), **one_d)
    expected = _reference(equation, u0, (bc,), dt, (1.0,), one_d, steps=5)
    np.testing.assert_allclose(ds.u.values, expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("bcs", [("periodic", "periodic"), ("neumann", DIRICHLET)])
def test_gray_scott_matches_an_np_pad_reference(bcs, rng):
    spacing, dt, steps = (1.0, 1.0), 0.5, 4
    du, dv, feed, kill = 0.16, 0.08, 0.035, 0.065
    u = 1 - 0.5 * rng.random((6, 7))
    v = 0.25 * rng.random((6, 7))
    initial = xr.Dataset({"u": _dataarray(u, spacing), "v": _dataarray(v, spacing)})
    ds = solve("gray_scott", initial, steps=steps, dt=dt, diffusivity_u=du, diffusivity_v=dv,
               feed=feed, kill=kill, bc={"y": _bc(bcs[0]), "x": _bc(bcs[1])})
    for n in range(1, steps + 1):
        uvv = u * v * v
        u, v = (u + dt * _laplacian(u, bcs, (du, du), spacing) + dt * (feed * (1 - u) - uvv),
                v + dt * _laplacian(v, bcs, (dv, dv), spacing) + dt * (uvv - (feed + kill) * v))
        np.testing.assert_allclose(ds.u.isel(time=n).values, u, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(ds.v.isel(time=n).values, v, rtol=1e-12, atol=1e-13)
