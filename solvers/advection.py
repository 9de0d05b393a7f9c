"""Linear advection with constant velocity: first-order upwind and Lax-Wendroff.

PDE::

    u_t + v_y u_y + v_x u_x = 0          (1-D: u_t + v u_x = 0)

Schemes, with Courant numbers ``c_a = v_a dt / h_a``; in 1-D::

    upwind (c >= 0):  u_i^{n+1} = (1 - c) u_i + c u_{i-1}        (mirror image for c < 0)
    lax_wendroff:     u_i^{n+1} = c (1 + c) / 2 u_{i-1} + (1 - c^2) u_i - c (1 - c) / 2 u_{i+1}

Upwind is first order, Lax-Wendroff second order; at ``|c| = 1`` both are exact shifts by one cell.
In 2-D the update is the product of the 1-D updates along y and x (corner-transport upwind and
the tensor-product Lax-Wendroff scheme, 9 points). Because constant-coefficient advection along
the two axes commutes, the product keeps each scheme's order, is exact for ``|c_y| = |c_x| = 1``,
and is stable for ``max_a |c_a| <= 1``.

Stability: the Courant number ``max_a |v_a| dt / h_a`` must not exceed 1; the signed per-axis
Courant numbers ``v_a dt / h_a`` are reported as ``courant_numbers``.

Parameters (required): ``velocity`` v (length / time, any sign) a number (same on every axis) or
``(v_y, v_x)``; ``scheme`` ``"upwind"`` (default) or ``"lax_wendroff"``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from gridformer.solvers.equation import Equation
from gridformer.solvers.parameters import Parameter
from gridformer.solvers.stability import Stability
from gridformer.solvers.stencil import Stencil

__all__ = ["Advection", "lax_wendroff_weights", "upwind_weights"]


def upwind_weights(c: float) -> dict[int, float]:
    """1-D upwind update ``{shift: weight}`` for Courant number ``c``."""
    if c >= 0:
        return {-1: c, 0: 1.0 - c}
    return {0: 1.0 + c, 1: -c}


def lax_wendroff_weights(c: float) -> dict[int, float]:
    """1-D Lax-Wendroff update ``{shift: weight}`` for Courant number ``c``."""
    return {-1: 0.5 * c * (1.0 + c), 0: 1.0 - c * c, 1: -0.5 * c * (1.0 - c)}


class Advection(Equation):
    """``u_t + v . grad u = 0`` with constant ``v``; upwind or Lax-Wendroff."""

    name = "advection"
    schemes = ("upwind", "lax_wendroff")
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("velocity", "v", "length/time", 1.0, minimum=None, per_axis=True),
    )
    linear = True

    def setup(self) -> None:
        self.velocity: tuple[float, ...] = self.values["velocity"]

    def stability(self, state: dict[str, np.ndarray] | None = None) -> Stability:
        rates = tuple(v / h for v, h in zip(self.velocity, self.spacing, strict=True))
        formula = "|v| dt/dx" if self.ndim == 1 else "max(|v_y|/dy, |v_x|/dx) dt"
        return Stability("Courant number", formula, max(abs(r) for r in rates), 1.0,
                         {"courant_numbers": rates})

    def stencil(self, dt: float) -> Stencil:
        one_d = upwind_weights if self.scheme == "upwind" else lax_wendroff_weights
        total = Stencil.identity(self.ndim)
        for axis, (v, h) in enumerate(zip(self.velocity, self.spacing, strict=True)):
            total = total.compose(Stencil.along(axis, self.ndim, one_d(v * dt / h)))
        return total
