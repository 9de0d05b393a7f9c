"""Heat (diffusion) equation, isotropic or anisotropic, forward Euler.

PDE::

    u_t = d_y u_yy + d_x u_xx          (2-D; 1-D: u_t = d_x u_xx)

Scheme (forward Euler in time, 3-point / 5-point Laplacian in space)::

    u^{n+1}_{j,i} = u^n_{j,i} + r_x (u_{j,i+1} - 2 u_{j,i} + u_{j,i-1})
                              + r_y (u_{j+1,i} - 2 u_{j,i} + u_{j-1,i}),    r_a = d_a dt / h_a^2

First order in time, second order in space; second order overall when ``dt ~ h^2``. A Fourier
mode ``exp(i k x)`` is multiplied by exactly ``1 + 2 r_x (cos(k h_x) - 1)`` per step and axis.

Stability: the diffusion number ``r = dt * mean_a(d_a / h_a^2)`` (``D dt/dx^2`` in 1-D) must
satisfy ``r <= 1 / (2 ndim)`` (0.5 in 1-D, 0.25 in 2-D), i.e. ``dt * sum_a d_a / h_a^2 <= 1/2``;
the per-axis diffusion numbers ``d_a dt / h_a^2`` are reported as ``diffusion_numbers``.

Parameters (required): ``diffusivity`` D (length^2 / time, >= 0) a number or ``(d_y, d_x)``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from gridformer.solvers.equation import Equation
from gridformer.solvers.parameters import Parameter
from gridformer.solvers.stability import Stability, axis_sum
from gridformer.solvers.stencil import Stencil, laplacian

__all__ = ["Heat"]


class Heat(Equation):
    """``u_t = div(D grad u)`` with diagonal constant ``D``; forward Euler, central Laplacian."""

    name = "heat"
    schemes = ("forward_euler",)
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("diffusivity", "D", "length^2/time", 1.0, per_axis=True),
    )
    linear = True

    def setup(self) -> None:
        self.diffusivity: tuple[float, ...] = self.values["diffusivity"]

    def stability(self, state: dict[str, np.ndarray] | None = None) -> Stability:
        rates = tuple(d / h**2 for d, h in zip(self.diffusivity, self.spacing, strict=True))
        formula = "D dt/dx^2" if self.ndim == 1 else f"({axis_sum('D{a}/d{h}^2', 2)}) dt/2"
        return Stability("diffusion number", formula, float(np.mean(rates)),
                         1.0 / (2 * self.ndim), {"diffusion_numbers": rates})

    def stencil(self, dt: float) -> Stencil:
        return Stencil.identity(self.ndim) + laplacian(self.spacing, self.diffusivity).scaled(dt)
