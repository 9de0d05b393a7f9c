"""Time-step limits, each named for what it is, and the messages and warnings about them.

Every scheme has one number ``s = rate * dt`` that must not exceed ``limit``. What it is differs
between schemes, so it is never just "the CFL number": it carries its own name and formula,

=========== ============================= =================================================
equation    name                          formula (2-D; 1-D drops the y terms)
=========== ============================= =================================================
heat        diffusion number              ``(D_y/dy^2 + D_x/dx^2) dt/2`` <= 1/4 (1-D 1/2)
advection   Courant number                ``max(|v_y|/dy, |v_x|/dx) dt`` <= 1
wave        Courant number                ``c dt sqrt(1/dy^2 + 1/dx^2)`` <= 1
burgers     advection-diffusion number    ``(max|u0| (1/dy + 1/dx) + 2 nu (...)) dt`` <= 1
reaction-   reaction-diffusion number     ``(2 (D_y/dy^2 + D_x/dx^2) + L) dt`` <= 1
diffusion
=========== ============================= =================================================

and the classical dimensionless numbers per axis are reported beside it under their own names:
``diffusion_numbers`` ``D_a dt / h_a^2``, ``courant_numbers`` ``v_a dt / h_a``, and
``reaction_number`` ``L dt`` (``L`` the largest ``|dR/du|`` on the invariant interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["BlowUpError", "Stability", "UnstableStepWarning", "axis_sum", "check_dt",
           "unstable_text"]

_TOLERANCE = 1e-12  # relative slack on the limit, for dt computed as limit / rate


class BlowUpError(FloatingPointError):
    """A solve produced NaN/inf; the message names the step."""


class UnstableStepWarning(UserWarning):
    """``update_stencil`` was asked for a step beyond the scheme's stability limit."""


def axis_sum(term: str, ndim: int) -> str:
    """``"D/dx^2"`` in 1-D, ``"D_y/dy^2 + D_x/dx^2"`` in 2-D, from ``term = "D{a}/d{h}^2"``.

    ``{a}`` becomes the axis subscript (``_y``; empty in 1-D) and ``{h}`` the axis name.
    """
    axes = ("y", "x") if ndim == 2 else ("x",)
    return " + ".join(term.format(a=f"_{h}" if ndim == 2 else "", h=h) for h in axes)


@dataclass(frozen=True)
class Stability:
    """A time-step limit: ``number = rate * dt`` must not exceed ``limit``.

    Attributes
    ----------
    name
        What the number is (``"diffusion number"``), used in attrs and messages.
    formula
        How it is computed (``"D dt/dx^2"``).
    rate
        The number per unit ``dt`` (1 / time units).
    limit
        Largest stable value of the number.
    classical
        Classical dimensionless numbers per unit ``dt`` by attribute name, e.g.
        ``{"diffusion_numbers": (r_y, r_x)}`` (per axis) or ``{"reaction_number": L}``.
    """

    name: str
    formula: str
    rate: float
    limit: float
    classical: dict[str, float | tuple[float, ...]] = field(default_factory=dict)

    def number(self, dt: float) -> float:
        """The number for step ``dt``."""
        return self.rate * dt

    def stable(self, dt: float) -> bool:
        """Whether ``dt`` is within the limit (False for a NaN number)."""
        return self.number(dt) <= self.limit * (1.0 + _TOLERANCE)

    @property
    def dt_max(self) -> float:
        """Largest stable ``dt`` (``inf`` when nothing limits it)."""
        return math.inf if self.rate == 0.0 else self.limit / self.rate

    def text(self, dt: float) -> str:
        """``"diffusion number D dt/dx^2 = 0.8"``."""
        return f"{self.name} {self.formula} = {self.number(dt):.6g}"

    def attrs(self, dt: float) -> dict[str, Any]:
        """attrs of a result: the number, its name, formula and limit, the classical numbers."""
        attrs: dict[str, Any] = {
            "cfl_name": self.name, "cfl_formula": self.formula, "cfl": self.number(dt),
            "cfl_limit": self.limit, "dt_max": self.dt_max,
        }
        for key, rate in self.classical.items():
            attrs[key] = ([r * dt for r in rate] if isinstance(rate, tuple) else rate * dt)
        return attrs


def unstable_text(equation: Any, stab: Stability, dt: float) -> str:
    """``"dt=0.8 is unstable for heat with diffusivity=1.0, dx=1.0 (diffusion number ...)"``."""
    names = ("dy", "dx") if len(equation.spacing) == 2 else ("dx",)
    spacing = ", ".join(f"{n}={h!r}" for n, h in zip(names, equation.spacing, strict=True))
    return (f"dt={dt!r} is unstable for {equation.name} with {equation.describe()}, {spacing} "
            f"({stab.text(dt)} > {stab.limit:g})")


def check_dt(dt: Any, *, allow_none: bool = False) -> float | None:
    """``dt`` as a positive finite float (``None`` passes when ``allow_none``)."""
    if dt is None and allow_none:
        return None
    if isinstance(dt, bool) or not isinstance(dt, int | float | np.integer | np.floating):
        msg = f"dt must be a number{' or None' if allow_none else ''}, got {dt!r}"
        raise TypeError(msg)
    value = float(dt)
    if not (math.isfinite(value) and value > 0):
        msg = f"dt={dt if isinstance(dt, int) else value!r} must be a positive finite number"
        raise ValueError(msg)
    return value
