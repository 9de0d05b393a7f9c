"""Boundary conditions, applied by filling ghost cells around the interior (apart from stencils).

Grid points are cell centres: the walls of a non-periodic axis sit half a spacing outside the
first and last points. Ghost cells mirror the interior about the wall:

* ``periodic``  -- ghost = the interior cell one period away;
* ``neumann``   -- zero normal gradient (no flux): ghost = mirror image, ``u_g = u_m``;
* ``dirichlet`` -- value ``b`` on the wall: ghost = ``2 b - u_m`` (linear through the wall).

Buffers have shape ``(S, Y + 2 gy, X + 2 gx)`` (1-D problems use ``Y = 1, gy = 0``). Filling uses
only slicing and in-place arithmetic, so the same code fills numpy arrays and torch tensors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["BC_KINDS", "BoundaryCondition", "BoundarySpec", "GhostFiller", "parse_bc"]

BC_KINDS = ("periodic", "dirichlet", "neumann")


@dataclass(frozen=True)
class BoundaryCondition:
    """Boundary condition of one axis.

    Parameters
    ----------
    kind
        ``"periodic"``, ``"dirichlet"`` or ``"neumann"`` (zero flux).
    value
        Dirichlet wall value: one number for both walls or ``(low, high)``, in the units of ``u``.
        Must be 0 for the other kinds.
    """

    kind: str = "periodic"
    value: float | tuple[float, float] = 0.0

    def __post_init__(self) -> None:
        if self.kind not in BC_KINDS:
            msg = f"unknown bc {self.kind!r}; valid: {', '.join(BC_KINDS)}"
            raise ValueError(msg)
        low, high = self.values
        if self.kind != "dirichlet" and (low != 0.0 or high != 0.0):
            msg = f"bc {self.kind!r} takes no value, got value={self.value!r}"
            raise ValueError(msg)

    @property
    def values(self) -> tuple[float, float]:
        """``(low, high)`` wall values."""
        pair = self.value if isinstance(self.value, tuple | list) else (self.value, self.value)
        if len(pair) != 2:
            msg = f"bc value must be a number or (low, high), got {self.value!r}"
            raise ValueError(msg)
        try:
            low, high = float(pair[0]), float(pair[1])
        except (TypeError, ValueError):
            msg = f"bc value must be a number or (low, high) numbers, got {self.value!r}"
            raise TypeError(msg) from None
        if not (math.isfinite(low) and math.isfinite(high)):
            msg = f"bc value={self.value!r} must be finite (the wall value(s) in units of u)"
            raise ValueError(msg)
        return low, high

    def describe(self) -> str:
        """Short text for attrs, e.g. ``"dirichlet(0, 1)"``."""
        if self.kind != "dirichlet":
            return self.kind
        low, high = self.values
        return f"dirichlet({low:g}, {high:g})"


# per spatial dim name, in order ("y", "x") or ("x",)
BoundarySpec = dict[str, BoundaryCondition]


def parse_bc(bc: Any, dims: tuple[str, ...]) -> BoundarySpec:
    """Normalise ``bc`` into one :class:`BoundaryCondition` per dim.

    ``bc`` may be a kind name (``"periodic"``), a :class:`BoundaryCondition`, or a mapping
    ``{dim: kind-or-BoundaryCondition}`` naming every dim in ``dims``.
    """
    if isinstance(bc, Mapping):
        unknown = sorted(set(bc) - set(dims))
        missing = [d for d in dims if d not in bc]
        if unknown or missing:
            msg = (f"bc mapping must name exactly the dims {dims}; "
                   f"unknown {unknown}, missing {missing}")
            raise ValueError(msg)
        return {d: _one(bc[d]) for d in dims}
    one = _one(bc)
    return dict.fromkeys(dims, one)


def _one(bc: Any) -> BoundaryCondition:
    if isinstance(bc, BoundaryCondition):
        return bc
    if isinstance(bc, str):
        return BoundaryCondition(bc)
    msg = (
        f"bc must be one of {', '.join(BC_KINDS)}, a BoundaryCondition or a {{dim: bc}} mapping, "
        f"got {bc!r}"
    )
    raise TypeError(msg)


def describe_bc(spec: BoundarySpec) -> str:
    """``"periodic"`` when every dim agrees, else ``"y: periodic; x: dirichlet(0, 1)"``."""
    texts = {d: c.describe() for d, c in spec.items()}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{d}: {t}" for d, t in texts.items())


class GhostFiller:
    """Fill the ghost cells of ``(S, Y + 2 gy, X + 2 gx)`` buffers in place.

    Parameters
    ----------
    spec
        One boundary condition per spatial dim (``("y", "x")`` or ``("x",)``).
    ghosts
        Ghost width ``(gy, gx)``; ``gy = 0`` for 1-D problems.
    """

    def __init__(self, spec: BoundarySpec, ghosts: tuple[int, int]) -> None:
        self.spec = spec
        self.gy, self.gx = ghosts

    def check(self, shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` if a ``(S, Yp, Xp)`` buffer is too small for the ghost widths."""
        _, yp, xp = shape
        for dim, g, n in (("x", self.gx, xp - 2 * self.gx), ("y", self.gy, yp - 2 * self.gy)):
            if dim in self.spec and g and n < g:
                msg = f"grid of {n} cells is too small for ghost width {g}"
                raise ValueError(msg)

    def fill(self, buf: Any) -> None:
        """Fill every ghost cell of ``buf`` (numpy array or torch tensor), x first, then y.

        Filling y last over full rows gives the corner ghosts that 9-point stencils read.
        """
        _, yp, xp = buf.shape
        if "x" in self.spec and self.gx:
            rows = slice(self.gy, yp - self.gy)
            self._fill_axis(buf, self.spec["x"], self.gx, xp - 2 * self.gx,
                            lambda s: (slice(None), rows, s))
        if "y" in self.spec and self.gy:
            self._fill_axis(buf, self.spec["y"], self.gy, yp - 2 * self.gy,
                            lambda s: (slice(None), s, slice(None)))

    @staticmethod
    def _fill_axis(buf: Any, bc: BoundaryCondition, g: int, n: int, at: Any) -> None:
        if n < g:
            msg = f"grid of {n} cells is too small for ghost width {g}"
            raise ValueError(msg)
        if bc.kind == "periodic":
            buf[at(slice(0, g))] = buf[at(slice(n, n + g))]  # (S, ., g)
            buf[at(slice(g + n, 2 * g + n))] = buf[at(slice(g, 2 * g))]
            return
        low, high = bc.values
        for j in range(g):
            ghost_lo, mirror_lo = at(slice(g - 1 - j, g - j)), at(slice(g + j, g + j + 1))
            ghost_hi = at(slice(g + n + j, g + n + j + 1))
            mirror_hi = at(slice(g + n - 1 - j, g + n - j))
            buf[ghost_lo] = buf[mirror_lo]
            buf[ghost_hi] = buf[mirror_hi]
            if bc.kind == "dirichlet":
                for ghost, value in ((ghost_lo, low), (ghost_hi, high)):
                    view = buf[ghost]
                    view *= -1.0
                    view += 2.0 * value
