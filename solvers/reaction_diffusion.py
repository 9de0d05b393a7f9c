"""Reaction-diffusion: Fisher-KPP and Allen-Cahn (1-D/2-D), Gray-Scott (2-D, fields u and v).

PDEs::

    fisher_kpp:  u_t = D lap u + r u (1 - u)
    allen_cahn:  u_t = D lap u + r (u - u^3)
    gray_scott:  u_t = D_u lap u - u v^2 + F (1 - u)
                 v_t = D_v lap v + u v^2 - (F + k) v

Scheme: forward Euler; the diffusion is the 3-/5-point Laplacian stencil (as in
:mod:`.heat`), the reaction is evaluated pointwise at the old time level::

    u^{n+1} = (I + dt D L_h) u^n + dt R(u^n, v^n)

Stability: the CFL number ``dt * (2 sum_a D_a / h_a^2 + L)`` must not exceed 1, where ``L`` is
the reaction rate scale (``r`` for Fisher-KPP, ``2 r`` for Allen-Cahn, ``F + k`` for
Gray-Scott). For Fisher-KPP and Allen-Cahn this is exactly the condition under which the scheme
keeps ``u`` in ``[0, 1]`` and ``[-1, 1]`` (discrete maximum principle). Fisher-KPP fronts
travel at ``2 sqrt(D r)``.

Parameters: Fisher-KPP / Allen-Cahn ``diffusivity`` (number or ``(D_y, D_x)``) and ``rate``;
Gray-Scott ``diffusivity_u``, ``diffusivity_v``, ``feed`` F, ``kill`` k and ``v0`` (the
initial ``v``: an array/DataArray like ``u0``, or pass ``u0`` as a Dataset with ``u`` and ``v``).
Gray-Scott defaults are in grid units (``dx = 1``, ``dt ~ 1``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gridformer.solvers.boundary import BoundarySpec
from gridformer.solvers.equation import Equation, Integrator, Stability, per_axis
from gridformer.solvers.stencil import Stencil, laplacian

__all__ = ["AllenCahn", "FisherKPP", "GrayScott", "ReactionDiffusionIntegrator"]


class _ReactionDiffusion(Equation):
    schemes = ("forward_euler",)
    reaction_scale: ClassVar[float] = 1.0  # L / rate

    def setup(self) -> None:
        self.diffusivities = {"u": per_axis(self.params["diffusivity"], self.ndim,
                                            "diffusivity", nonnegative=True)}
        self.p0, self.p1 = float(self.params["rate"]), 0.0
        self.reaction_rate = self.reaction_scale * abs(self.p0)

    def stability(self, state: dict[str, np.ndarray] | None = None) -> Stability:
        diffusion = max(sum(2.0 * d / h**2 for d, h in zip(ds, self.spacing, strict=True))
                        for ds in self.diffusivities.values())
        return Stability("CFL number", diffusion + self.reaction_rate, 1.0)

    def integrator(self, dt: float, backend: Any, bc: BoundarySpec,
                   state: dict[str, np.ndarray]) -> Integrator:
        stencils = {name: Stencil.identity(self.ndim) + laplacian(self.spacing, ds).scaled(dt)
                    for name, ds in self.diffusivities.items()}
        fields = {name: state["v0" if name == "v" else name] for name in self.fields}
        return ReactionDiffusionIntegrator(self.name, stencils, (self.p0, self.p1), dt,
                                           backend, bc, fields)


class FisherKPP(_ReactionDiffusion):
    """``u_t = D lap u + r u (1 - u)``."""

    name = "fisher_kpp"
    defaults: ClassVar[dict[str, Any]] = {"diffusivity": 1.0, "rate": 1.0}


class AllenCahn(_ReactionDiffusion):
    """``u_t = D lap u + r (u - u^3)``."""

    name = "allen_cahn"
    defaults: ClassVar[dict[str, Any]] = {"diffusivity": 1.0, "rate": 1.0}
    reaction_scale = 2.0


class GrayScott(_ReactionDiffusion):
    """Gray-Scott two-species model in 2-D."""

    name = "gray_scott"
    defaults: ClassVar[dict[str, Any]] = {"diffusivity_u": 0.16, "diffusivity_v": 0.08,
                                          "feed": 0.035, "kill": 0.065, "v0": None}
    fields = ("u", "v")
    field_params = ("v0",)
    required_field_params = ("v0",)
    ndims = (2,)

    def setup(self) -> None:
        self.diffusivities = {
            "u": per_axis(self.params["diffusivity_u"], 2, "diffusivity_u", nonnegative=True),
            "v": per_axis(self.params["diffusivity_v"], 2, "diffusivity_v", nonnegative=True),
        }
        self.p0, self.p1 = float(self.params["feed"]), float(self.params["kill"])
        self.reaction_rate = abs(self.p0) + abs(self.p1)


class ReactionDiffusionIntegrator(Integrator):
    """Per field: ghost fill, diffusion stencil into the spare buffer, add the reaction, swap."""

    def __init__(self, kind: str, stencils: dict[str, Stencil], coefficients: tuple[float, float],
                 dt: float, backend: Any, bc: BoundarySpec, fields: dict[str, np.ndarray]) -> None:
        ndim = next(iter(stencils.values())).ndim
        super().__init__(backend, bc, (1, 1) if ndim == 2 else (0, 1))
        self.fields = tuple(fields)
        self.kind, self.coefficients, self.dt = kind, coefficients, dt
        self.prepared = {name: backend.prepare(s) for name, s in stencils.items()}
        self.src = {name: self.padded(f) for name, f in fields.items()}  # (S, Y+2gy, X+2gx)
        self.dst = {name: backend.zeros(tuple(b.shape)) for name, b in self.src.items()}

    def current(self) -> dict[str, Any]:
        return dict(self.src)

    def step(self) -> None:
        for name in self.fields:
            self.filler.fill(self.src[name])
            self.backend.stencil_step(self.src[name], self.dst[name], self.prepared[name],
                                      self.ghosts)
        p0, p1 = self.coefficients
        self.backend.react_step(self.src["u"], self.src.get("v"), self.dst["u"],
                                self.dst.get("v"), self.ghosts, self.dt, self.kind, p0, p1)
        self.src, self.dst = self.dst, self.src
