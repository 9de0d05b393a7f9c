"""Training and test data for the stencil experiments: random fields stepped by the FD solver.

Two kinds of random periodic fields are drawn with :func:`gridformer.datasets.random_field`
(spectral synthesis: white noise filtered in Fourier space):

* *broadband* fields for training: every wavenumber carries power, so the one-step map is
  identified at all scales (a smooth field only pins down the low moments of a stencil);
* *smooth* fields for rollouts: a few low modes, the states a PDE user cares about.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from gridformer.datasets import random_field

__all__ = ["fd_pairs", "fd_trajectory", "random_fields", "spatial_dims"]


def spatial_dims(ndim: int) -> tuple[str, ...]:
    """``("x",)`` or ``("y", "x")`` for a 1-D / 2-D grid."""
    if ndim not in (1, 2):
        msg = f"grid must have 1 or 2 dims (x) or (y, x); got {ndim}"
        raise ValueError(msg)
    return ("x",) if ndim == 1 else ("y", "x")


def random_fields(
    n: int,
    grid: Sequence[int],
    *,
    seed: int,
    kind: str = "broadband",
    amplitude: float | None = None,
) -> np.ndarray:
    """Random periodic fields ``(n, *grid)`` float64: :func:`gridformer.datasets.random_field`.

    Parameters
    ----------
    n, grid
        Number of fields and cells per spatial dim (``(ny, nx)`` or ``(nx,)``).
    seed
        Seed of ``numpy.random.default_rng``.
    kind
        The ``spectrum`` of ``random_field``: ``"broadband"`` (all scales, rough) or
        ``"smooth"`` (a few low modes). Each field has unit standard deviation plus a random
        mean drawn from ``N(0, 0.5²)``.
    amplitude
        If given, each field is rescaled so that ``max |u| = amplitude`` (used for Burgers,
        whose stability limit depends on the largest velocity).
    """
    if kind not in ("broadband", "smooth"):
        msg = f"kind={kind!r} is not one of ['broadband', 'smooth']"
        raise ValueError(msg)
    fields = random_field(tuple(grid), spectrum=kind, n_samples=n, amplitude=amplitude,
                          mean_sd=0.5, seed=seed)
    return fields.values  # (n, *grid)


def _as_dataarray(fields: np.ndarray, spacing: tuple[float, ...]) -> xr.DataArray:
    dims = spatial_dims(fields.ndim - 1)
    coords = {d: np.arange(s) * h for d, s, h in zip(dims, fields.shape[1:], spacing,
                                                     strict=True)}
    return xr.DataArray(fields, dims=("sample", *dims), coords=coords)


def fd_trajectory(
    equation: str,
    u0: np.ndarray,
    *,
    steps: int,
    dt: float,
    spacing: tuple[float, ...],
    params: dict[str, Any],
) -> xr.DataArray:
    """FD solution ``(time, sample, *grid)`` from ``u0`` ``(sample, *grid)`` (periodic)."""
    from gridformer import solvers

    result = solvers.solve(equation, _as_dataarray(u0, spacing), steps=steps, dt=dt,
                           bc="periodic", **params)
    return result["u"].transpose("time", "sample", ...)


def fd_pairs(
    equation: str,
    u0: np.ndarray,
    *,
    dt: float,
    spacing: tuple[float, ...],
    params: dict[str, Any],
    steps_per_field: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """One-step pairs ``(inputs, targets)``, each ``(M, *grid)``, along FD trajectories.

    Every field in ``u0`` is advanced ``steps_per_field`` steps and each consecutive pair of
    states becomes one training example (``M = n_fields * steps_per_field``).
    """
    trajectory = fd_trajectory(equation, u0, steps=steps_per_field, dt=dt, spacing=spacing,
                               params=params).values  # (T + 1, S, *grid)
    grid = trajectory.shape[2:]
    inputs = trajectory[:-1].reshape(-1, *grid)
    targets = trajectory[1:].reshape(-1, *grid)
    return inputs, targets
