"""Wave equation, second-order leapfrog (Störmer-Verlet).

PDE::

    u_tt = c^2 (u_yy + u_xx),      u(0) = u0,  u_t(0) = initial_velocity

Scheme (central differences in time and space, three time levels)::

    u^{n+1} = 2 u^n - u^{n-1} + (c dt)^2 L_h u^n

with ``L_h`` the 3-/5-point Laplacian. The first step uses the Taylor start
``u^1 = u^0 + dt v^0 + (c dt)^2 / 2 L_h u^0``, so the scheme is second order in time and
space. It is the Störmer-Verlet (velocity Verlet) method written in ``u`` alone.

Stability: the Courant number ``c dt sqrt(sum_a 1 / h_a^2)`` (``c dt/dx`` in 1-D) must not exceed
1; the per-axis Courant numbers ``c dt / h_a`` are reported as ``courant_numbers``. At Courant
number 1 in 1-D the scheme is exact on grid points for the d'Alembert solution, once ``u^1`` is.

Parameters: ``speed`` c (length / time, >= 0, required); ``initial_velocity`` u_t(0): not given
(zero), a number or an array/DataArray shaped like ``u0``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from gridformer.solvers import fused
from gridformer.solvers.boundary import BoundarySpec
from gridformer.solvers.equation import Equation, Integrator
from gridformer.solvers.parameters import Parameter
from gridformer.solvers.stability import Stability, axis_sum
from gridformer.solvers.stencil import Stencil, laplacian

__all__ = ["Wave", "WaveIntegrator"]


class Wave(Equation):
    """``u_tt = c^2 lap(u)``; leapfrog with a second-order start."""

    name = "wave"
    schemes = ("leapfrog",)
    parameters: ClassVar[tuple[Parameter, ...]] = (Parameter("speed", "c", "length/time", 1.0),)
    field_params = ("initial_velocity",)
    linear = True

    def setup(self) -> None:
        self.speed: float = self.values["speed"]

    def stability(self, state: dict[str, np.ndarray] | None = None) -> Stability:
        rate = self.speed * math.sqrt(sum(1.0 / h**2 for h in self.spacing))
        formula = "c dt/dx" if self.ndim == 1 else f"c dt sqrt({axis_sum('1/d{h}^2', 2)})"
        return Stability("Courant number", formula, rate, 1.0,
                         {"courant_numbers": tuple(self.speed / h for h in self.spacing)})

    def _laplacian(self) -> Stencil:
        return laplacian(self.spacing, (self.speed**2,) * self.ndim)

    def stencil(self, dt: float) -> Stencil:
        """Weights on ``u^n``; the update also adds ``-1 * u^{n-1}`` (see ``previous_weight``)."""
        return Stencil.identity(self.ndim).scaled(2.0) + self._laplacian().scaled(dt**2)

    def stencil_attrs(self) -> dict[str, Any]:
        return {"previous_weight": -1.0,
                "note": "u^{n+1} = sum(weight * u^n[shifted]) + previous_weight * u^{n-1}"}

    def integrator(self, dt: float, backend: Any, bc: BoundarySpec,
                   state: dict[str, np.ndarray]) -> Integrator:
        start = Stencil.identity(self.ndim) + self._laplacian().scaled(0.5 * dt**2)
        return WaveIntegrator(self.stencil(dt), start, dt, backend, bc, state["u"],
                              state.get("initial_velocity"))


class WaveIntegrator(Integrator):
    """Rotates three preallocated buffers ``(previous, current, next)``."""

    def __init__(self, stencil: Stencil, start: Stencil, dt: float, backend: Any,
                 bc: BoundarySpec, u0: np.ndarray, v0: np.ndarray | None) -> None:
        ghosts = (1, 1) if stencil.ndim == 2 else (0, 1)
        super().__init__(backend, bc, ghosts)
        self.stencils = (start, stencil)
        self.prepared = backend.prepare(stencil)
        self.prepared_start = backend.prepare(start)
        self.dt = dt
        self.cur = self.padded(u0)  # (S, Y+2gy, X+2gx)
        self.prev = self.padded(np.zeros_like(u0) if v0 is None else v0)  # holds v0 until step 1
        self.nxt = backend.zeros(tuple(self.cur.shape))
        self.started = False

    def current(self) -> dict[str, Any]:
        return {"u": self.cur}

    def levels(self) -> dict[str, list[Any]]:
        return {"u": [self.prev, self.cur, self.nxt]}

    def set_levels(self, levels: dict[str, list[Any]]) -> None:
        self.prev, self.cur, self.nxt = levels["u"]
        self.started = True  # a fused run always takes at least one step

    def fused_spec(self) -> fused.FusedSpec:
        """The Taylor start (``beta = dt`` on ``v0``) until the first step, then leapfrog."""
        stencil = self.stencils[self.started]
        return fused.make_spec(kind=fused.LINEAR, ghosts=self.ghosts, bc=self.filler.spec,
                               n_levels=3, u=fused.stencil_layout(stencil),
                               beta=-1.0 if self.started else self.dt)

    def run(self, n_steps: int, step0: int, frames: dict[str, np.ndarray], save_every: int,
            check_every: int) -> int | None:
        if self.started or n_steps <= 1 or not getattr(self.backend, "fused", False):
            return super().run(n_steps, step0, frames, save_every, check_every)
        hit = super().run(1, step0, frames, save_every, check_every)  # the start step
        if hit is not None:
            return hit
        return super().run(n_steps - 1, step0 + 1, frames, save_every, check_every)

    def step(self) -> None:
        self.filler.fill(self.cur)
        if self.started:
            self.backend.stencil_step(self.cur, self.nxt, self.prepared, self.ghosts,
                                      prev=self.prev, beta=-1.0)
        else:  # u^1 = (I + (c dt)^2/2 L) u^0 + dt v^0
            self.backend.stencil_step(self.cur, self.nxt, self.prepared_start, self.ghosts,
                                      prev=self.prev, beta=self.dt)
            self.started = True
        self.prev, self.cur, self.nxt = self.cur, self.nxt, self.prev
