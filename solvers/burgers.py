"""Viscous Burgers equation, conservative finite volumes with a Godunov or upwind flux.

PDE (1-D; in 2-D the same flux acts along both axes, ``u_t + (u^2/2)_x + (u^2/2)_y = nu lap u``)::

    u_t + (u^2 / 2)_x = nu u_xx

Scheme (forward Euler, conservative flux differences + central diffusion)::

    u_i^{n+1} = u_i - dt/h (F(u_i, u_{i+1}) - F(u_{i-1}, u_i))
                    + nu dt/h^2 (u_{i+1} - 2 u_i + u_{i-1})

with the numerical flux of ``f(u) = u^2 / 2``:

* ``"godunov"`` (default): the exact Riemann flux ``F = max(f(max(uL, 0)), f(min(uR, 0)))``;
* ``"upwind"``: ``f(uL)`` if ``uL + uR >= 0`` else ``f(uR)`` (upwind by the shock speed; no
  entropy fix, so transonic rarefactions may stay as expansion shocks when ``nu = 0``).

First order; conservative, so shocks move at the right speed. The exact solution for ``nu > 0``
follows from the Cole-Hopf transform (see the tests).

Stability (monotone scheme): the advection-diffusion number
``dt * sum_a (max|u0| / h_a + 2 nu / h_a^2)`` must not exceed 1. It is checked for the initial
state (``max|u|`` does not grow for this scheme). The per-axis Courant numbers
``max|u0| dt / h_a`` and diffusion numbers ``nu dt / h_a^2`` are reported as
``courant_numbers`` and ``diffusion_numbers``.

Parameters (required): ``viscosity`` nu (length^2 / time, >= 0); ``scheme`` ``"godunov"``
(default) or ``"upwind"``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gridformer.solvers import fused, kernels
from gridformer.solvers.boundary import BoundarySpec
from gridformer.solvers.equation import Equation, PingPongIntegrator
from gridformer.solvers.parameters import Parameter
from gridformer.solvers.stability import Stability, axis_sum

__all__ = ["Burgers", "BurgersIntegrator"]


class Burgers(Equation):
    """``u_t + u . grad u = nu lap u`` in conservative form."""

    name = "burgers"
    schemes = ("godunov", "upwind")
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("viscosity", "nu", "length^2/time", 0.01),
    )

    def setup(self) -> None:
        self.viscosity: float = self.values["viscosity"]

    def stability(self, state: dict[str, np.ndarray]) -> Stability:
        umax = float(np.max(np.abs(state["u"]))) if state["u"].size else 0.0
        courant = tuple(umax / h for h in self.spacing)
        diffusion = tuple(self.viscosity / h**2 for h in self.spacing)
        if self.ndim == 1:
            formula = "(max|u0|/dx + 2 nu/dx^2) dt"
        else:
            formula = (f"(max|u0| ({axis_sum('1/d{h}', 2)}) + 2 nu ({axis_sum('1/d{h}^2', 2)})) "
                       "dt")
        return Stability("advection-diffusion number", formula, sum(courant) + 2 * sum(diffusion),
                         1.0, {"courant_numbers": courant, "diffusion_numbers": diffusion})

    def integrator(self, dt: float, backend: Any, bc: BoundarySpec,
                   state: dict[str, np.ndarray]) -> PingPongIntegrator:
        return BurgersIntegrator(self, dt, backend, bc, state["u"])


class BurgersIntegrator(PingPongIntegrator):
    """Two buffers stepped by the Burgers flux kernel."""

    def __init__(self, eq: Burgers, dt: float, backend: Any, bc: BoundarySpec,
                 u0: np.ndarray) -> None:
        super().__init__(backend, bc, (1, 1) if eq.ndim == 2 else (0, 1), u0)
        self.dt = dt
        self.spacing = eq.spacing if eq.ndim == 2 else (1.0, eq.spacing[0])  # (hy, hx)
        self.viscosity = eq.viscosity
        self.flux = eq.scheme

    def advance(self, src: Any, dst: Any) -> None:
        self.backend.burgers_step(src, dst, self.ghosts, self.dt, self.spacing, self.viscosity,
                                  self.flux)

    def fused_spec(self) -> fused.FusedSpec:
        return fused.make_spec(kind=fused.BURGERS, ghosts=self.ghosts, bc=self.filler.spec,
                               dt=self.dt, spacing=self.spacing, viscosity=self.viscosity,
                               code=kernels.FLUX_CODES[self.flux])
