"""Heat (diffusion) equation, isotropic or anisotropic, forward Euler.

PDE::

    u_t = d_y u_yy + d_x u_xx          (2-D; 1-D: u_t = d_x u_xx)

Scheme (forward Euler in time, 3-point / 5-point Laplacian in space)::

    u^{n+1}_{j,i} = u^n_{j,i} + r_x (u_{j,i+1} - 2 u_{j,i} + u_{j,i-1})
                              + r_y (u_{j+1,i} - 2 u_{j,i} + u_{j-1,i}),    r_a = d_a dt / h_a^2

First order in time, second order in space; second order overall when ``dt ~ h^2``. A Fourier
mode ``exp(i k x)`` is multiplied by exactly ``1 + 2 r_x (cos(k h_x) - 1)`` per step and axis.

Stability: the CFL (diffusion) number ``r = dt * mean_a(d_a / h_a^2)`` must satisfy
``r <= 1 / (2 ndim)`` (0.5 in 1-D, 0.25 in 2-D), i.e. ``dt * sum_a d_a / h_a^2 <= 1/2``.

Parameters: ``diffusivity`` (length^2 / time) a number or ``(d_y, d_x)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gridformer.solvers.equation import Equation, Stability, per_axis
from gridformer.solvers.stencil import Stencil, laplacian

__all__ = ["Heat"]


class Heat(Equation):
    """``u_t = div(D grad u)`` with diagonal constant ``D``; forward Euler, central Laplacian."""

    name = "heat"
    schemes = ("forward_euler",)
    defaults: ClassVar[dict[str, Any]] = {"diffusivity": 1.0}
    linear = True

    def setup(self) -> None:
        self.diffusivity = per_axis(self.params["diffusivity"], self.ndim, "diffusivity",
                                    nonnegative=True)

    def stability(self, state: dict[str, np.ndarray] | None = None) -> Stability:
        pairs = zip(self.diffusivity, self.spacing, strict=True)
        rate = float(np.mean([d / h**2 for d, h in pairs]))
        return Stability("CFL number", rate, 1.0 / (2 * self.ndim))

    def axis_numbers(self, dt: float) -> dict[str, list[float]]:
        pairs = zip(self.diffusivity, self.spacing, strict=True)
        return {"diffusion_numbers": [d * dt / h**2 for d, h in pairs]}

    def stencil(self, dt: float) -> Stencil:
        return Stencil.identity(self.ndim) + laplacian(self.spacing, self.diffusivity).scaled(dt)
