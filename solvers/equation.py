"""What every equation module provides, and the ping-pong integrator of linear stencil schemes.

An :class:`Equation` knows its parameters (checked :class:`~.parameters.Parameter` entries, none
defaulted), its time-step limit (:meth:`Equation.stability`), its
update stencil when the scheme is linear, and builds an :class:`Integrator` that owns the
preallocated buffers and advances them one step at a time on a backend.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gridformer.solvers import fused
from gridformer.solvers.boundary import BoundarySpec, GhostFiller
from gridformer.solvers.parameters import Parameter, missing_message
from gridformer.solvers.stability import Stability
from gridformer.solvers.stencil import Stencil

__all__ = [
    "Equation",
    "Integrator",
    "LinearIntegrator",
    "PingPongIntegrator",
]


def format_param(value: Any) -> str:
    """``1.0`` -> ``"1.0"``; ``(0.6, 0.3)`` -> ``"(0.6, 0.3)"``; ``(1.0, 1.0)`` -> ``"1.0"``."""
    if isinstance(value, tuple | list | np.ndarray):
        values = [float(v) for v in np.ravel(value)]
        return repr(values[0]) if len(set(values)) == 1 else repr(tuple(values))
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        return repr(float(value))
    return repr(value)


class Integrator:
    """Owns the buffers of one solve and advances them.

    Subclasses implement :meth:`step` (one Python-level step on any backend) and, for the
    fused numba path, :meth:`levels`, :meth:`set_levels` and :meth:`fused_spec`; :meth:`run`
    picks the fused path when the backend has it.
    """

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

    def interior(self, buf: Any) -> Any:
        """The interior ``(S, Y, X)`` of the backend buffer ``buf`` (a view, no copy)."""
        gy, gx = self.ghosts
        return buf[:, gy:buf.shape[1] - gy, gx:buf.shape[2] - gx]

    def current(self) -> dict[str, Any]:
        """Backend buffers of the current state by field name."""
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def save(self, frames: dict[str, np.ndarray], index: int) -> None:
        """Copy the current fields into ``frames[name][index]`` (``(S, Y, X)`` slots)."""
        for name, buf in self.current().items():
            self.backend.copy_to_host(self.interior(buf), frames[name][index])

    def nonfinite(self) -> bool:
        """True if any current field holds NaN or inf."""
        return any(self.backend.nonfinite(buf) for buf in self.current().values())

    def levels(self) -> dict[str, list[Any]]:
        """Each field's buffers in role order: ``[cur, nxt]`` or ``[prev, cur, nxt]``."""
        raise NotImplementedError

    def set_levels(self, levels: dict[str, list[Any]]) -> None:
        """Take back the buffers of :meth:`levels`, rotated to their roles after a run."""
        raise NotImplementedError

    def fused_spec(self) -> fused.FusedSpec:
        """What the fused kernels compute for the next steps (see :mod:`.fused`)."""
        raise NotImplementedError

    def run(self, n_steps: int, step0: int, frames: dict[str, np.ndarray], save_every: int,
            check_every: int) -> int | None:
        """Advance ``n_steps`` steps numbered ``step0 + 1, ..., step0 + n_steps``.

        After every step ``n`` with ``n % save_every == 0`` the fields are saved into
        ``frames[name][n // save_every]`` (``(T, S, Y, X)`` arrays); at those steps and every
        ``check_every`` steps they are checked for NaN/inf. Returns the first step at which a
        check found NaN/inf (the run stops there), or None.
        """
        if getattr(self.backend, "fused", False) and n_steps > 0:
            levels = self.levels()
            self.filler.check(tuple(levels["u"][0].shape))
            spec = self.fused_spec()._replace(save_every=int(save_every),
                                              check_every=int(check_every))
            hit = self.backend.run(levels, frames, spec, n_steps, step0)
            self.set_levels(levels)
            return hit
        for n in range(step0 + 1, step0 + n_steps + 1):
            self.step()
            saved = n % save_every == 0
            if saved:
                self.save(frames, n // save_every)
            if (saved or n % check_every == 0) and self.nonfinite():
                return n
        return None


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

    def levels(self) -> dict[str, list[Any]]:
        return {"u": [self.src, self.dst]}

    def set_levels(self, levels: dict[str, list[Any]]) -> None:
        self.src, self.dst = levels["u"]

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
        self.stencil = stencil
        self.prepared = backend.prepare(stencil)
        super().__init__(backend, bc, fused.ghosts_for(stencil), u0)

    def advance(self, src: Any, dst: Any) -> None:
        self.backend.stencil_step(src, dst, self.prepared, self.ghosts)

    def fused_spec(self) -> fused.FusedSpec:
        return fused.make_spec(kind=fused.LINEAR, ghosts=self.ghosts, bc=self.filler.spec,
                               u=fused.stencil_layout(self.stencil))


class Equation:
    """Base class of the equation modules.

    Parameters
    ----------
    spacing
        Grid spacing per spatial axis, ``(dy, dx)`` or ``(dx,)``, in length units.
    scheme
        Name of the scheme (``None`` = the first of :attr:`schemes`).
    params
        Every physical parameter named in :attr:`parameters` (no defaults), plus any of the
        grid-shaped :attr:`field_params`.

    Raises
    ------
    TypeError
        A physical parameter is missing, unknown, or not a number.
    ValueError
        A parameter value is not finite or out of range; an unknown scheme; a wrong grid rank.
    """

    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]
    parameters: ClassVar[tuple[Parameter, ...]]
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
        names = [p.name for p in self.parameters] + list(self.field_params)
        unknown = sorted(set(params) - set(names))
        if unknown:
            msg = (
                f"unknown parameter(s) {', '.join(map(repr, unknown))} for {self.name}; "
                f"valid: {', '.join(names) or '(none)'}, scheme"
            )
            raise TypeError(msg)
        missing = [p for p in self.parameters if p.name not in params]
        if missing:
            raise TypeError(missing_message(self.name, missing, self.ndim))
        self.values = {p.name: p.check(params[p.name], self.name, self.ndim)
                       for p in self.parameters}
        self.params = {**self.values, **{k: params.get(k) for k in self.field_params}}
        self.setup()

    @classmethod
    def example_params(cls) -> dict[str, float]:
        """A typical value of every physical parameter (what the error messages suggest)."""
        return {p.name: p.example for p in cls.parameters}

    def setup(self) -> None:
        """Derived quantities from the checked :attr:`values` (subclasses)."""

    def scalar_params(self) -> dict[str, Any]:
        """The checked physical parameters (no grid arrays), for attrs and messages."""
        return dict(self.values)

    def describe(self) -> str:
        """``"diffusivity=1.0"``: parameters as they appear in messages."""
        return ", ".join(f"{k}={format_param(v)}" for k, v in self.scalar_params().items())

    def stability(self, state: dict[str, np.ndarray] | None) -> Stability:
        """Time-step limit for the initial ``state`` (fields ``(S, Y, X)``)."""
        raise NotImplementedError

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
