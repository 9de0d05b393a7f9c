"""Stencils as data: integer offsets and the weights that multiply the neighbouring values.

A :class:`Stencil` is the coefficient table of one explicit linear update

    u_new[y, x] = sum_k weights[k] * u[y + offsets[k, 0], x + offsets[k, 1]]

(in 1-D the offsets have one column, ``dx``). The linear solvers step with it (the compiled
kernels read ``offsets`` and ``weights``), :func:`gridformer.solvers.update_stencil` returns it as
an ``xr.DataArray`` with dims ``("dy", "dx")`` or ``("dx",)``, and the analysis code compares
learned attention stencils with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

if TYPE_CHECKING:  # pragma: no cover
    from gridformer.solvers.boundary import BoundarySpec

__all__ = ["Stencil"]

_OFFSET_DIMS = {1: ("dx",), 2: ("dy", "dx")}


@dataclass(frozen=True, eq=False)
class Stencil:
    """Offsets -> weights of an explicit linear update.

    Parameters
    ----------
    offsets
        ``(K, ndim)`` integer array; column order ``(dy, dx)`` in 2-D, ``(dx,)`` in 1-D, in grid
        cells. Offsets are unique.
    weights
        ``(K,)`` float64 array; ``weights[k]`` multiplies ``u[y + dy_k, x + dx_k]``.
    """

    offsets: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        offsets = np.asarray(self.offsets, dtype=np.int64)
        weights = np.asarray(self.weights, dtype=np.float64)
        if offsets.ndim != 2 or offsets.shape[1] not in (1, 2):
            msg = f"offsets must have shape (K, 1) or (K, 2), got {offsets.shape}"
            raise ValueError(msg)
        if weights.shape != (offsets.shape[0],):
            msg = (f"weights must have shape ({offsets.shape[0]},) to match offsets, "
                   f"got {weights.shape}")
            raise ValueError(msg)
        if len({tuple(o) for o in offsets.tolist()}) != len(offsets):
            msg = "offsets must be unique; merge repeated offsets by adding weights"
            raise ValueError(msg)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "weights", weights)

    # ----------------------------------------------------------------------------- builders
    @classmethod
    def from_dict(cls, table: dict[tuple[int, ...], float], ndim: int | None = None) -> Stencil:
        """Build from ``{(dy, dx): weight}`` (or ``{(dx,): weight}``); equal offsets are summed."""
        ndim = ndim if ndim is not None else len(next(iter(table)))
        merged: dict[tuple[int, ...], float] = {}
        for offset, weight in table.items():
            key = tuple(int(o) for o in offset)
            if len(key) != ndim:
                msg = f"offset {offset} has {len(key)} entries, expected {ndim}"
                raise ValueError(msg)
            merged[key] = merged.get(key, 0.0) + float(weight)
        keys = sorted(merged)
        offsets = np.array(keys, dtype=np.int64).reshape(-1, ndim)
        return cls(offsets, np.array([merged[k] for k in keys]))

    @classmethod
    def identity(cls, ndim: int) -> Stencil:
        """The stencil that leaves ``u`` unchanged."""
        return cls.from_dict({(0,) * ndim: 1.0})

    @classmethod
    def along(cls, axis: int, ndim: int, weights_by_shift: dict[int, float]) -> Stencil:
        """A 1-D stencil ``{shift: weight}`` laid along ``axis`` (0 = y, 1 = x in 2-D)."""
        table = {}
        for shift, weight in weights_by_shift.items():
            offset = [0] * ndim
            offset[axis] = shift
            table[tuple(offset)] = weight
        return cls.from_dict(table, ndim)

    # --------------------------------------------------------------------------- algebra
    @property
    def ndim(self) -> int:
        """Number of spatial dims (1 or 2)."""
        return int(self.offsets.shape[1])

    @property
    def radius(self) -> tuple[int, ...]:
        """Largest ``|offset|`` per axis: the ghost-cell width this stencil needs."""
        return tuple(int(r) for r in np.abs(self.offsets).max(axis=0))

    def as_dict(self) -> dict[tuple[int, ...], float]:
        """``{(dy, dx): weight}``."""
        pairs = zip(self.offsets.tolist(), self.weights, strict=True)
        return {tuple(o): float(w) for o, w in pairs}

    def __add__(self, other: Stencil) -> Stencil:
        table = self.as_dict()
        for key, weight in other.as_dict().items():
            table[key] = table.get(key, 0.0) + weight
        return Stencil.from_dict(table, self.ndim)

    def scaled(self, factor: float) -> Stencil:
        """Every weight multiplied by ``factor``."""
        return Stencil(self.offsets, self.weights * float(factor))

    def compose(self, other: Stencil) -> Stencil:
        """Stencil of applying ``other`` first, then ``self`` (offsets add, weights multiply)."""
        table: dict[tuple[int, ...], float] = {}
        for o1, w1 in self.as_dict().items():
            for o2, w2 in other.as_dict().items():
                key = tuple(a + b for a, b in zip(o1, o2, strict=True))
                table[key] = table.get(key, 0.0) + w1 * w2
        return Stencil.from_dict(table, self.ndim)

    def symbol(self, *theta: np.ndarray) -> np.ndarray:
        """Von Neumann amplification factor ``G(theta) = sum_k w_k exp(i offset_k . theta)``.

        ``theta`` holds one array of phase angles ``k_a h_a`` (radians) per axis, in offset order.
        """
        if len(theta) != self.ndim:
            msg = f"symbol needs {self.ndim} phase arrays, got {len(theta)}"
            raise ValueError(msg)
        phase = sum(np.multiply.outer(self.offsets[:, a], np.asarray(t))
                    for a, t in enumerate(theta))
        return np.tensordot(self.weights, np.exp(1j * phase), axes=1)

    # ------------------------------------------------------------------------ conversion
    def to_dataarray(self, **attrs: object) -> xr.DataArray:
        """Dense ``xr.DataArray`` with dims ``("dy", "dx")`` (or ``("dx",)``), integer coords.

        Offsets absent from the stencil hold 0. ``attrs`` are attached as given.
        """
        dims = _OFFSET_DIMS[self.ndim]
        radius = self.radius
        coords = {d: np.arange(-r, r + 1, dtype=np.int64)
                  for d, r in zip(dims, radius, strict=True)}
        dense = np.zeros(tuple(2 * r + 1 for r in radius))
        index = tuple((self.offsets + np.array(radius)).T)
        dense[index] = self.weights
        return xr.DataArray(dense, dims=dims, coords=coords, attrs=dict(attrs), name="weight")

    @classmethod
    def from_dataarray(cls, array: xr.DataArray, *, atol: float = 0.0) -> Stencil:
        """Inverse of :meth:`to_dataarray`; entries with ``|weight| <= atol`` are dropped."""
        ndim = array.ndim
        if ndim not in _OFFSET_DIMS or tuple(array.dims) != _OFFSET_DIMS[ndim]:
            msg = f"stencil array must have dims ('dy', 'dx') or ('dx',), got {tuple(array.dims)}"
            raise ValueError(msg)
        grids = np.meshgrid(*(array[d].values.astype(np.int64) for d in array.dims), indexing="ij")
        values = np.asarray(array.values, dtype=np.float64)
        keep = np.abs(values) > atol
        offsets = np.stack([g[keep] for g in grids], axis=1)
        return cls(offsets, values[keep])

    # ----------------------------------------------------------------------------- apply
    def apply(self, u: np.ndarray, bc: str | BoundarySpec = "periodic") -> np.ndarray:
        """Apply once to ``u`` of shape ``(..., [Y,] X)`` with boundary condition ``bc`` (numpy).

        A plain-numpy reference used by tests and by small scripts; the solvers use the compiled
        kernels instead.
        """
        from gridformer.solvers.boundary import GhostFiller, parse_bc

        u = np.asarray(u, dtype=np.float64)
        nd = self.ndim
        spatial = u.shape[u.ndim - nd:]
        ghosts = (0,) * (2 - nd) + self.radius
        shape3 = (-1,) + (1,) * (2 - nd) + spatial  # (S, Y, X)
        core = u.reshape(shape3)
        gy, gx = ghosts
        padded = np.zeros((core.shape[0], core.shape[1] + 2 * gy, core.shape[2] + 2 * gx))
        padded[:, gy:gy + core.shape[1], gx:gx + core.shape[2]] = core
        dims = ("y", "x")[2 - nd:]
        GhostFiller(parse_bc(bc, dims), ghosts).fill(padded)
        out = np.zeros_like(core)
        Y, X = core.shape[1:]
        for offset, weight in zip(self.offsets, self.weights, strict=True):
            dy, dx = (0,) * (2 - nd) + tuple(int(o) for o in offset)
            out += weight * padded[:, gy + dy:gy + dy + Y, gx + dx:gx + dx + X]
        return out.reshape(u.shape)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}: {w:.6g}" for k, w in self.as_dict().items())
        return f"Stencil({{{items}}})"


def laplacian(spacing: tuple[float, ...], diffusivity: tuple[float, ...]) -> Stencil:
    """``sum_a D_a (u_{+a} - 2 u + u_{-a}) / h_a^2``: the 3-point (1-D) / 5-point (2-D) Laplacian.

    ``spacing`` and ``diffusivity`` are per axis in offset order ``(y, x)``.
    """
    ndim = len(spacing)
    total = Stencil.from_dict({(0,) * ndim: 0.0})
    for axis, (h, d) in enumerate(zip(spacing, diffusivity, strict=True)):
        c = d / h**2
        total = total + Stencil.along(axis, ndim, {-1: c, 0: -2.0 * c, 1: c})
    return total
