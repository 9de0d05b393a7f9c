"""Reaction-diffusion: Fisher-KPP and Allen-Cahn (1-D/2-D), Gray-Scott (2-D, fields u and v).

PDEs::

    fisher_kpp:  u_t = D lap u + r u (1 - u)
    allen_cahn:  u_t = D lap u + r (u - u^3)
    gray_scott:  u_t = D_u lap u - u v^2 + F (1 - u)
                 v_t = D_v lap v + u v^2 - (F + k) v

Scheme: forward Euler; the diffusion is the 3-/5-point Laplacian stencil (as in
:mod:`.heat`), the reaction is evaluated pointwise at the old time level::

    u^{n+1} = (I + dt D L_h) u^n + dt R(u^n, v^n)

Stability: the reaction-diffusion number ``dt * (2 sum_a D_a / h_a^2 + L)`` must not exceed 1,
where ``L`` is the reaction rate scale (``r`` for Fisher-KPP, ``2 r`` for Allen-Cahn: the largest
``|dR/du|`` on ``[0, 1]`` / ``[-1, 1]``; ``F + k`` for Gray-Scott, with the larger of the two
species' diffusion terms). For Fisher-KPP and Allen-Cahn this is exactly the condition under
which the scheme keeps ``u`` in ``[0, 1]`` and ``[-1, 1]`` (discrete maximum principle).
The per-axis diffusion numbers ``D_a dt / h_a^2`` (``diffusion_numbers``; ``_u`` and ``_v`` for
Gray-Scott) and the reaction number ``L dt`` are reported beside it. Fisher-KPP fronts travel at
``2 sqrt(D r)``.

Parameters (all required, all >= 0): Fisher-KPP / Allen-Cahn ``diffusivity`` (number or
``(D_y, D_x)``, length^2 / time) and ``rate`` r (1 / time); Gray-Scott ``diffusivity_u``,
``diffusivity_v``, ``feed`` F, ``kill`` k and ``v0`` (the initial ``v``: an array/DataArray like
``u0``, or pass ``u0`` as a Dataset with ``u`` and ``v``). The classic Gray-Scott values
``D_u = 0.16, D_v = 0.08, F = 0.035, k = 0.065`` are in grid units (``dx = 1``, ``dt ~ 1``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gridformer.solvers import fused, kernels
from gridformer.solvers.boundary import BoundarySpec
from gridformer.solvers.equation import Equation, Integrator
from gridformer.solvers.parameters import Parameter
from gridformer.solvers.stability import Stability, axis_sum
from gridformer.solvers.stencil import Stencil, laplacian

__all__ = ["AllenCahn", "FisherKPP", "GrayScott", "ReactionDiffusionIntegrator"]

_DIFFUSIVITY = Parameter("diffusivity", "D", "length^2/time", 1.0, per_axis=True)
_RATE = Parameter("rate", "r", "1/time", 1.0)


class _ReactionDiffusion(Equation):
    schemes = ("forward_euler",)
    parameters: ClassVar[tuple[Parameter, ...]] = (_DIFFUSIVITY, _RATE)
    reaction_scale: ClassVar[float] = 1.0  # L / rate
    reaction_formula: ClassVar[str] = "r"

    def setup(self) -> None:
        self.diffusivities = {"u": self.values["diffusivity"]}
        self.p0, self.p1 = self.values["rate"], 0.0
        self.reaction_rate = self.reaction_scale * self.p0

    def _diffusion_formula(self) -> str:
        if self.ndim == 1:
            return "2 D/dx^2"
        return f"2 ({axis_sum('D{a}/d{h}^2', 2)})"

    def stability(self, state: dict[str, np.ndarray] | None = None) -> Stability:
        per_field = {name: tuple(d / h**2 for d, h in zip(ds, self.spacing, strict=True))
                     for name, ds in self.diffusivities.items()}
        diffusion = max(2.0 * sum(rates) for rates in per_field.values())
        suffix = len(per_field) > 1
        classical: dict[str, Any] = {
            f"diffusion_numbers{'_' + name if suffix else ''}": rates
            for name, rates in per_field.items()}
        classical["reaction_number"] = self.reaction_rate
        formula = f"({self._diffusion_formula()} + {self.reaction_formula}) dt"
        return Stability("reaction-diffusion number", formula, diffusion + self.reaction_rate,
                         1.0, classical)

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


class AllenCahn(_ReactionDiffusion):
    """``u_t = D lap u + r (u - u^3)``."""

    name = "allen_cahn"
    reaction_scale = 2.0
    reaction_formula = "2 r"


class GrayScott(_ReactionDiffusion):
    """Gray-Scott two-species model in 2-D."""

    name = "gray_scott"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("diffusivity_u", "D_u", "length^2/time", 0.16, per_axis=True),
        Parameter("diffusivity_v", "D_v", "length^2/time", 0.08, per_axis=True),
        Parameter("feed", "F", "1/time", 0.035),
        Parameter("kill", "k", "1/time", 0.065),
    )
    fields = ("u", "v")
    field_params = ("v0",)
    required_field_params = ("v0",)
    ndims = (2,)
    reaction_formula = "F + k"

    def setup(self) -> None:
        self.diffusivities = {"u": self.values["diffusivity_u"], "v": self.values["diffusivity_v"]}
        self.p0, self.p1 = self.values["feed"], self.values["kill"]
        self.reaction_rate = self.p0 + self.p1

    def _diffusion_formula(self) -> str:
        terms = ", ".join(axis_sum(f"D_{s},{{h}}/d{{h}}^2", 2) for s in ("u", "v"))
        return f"2 max({terms})"


class ReactionDiffusionIntegrator(Integrator):
    """Per field: ghost fill, diffusion stencil into the spare buffer, add the reaction, swap."""

    def __init__(self, kind: str, stencils: dict[str, Stencil], coefficients: tuple[float, float],
                 dt: float, backend: Any, bc: BoundarySpec, fields: dict[str, np.ndarray]) -> None:
        ndim = next(iter(stencils.values())).ndim
        super().__init__(backend, bc, (1, 1) if ndim == 2 else (0, 1))
        self.fields = tuple(fields)
        self.kind, self.coefficients, self.dt = kind, coefficients, dt
        self.stencils = stencils
        self.prepared = {name: backend.prepare(s) for name, s in stencils.items()}
        self.src = {name: self.padded(f) for name, f in fields.items()}  # (S, Y+2gy, X+2gx)
        self.dst = {name: backend.zeros(tuple(b.shape)) for name, b in self.src.items()}

    def current(self) -> dict[str, Any]:
        return dict(self.src)

    def levels(self) -> dict[str, list[Any]]:
        return {name: [self.src[name], self.dst[name]] for name in self.fields}

    def set_levels(self, levels: dict[str, list[Any]]) -> None:
        for name, (src, dst) in levels.items():
            self.src[name], self.dst[name] = src, dst

    def fused_spec(self) -> fused.FusedSpec:
        layouts = {name: fused.stencil_layout(s) for name, s in self.stencils.items()}
        p0, p1 = self.coefficients
        return fused.make_spec(kind=fused.REACTION, ghosts=self.ghosts, bc=self.filler.spec,
                               u=layouts["u"], v=layouts.get("v"), dt=self.dt,
                               code=kernels.REACTION_CODES[self.kind], p0=p0, p1=p1)

    def step(self) -> None:
        for name in self.fields:
            self.filler.fill(self.src[name])
            self.backend.stencil_step(self.src[name], self.dst[name], self.prepared[name],
                                      self.ghosts)
        p0, p1 = self.coefficients
        self.backend.react_step(self.src["u"], self.src.get("v"), self.dst["u"],
                                self.dst.get("v"), self.ghosts, self.dt, self.kind, p0, p1)
        self.src, self.dst = self.dst, self.src
