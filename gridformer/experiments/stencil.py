"""Learned attention stencils, checked number by number against finite differences.

:func:`run_stencil_experiment` trains a model to advance a PDE one time step on FD ground truth
(``gridformer.solvers``), reads its attention as a stencil, compares that with
``solvers.update_stencil`` and rolls the model out against the FD solver.

Why one softmax row can *be* the FD scheme: forward-Euler heat is
``u_new = (1 - 2 r_y - 2 r_x) u_c + r_y (u_N + u_S) + r_x (u_E + u_W)`` with
``r_a = d_a dt / h_a^2``. When the scheme is stable every weight is >= 0 and they sum to 1: a
convex combination, which is exactly what one attention row with values = u expresses. First-order
upwind advection is convex too for Courant numbers <= 1. Schemes with negative weights
(Lax–Wendroff, wave) cannot be one softmax row; there only the model's effective (Jacobian)
stencil can be compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

from gridformer.analysis import (
    attention_stencil,
    compare_stencils,
    effective_stencil,
    rollout,
    rollout_errors,
    spectral_error,
    upwind_consistency,
)
from gridformer.experiments.stencil_data import fd_pairs, fd_trajectory, random_fields
from gridformer.experiments.stencil_models import (
    MODEL_KINDS,
    FieldModel,
    build_field_model,
    fit_field_model,
)
from gridformer.experiments.stencil_result import StencilResult

__all__ = ["EQUATION_DEFAULTS", "StencilResult", "run_stencil_experiment"]

#: Parameters of each supported equation when none are given (the CLI defaults).
EQUATION_DEFAULTS: dict[str, dict[str, Any]] = {
    "heat": {"diffusivity": (0.6, 0.3)},
    "advection": {"velocity": (0.5, -0.25)},
    "burgers": {"viscosity": 0.05},
}
_LINEAR = ("heat", "advection")
_BURGERS_AMPLITUDE = 1.0  # max |u| of Burgers fields: CFL = dt * 2 (1 + 2 nu) / h <= 1 at dt 0.4


@dataclass(frozen=True)
class _Setup:
    equation: str
    params: dict[str, Any]
    grid: tuple[int, ...]
    spacing: tuple[float, ...]
    fd_stencil: xr.DataArray | None
    radius: int
    amplitude: float | None = field(default=None)


def _setup(equation: str, grid: Sequence[int], dt: float, spacing: float | Sequence[float],
           compare_fd: bool | str, params: dict[str, Any]) -> _Setup:
    from gridformer import solvers

    if equation not in EQUATION_DEFAULTS:
        msg = (f"equation={equation!r} is not supported by the stencil experiment; choose one "
               f"of {list(EQUATION_DEFAULTS)}")
        raise ValueError(msg)
    grid = tuple(int(g) for g in np.atleast_1d(grid))
    if len(grid) not in (1, 2):
        msg = f"grid={grid} must have 1 (x) or 2 (y, x) dims"
        raise ValueError(msg)
    steps = tuple(float(h) for h in np.broadcast_to(np.atleast_1d(spacing), (len(grid),)))
    merged = {**EQUATION_DEFAULTS[equation], **{k: v for k, v in params.items() if v is not None}}
    fd = None
    if compare_fd is True and equation not in _LINEAR:
        msg = (f"{equation} is nonlinear: its update has no fixed finite-difference stencil to "
               f"compare with; use the effective (Jacobian) stencil instead (compare_fd=False, "
               f"result.effective_stencil) and upwind_consistency for the state dependence")
        raise ValueError(msg)
    if compare_fd and equation in _LINEAR:
        fd = solvers.update_stencil(equation, dt=dt, spacing=steps if len(steps) > 1 else
                                    steps[0], **merged).reset_coords(drop=True)
        if fd.ndim != len(grid):
            msg = f"grid={grid} has {len(grid)} dims but the {equation} stencil has {fd.dims}"
            raise ValueError(msg)
        support = np.argwhere(np.abs(fd.values) > 0)
        offsets = np.stack([fd[d].values[support[:, i]] for i, d in enumerate(fd.dims)], -1)
        radius = max(1, int(np.abs(offsets).max()))
    else:
        radius = 1
    if min(grid) < 2 * radius + 3:
        msg = (f"grid={grid} is too small for the {equation} stencil of radius {radius}: every "
               f"dim needs >= {2 * radius + 3} cells (the stencil plus a ring of cells that "
               f"must get zero weight)")
        raise ValueError(msg)
    amplitude = _BURGERS_AMPLITUDE if equation == "burgers" else None
    return _Setup(equation, merged, grid, steps, fd, radius, amplitude)


def _attention_stencils(model: FieldModel, u: np.ndarray) -> xr.DataArray:
    """Mean attention stencil of ``model`` over the fields ``u`` ``(B, *grid)``."""
    attention = model.attention(torch.as_tensor(u, dtype=torch.float32))
    return attention_stencil(attention, model.layout)


def _burgers_upwinding(model: FieldModel, states: np.ndarray, radius: int) -> float:
    """Fraction of cells (|u| > 0.1 max|u|) whose attention leans upstream of ``u``."""
    attention = model.attention(torch.as_tensor(states, dtype=torch.float32))
    per_query = attention_stencil(attention, model.layout, per_query=True, radius=radius + 1)
    spatial = per_query.dims[1:1 + states.ndim - 1]
    velocity = xr.DataArray(states, dims=("sample", *spatial))
    return upwind_consistency(per_query, velocity, min_speed=0.1 * float(np.abs(states).max()))


def _fit(kind: str, setup: _Setup, inputs: np.ndarray, targets: np.ndarray, *, optimizer: str,
         steps: int, seed: int, progress: Callable | None) -> tuple[FieldModel, dict]:
    model = build_field_model(kind, setup.grid, state_dependent=setup.equation == "burgers",
                              radius=setup.radius, seed=seed,
                              amplitude=setup.amplitude or 1.0)
    info = fit_field_model(model, inputs, targets, optimizer=optimizer, steps=steps, seed=seed,
                           progress=progress)
    return model, info


def run_stencil_experiment(
    equation: str = "heat",
    *,
    grid: Sequence[int] = (32, 32),
    dt: float = 0.4,
    spacing: float | Sequence[float] = 1.0,
    seed: int = 0,
    model: str = "stencil",
    optimizer: str = "lbfgs",
    steps: int | None = None,
    n_train: int = 2,
    rollout_steps: int = 100,
    n_rollout: int = 4,
    compare_fd: bool | str = "auto",
    baselines: Sequence[str] | None = None,
    progress: Callable | None = None,
    **params: Any,
) -> StencilResult:
    """Train a model on FD steps, read its stencil, compare with FD, roll it out.

    Parameters
    ----------
    equation
        ``"heat"`` (``diffusivity``: number or ``(d_y, d_x)``, length^2/time), ``"advection"``
        (``velocity``: number or ``(v_y, v_x)``, length/time; upwind scheme) or ``"burgers"``
        (``viscosity``, length^2/time). Missing parameters come from :data:`EQUATION_DEFAULTS`.
    grid
        Cells per spatial dim, ``(ny, nx)`` or ``(nx,)``; periodic.
    dt, spacing
        Time step (time units) and grid spacing (length units, one or per dim). An unstable
        combination raises the solver's ``ValueError``.
    seed
        Seeds the random fields (training: ``seed``; rollout: ``seed + 1``) and the model.
    model
        ``"stencil"`` (one head whose logits are a bias per periodic offset, plus, for
        Burgers, terms nonlinear in the query's and the key's state and a fixed locality
        bias; see :func:`build_field_model`), ``"gridformer"`` (two blocks with MLPs), or the
        baselines ``"cnn"``/``"fno"`` (no attention: the learned stencil is the effective one).
    optimizer, steps
        ``"lbfgs"`` (full batch, strong Wolfe; ``steps`` outer iterations, default 50, stops
        when converged) or ``"adam"`` (default 2000 steps).
    n_train
        Random broadband fields for training, one step each (Burgers: two steps, two pairs
        per field).
    rollout_steps, n_rollout
        Length of the rollout and number of smooth test fields it starts from.
    compare_fd
        ``"auto"``: compare with ``solvers.update_stencil`` when the equation is linear;
        ``True`` on Burgers raises (no linear stencil: use the effective stencil).
    baselines
        Other model kinds trained on the same data with the same optimizer and budget, whose
        rollout curves are reported alongside (default ``("cnn", "fno")`` for Burgers).
    progress
        Optional wrapper for the fit loop (e.g. :func:`gridformer._progress.progress`).
    params
        Equation parameters (``diffusivity``, ``velocity``, ``viscosity``).
    """
    started = time.perf_counter()
    if model not in MODEL_KINDS:
        msg = f"model={model!r} is not one of {list(MODEL_KINDS)}"
        raise ValueError(msg)
    for name, value in (("n_train", n_train), ("n_rollout", n_rollout)):
        if value < 1:
            msg = f"{name}={value} must be >= 1"
            raise ValueError(msg)
    if rollout_steps < 1:
        msg = f"rollout_steps={rollout_steps} must be >= 1"
        raise ValueError(msg)
    setup = _setup(equation, grid, dt, spacing, compare_fd, params)
    steps = steps if steps is not None else (50 if optimizer == "lbfgs" else 2000)
    baselines = tuple(baselines) if baselines is not None else (
        ("cnn", "fno") if equation == "burgers" else ())

    # -- data: broadband fields stepped by the FD solver; smooth fields for the rollout
    # (Burgers: two steps along each trajectory, so states with steepened fronts are seen too)
    train = random_fields(n_train, setup.grid, seed=seed, amplitude=setup.amplitude)
    inputs, targets = fd_pairs(equation, train, dt=dt, spacing=setup.spacing,
                               params=setup.params,
                               steps_per_field=1 if equation in _LINEAR else 2)
    test = random_fields(n_rollout, setup.grid, seed=seed + 1, kind="smooth",
                         amplitude=setup.amplitude)
    reference = fd_trajectory(equation, test, steps=rollout_steps, dt=dt, spacing=setup.spacing,
                              params=setup.params)  # (time, sample, *grid)

    # -- train, then read the stencils
    net, fit = _fit(model, setup, inputs, targets, optimizer=optimizer, steps=steps, seed=seed,
                    progress=progress)
    learned = _attention_stencils(net, test) if net.has_attention else None
    effective = effective_stencil(net, test, n_positions=16, seed=seed)
    comparison = effective_comparison = None
    if setup.fd_stencil is not None:
        effective_comparison = compare_stencils(effective, setup.fd_stencil)
        comparison = (compare_stencils(learned, setup.fd_stencil) if learned is not None
                      else effective_comparison)

    # -- rollout against the FD solver
    prediction = rollout(net, test, rollout_steps)  # (T + 1, S, *grid)
    errors = rollout_errors(prediction, reference, pdebench=True)
    spectral = spectral_error(reference.copy(data=prediction).isel(time=-1),
                              reference.isel(time=-1), spacing=setup.spacing)
    upwind = None
    if equation == "burgers" and net.has_attention:
        states = reference.isel(time=[0, rollout_steps // 2]).values.reshape(-1, *setup.grid)
        upwind = _burgers_upwinding(net, states, setup.radius)

    others: dict[str, dict[str, Any]] = {}
    for kind in baselines:
        other, other_fit = _fit(kind, setup, inputs, targets, optimizer=optimizer, steps=steps,
                                seed=seed, progress=progress)
        others[kind] = {"fit": other_fit,
                        "rollout": rollout_errors(rollout(other, test, rollout_steps), reference,
                                                  pdebench=True)}

    return StencilResult(
        equation=equation, params=setup.params, grid=setup.grid, dt=float(dt),
        spacing=setup.spacing, seed=seed, model=model, optimizer=optimizer, radius=setup.radius,
        learned_stencil=learned, effective_stencil=effective, fd_stencil=setup.fd_stencil,
        comparison=comparison, effective_comparison=effective_comparison, rollout=errors,
        spectral=spectral, prediction=prediction, reference=reference,
        upwind_consistency=upwind, baselines=others, fit=fit,
        seconds=time.perf_counter() - started,
    )

