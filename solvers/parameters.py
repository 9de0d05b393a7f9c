"""Physical parameters of the equations: name, symbol, units, valid range, and their checking.

Every equation declares its parameters as :class:`Parameter` entries. They have no defaults: a
missing one is a ``TypeError`` that says what to pass (with an example value), and a value that
is not a finite number in range is a ``ValueError`` naming the parameter, the value, the
equation and what is valid, e.g. ``rate=nan for fisher_kpp must be a finite number >= 0``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Parameter", "missing_message", "show_value"]

_AXES = {1: ("x",), 2: ("y", "x")}


@dataclass(frozen=True)
class Parameter:
    """One physical parameter of an equation.

    Attributes
    ----------
    name
        Keyword name (``"diffusivity"``).
    symbol
        Symbol in formulas and messages (``"D"``; per-axis values are ``D_y, D_x``).
    units
        Units in words (``"length^2/time"``).
    example
        A typical value, shown in the message for a missing parameter (never used silently).
    minimum
        Smallest valid value (``0.0``), or ``None`` when any sign is valid.
    per_axis
        Whether one value per spatial axis (``(y, x)`` order) may be given.
    """

    name: str
    symbol: str
    units: str
    example: float
    minimum: float | None = 0.0
    per_axis: bool = False

    def valid_text(self, ndim: int) -> str:
        """``"a finite number >= 0 or 2 of them, one per axis (D_y, D_x)"``."""
        text = "a finite number" + ("" if self.minimum is None else f" >= {self.minimum:g}")
        if self.per_axis and ndim > 1:
            text += f" or {ndim} of them, one per axis ({self._axis_symbols(ndim)})"
        return text

    def _axis_symbols(self, ndim: int) -> str:
        """``"D_y, D_x"`` (``"D_u,y, D_u,x"`` for a symbol that has a subscript already)."""
        joiner = "," if "_" in self.symbol else "_"
        return ", ".join(f"{self.symbol}{joiner}{a}" for a in _AXES[ndim])

    def describe(self, ndim: int) -> str:
        """``"D, length^2/time: a finite number >= 0 ..."``."""
        return f"{self.symbol}, {self.units}: {self.valid_text(ndim)}"

    def check(self, value: Any, equation: str, ndim: int) -> float | tuple[float, ...]:
        """``value`` as a float (or a tuple of ``ndim`` floats for per-axis parameters).

        Raises
        ------
        TypeError
            ``value`` is not a number (or a sequence of numbers, per axis).
        ValueError
            Not finite, out of range, or the wrong number of per-axis values.
        """
        values = self._as_floats(value, equation, ndim)
        ok = all(math.isfinite(v) and (self.minimum is None or v >= self.minimum)
                 for v in values)
        allowed = (1, ndim) if self.per_axis else (1,)
        if not ok or len(values) not in allowed:
            msg = (f"{self.name}={show_value(value)} for {equation} must be "
                   f"{self.valid_text(ndim)}")
            raise ValueError(msg)
        if not self.per_axis:
            return values[0]
        return values * ndim if len(values) == 1 else values

    def _as_floats(self, value: Any, equation: str, ndim: int) -> tuple[float, ...]:
        array_like = isinstance(value, list | tuple) or hasattr(value, "__array__")
        items = list(np.ravel(np.asarray(value, dtype=object))) if array_like else [value]
        numbers = all(isinstance(v, int | float | np.integer | np.floating)
                      and not isinstance(v, bool | np.bool_) for v in items)
        if not numbers or (len(items) > 1 and not self.per_axis) or not items:
            what = "a number"
            if self.per_axis and ndim > 1:
                what += f" or {ndim} numbers, one per axis ({self._axis_symbols(ndim)})"
            msg = f"{self.name}={value!r} for {equation} must be {what}, got {type(value).__name__}"
            raise TypeError(msg)
        return tuple(float(v) for v in items)


def _is_sequence(value: Any) -> bool:
    return (isinstance(value, list | tuple) or hasattr(value, "__array__")) and np.ndim(value) > 0


def show_value(value: Any) -> str:
    """``nan``, ``-1.0``, ``(0.5, nan)``: numbers as Python floats, sequences as tuples."""
    if _is_sequence(value):
        try:
            return repr(tuple(float(v) for v in np.ravel(value)))
        except (TypeError, ValueError):
            return repr(value)
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return repr(float(value))
    return repr(value)


def missing_message(equation: str, missing: Iterable[Parameter], ndim: int) -> str:
    """The ``TypeError`` text for parameters that were not given."""
    missing = list(missing)
    wanted = ", ".join(f"{p.name}= ({p.describe(ndim)})" for p in missing)
    examples = ", ".join(f"{p.name}={p.example!r}" for p in missing)
    plural = "s" if len(missing) > 1 else ""
    return (f"missing parameter{plural} for {equation}: {wanted}, e.g. {examples}; physical "
            "parameters have no defaults")
