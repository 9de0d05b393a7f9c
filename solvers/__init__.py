"""Finite-difference reference solvers: the physics ground truth of gridformer.

Public API::

    solve(equation, u0, *, steps, dt=None, bc="periodic", save_every=1, spacing=None,
          device="cpu", progress=None, **params) -> xr.Dataset
    update_stencil(equation, *, dt, spacing, **params) -> xr.DataArray  # ("dy", "dx") / ("dx",)
    Stencil                 offsets (K, ndim) -> weights (K,), the coefficients of a linear update
    BoundaryCondition       periodic / dirichlet(value) / neumann, per call or per dim
    EQUATIONS               {"heat", "advection", "burgers", "wave", "fisher_kpp", "allen_cahn",
                             "gray_scott"} -> equation class (PDE and scheme in its docstring)
    Parameter               a physical parameter (name, symbol, units, range); every equation's
                            ``parameters`` are required and checked (``example_params()``)
    BlowUpError             raised (with the step) when a solve produces NaN/inf
    UnstableStepWarning     warned by update_stencil for a dt beyond the stability limit

Every solve names its stability number for what it is (attrs ``cfl_name``, ``cfl_formula``,
``cfl``, ``cfl_limit``, ``dt_max``: e.g. the diffusion number of heat, the Courant number of
advection) and reports the classical per-axis numbers (``diffusion_numbers``,
``courant_numbers``, ``reaction_number``).

Solvers run in float64, vectorised over the ``sample`` dim, with compiled numba kernels on CPU
and torch on CUDA (``device="cuda"``). On CPU one compiled call advances many steps (ghost
cells, update, saving every ``save_every``-th state and the NaN/inf checks fused; samples, or
the rows of one large grid, in parallel). torch is imported only for a torch device, and
nothing here imports gridformer's model code.

Example
-------
>>> import numpy as np, xarray as xr
>>> from gridformer import solvers
>>> x = np.arange(64) * (2 * np.pi / 64)
>>> u0 = xr.DataArray(np.sin(x), dims="x", coords={"x": x})
>>> ds = solvers.solve("heat", u0, steps=100, diffusivity=0.1)
>>> ds.u.dims
('time', 'x')
"""

from gridformer.solvers.advection import Advection
from gridformer.solvers.api import EQUATIONS, solve, update_stencil
from gridformer.solvers.boundary import BC_KINDS, BoundaryCondition
from gridformer.solvers.burgers import Burgers
from gridformer.solvers.heat import Heat
from gridformer.solvers.parameters import Parameter
from gridformer.solvers.reaction_diffusion import AllenCahn, FisherKPP, GrayScott
from gridformer.solvers.stability import BlowUpError, UnstableStepWarning
from gridformer.solvers.stencil import Stencil
from gridformer.solvers.wave import Wave

__all__ = [
    "BC_KINDS",
    "EQUATIONS",
    "Advection",
    "AllenCahn",
    "BlowUpError",
    "BoundaryCondition",
    "Burgers",
    "FisherKPP",
    "GrayScott",
    "Heat",
    "Parameter",
    "Stencil",
    "UnstableStepWarning",
    "Wave",
    "solve",
    "update_stencil",
]
