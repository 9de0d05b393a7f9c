"""What every equation module provides, and the ping-pong integrator of linear stencil schemes.

An :class:`Equation` knows its parameters, its time-step limit (:meth:`Equation.stability`), its
update stencil when the scheme is linear, and builds an :class:`Integrator` that owns the
preallocated buffers and advances them one step at a time on a backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from gridformer.solvers.boundary import BoundarySpec, GhostFiller
from gridformer.solvers.stencil import Stencil

__all__ = [
    "Equation",
    "Integrator",
    "LinearIntegrator",
    "PingPongIntegrator",
    "Stability",
    "per_axis",
]


@dataclass(frozen=True)
class Stability:
    """A time-step limit: ``number = rate * dt`` must not exceed ``limit``.

    Attributes
    ----------
    name
        What the number is called in messages (``"CFL number"``).
    rate
        The number per unit ``dt`` (1 / time units).
    limit
        Largest stable value of the number.
    """

    name: str
    rate: float
    limit: float

    def number(self, dt: float) -> float:
        """The number for step ``dt``."""
        return self.rate * dt

    @property
    def dt_max(self) -> float:
        """Largest stable ``dt`` (``inf`` when nothing limits it)."""
        return math.inf if self.rate == 0.0 else self.limit / self.rate


def per_axis(value: Any, ndim: int, name: str, *, nonnegative: bool = False) -> tuple[float, ...]:
    """A number or one number per axis (``(y, x)`` order) as a tuple of ``ndim`` floats."""
    values = tuple(np.atleast_1d(np.asarray(value, dtype=np.float64)).tolist())
    if len(values) == 1:
        values = values * ndim
    if len(values) != ndim:
        msg = f"{name}={value!r} must be a number or {ndim} numbers (one per axis, y then x)"
        raise ValueError(msg)
    if not all(math.isfinite(v) for v in values) or (nonnegative and min(values) < 0):
        kind = "non-negative finite" if nonnegative else "finite"
        msg = f"{name}={value!r} must be {kind}"
        raise ValueError(msg)
    return values


def format_param(value: Any) -> str:
    """``1.0`` -> ``"1.0"``; ``(0.6, 0.3)`` -> ``"(0.6, 0.3)"``."""
    if isinstance(value, tuple | list | np.ndarray):
        values = [float(v) for v in np.ravel(value)]
        return repr(values[0]) if len(values) == 1 else repr(tuple(values))
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        return repr(float(value))
    return repr(value)


class Integrator:
    """Owns the buffers of one solve and advances them; subclasses implement :meth:`step`."""

    fields: tuple[str, ...] = ("u",)

    def __init__(self, backend: Any, bc: BoundarySpec, ghosts: tuple[int, int]) -> None:
        self.backend = backend
        self.ghosts = ghosts
        self.filler = GhostFiller(bc, ghosts)

    def padded(self, field: np.ndarray) -> Any:
        """Backend buffer ``(S, Y + 2 gy, X + 2 gx)`` holding ``field`` ``(S, Y, X)`` inside."""
        gy, gx = self.ghosts
        s, ny, nx = field.shape
        host = np.zeros((s, ny + 2 * gy, nx + 2 * gx))
        host[:, gy:gy + ny, gx:gx + nx] = field
        return self.backend.asarray(host)

    def interior(self, buf: Any) -> np.ndarray:
        """The interior ``(S, Y, X)`` of ``buf`` as a numpy array (a view on CPU, no copy)."""
        gy, gx = self.ghosts
        view = buf[:, gy:buf.shape[1] - gy, gx:buf.shape[2] - gx]
        return self.backend.to_numpy(view)

    def current(self) -> dict[str, Any]:
        """Backend buffers of the current state by field name."""
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Host copies ``(S, Y, X)`` of the current fields."""
        return {name: np.array(self.interior(buf)) for name, buf in self.current().items()}

    def save(self, frames: dict[str, np.ndarray], index: int) -> None:
        """Copy the current fields into ``frames[name][index]`` (``(S, Y, X)`` slots)."""
        for name, buf in self.current().items():
            frames[name][index] = self.interior(buf)

    def nonfinite(self) -> bool:
        """True if any current field holds NaN or inf."""
        return any(self.backend.nonfinite(buf) for buf in self.current().values())


class PingPongIntegrator(Integrator):
    """One field ``u`` advanced from ``src`` into ``dst`` by :meth:`advance`, then swapped.

    Both buffers are allocated once; a step fills the ghost cells of ``src``, writes the new
    state into ``dst`` and swaps the two (no per-step allocation).
    """

    def __init__(self, backend: Any, bc: BoundarySpec, ghosts: tuple[int, int],
                 u0: np.ndarray) -> None:
        super().__init__(backend, bc, ghosts)
        self.src = self.padded(u0)  # (S, Y+2gy, X+2gx)
        self.dst = backend.zeros(tuple(self.src.shape))

    def current(self) -> dict[str, Any]:
        return {"u": self.src}

    def advance(self, src: Any, dst: Any) -> None:
        """Write the state one step after ``src`` (ghosts filled) into ``dst``'s interior."""
        raise NotImplementedError

    def step(self) -> None:
        self.filler.fill(self.src)
        self.advance(self.src, self.dst)
        self.src, self.dst = self.dst, self.src


class LinearIntegrator(PingPongIntegrator):
    """``u <- S u`` with a fixed :class:`Stencil`."""

    def __init__(self, stencil: Stencil, backend: Any, bc: BoundarySpec, u0: np.ndarray) -> None:
        radius = stencil.radius
        ghosts = (radius[0], radius[1]) if stencil.ndim == 2 else (0, radius[0])
        self.prepared = backend.prepare(stencil)
        super().__init__(backend, bc, ghosts, u0)

    def advance(self, src: Any, dst: Any) -> None:
        self.backend.stencil_step(src, dst, self.prepared, self.ghosts)


class Equation:
    """Base class of the equation modules.

    Parameters
    ----------
    spacing
        Grid spacing per spatial axis, ``(dy, dx)`` or ``(dx,)``, in length units.
    scheme
        Name of the scheme (``None`` = the first of :attr:`schemes`).
    params
        Equation parameters; names must be keys of :attr:`defaults`.
    """

    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]
    defaults: ClassVar[dict[str, Any]]
    fields: ClassVar[tuple[str, ...]] = ("u",)
    field_params: ClassVar[tuple[str, ...]] = ()  # params that are arrays on the grid
    required_field_params: ClassVar[tuple[str, ...]] = ()
    ndims: ClassVar[tuple[int, ...]] = (1, 2)
    linear: ClassVar[bool] = False

    def __init__(self, spacing: tuple[float, ...], scheme: str | None = None,
                 **params: Any) -> None:
        self.spacing = tuple(float(h) for h in spacing)
        self.ndim = len(self.spacing)
        if self.ndim not in self.ndims:
            msg = (
                f"{self.name} is solved in {' or '.join(f'{n}-D' for n in self.ndims)}, "
                f"got a {self.ndim}-D grid"
            )
            raise ValueError(msg)
        scheme = self.schemes[0] if scheme is None else scheme
        if scheme not in self.schemes:
            msg = f"unknown scheme {scheme!r} for {self.name}; valid: {', '.join(self.schemes)}"
            raise ValueError(msg)
        self.scheme = scheme
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "(none)"
            msg = (
                f"unknown parameter(s) {', '.join(map(repr, unknown))} for {self.name}; "
                f"valid: {valid}, scheme"
            )
            raise TypeError(msg)
        self.params = {**self.defaults, **params}
        self.setup()

    def setup(self) -> None:
        """Validate and normalise :attr:`params` (subclasses)."""

    def scalar_params(self) -> dict[str, Any]:
        """Parameters that describe the run (no grid arrays), for attrs and messages."""
        return {k: v for k, v in self.params.items() if k not in self.field_params}

    def describe(self) -> str:
        """``"diffusivity=1.0"``: parameters as they appear in messages."""
        return ", ".join(f"{k}={format_param(v)}" for k, v in self.scalar_params().items())

    def stability(self, state: dict[str, np.ndarray]) -> Stability:
        """Time-step limit for the initial ``state`` (fields ``(S, Y, X)``)."""
        raise NotImplementedError

    def axis_numbers(self, dt: float) -> dict[str, list[float]]:
        """Per-axis dimensionless numbers for attrs, e.g. ``{"courant_numbers": [c_y, c_x]}``."""
        return {}

    def stencil(self, dt: float) -> Stencil:
        """Update stencil of a linear scheme for step ``dt``."""
        msg = (
            f"{self.name} is nonlinear: its update has no fixed stencil; "
            "update_stencil is defined for heat, advection and wave"
        )
        raise ValueError(msg)

    def stencil_attrs(self) -> dict[str, Any]:
        """Extra attrs of :func:`update_stencil`'s result (e.g. the previous-step weight)."""
        return {}

    def integrator(self, dt: float, backend: Any, bc: BoundarySpec,
                   state: dict[str, np.ndarray]) -> Integrator:
        """Integrator that advances ``state`` (fields ``(S, Y, X)`` and field params) by ``dt``."""
        return LinearIntegrator(self.stencil(dt), backend, bc, state["u"])
