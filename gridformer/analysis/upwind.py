"""Upwinding of a state-dependent stencil: does each cell look where the information comes from?

For Burgers' equation ``u_t + u · grad u = nu lap u`` the velocity is the state itself. A stable
explicit update takes more of its value from upstream (the side the flow comes from, against
``sign(u)``) than from downstream, so the stencil *changes with the local state*. Given every
query's attention stencil and the local velocity, we count the cells whose stencil puts more
weight upstream than downstream.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["upwind_consistency", "upwind_lean"]


def upwind_lean(
    stencils: xr.DataArray,
    velocity: xr.DataArray,
    *,
    component_dim: str = "component",
) -> xr.DataArray:
    """Upstream minus downstream weight of every query's stencil.

    Parameters
    ----------
    stencils
        Per-query stencils, dims ``(..., *query_dims, *offset_dims)`` with offset dims named
        ``"d" + query dim`` (as from ``attention_stencil(..., per_query=True)``).
    velocity
        Local velocity at each query: dims a subset of the query dims (a scalar field is the
        velocity along every spatial axis, as in scalar Burgers ``u_t + u (u_x + u_y) = ...``),
        optionally with ``component_dim`` listing one value per offset dim.

    Returns
    -------
    xr.DataArray
        ``sum_{o·v<0} w(o) - sum_{o·v>0} w(o)`` per query: positive = leans upstream.
    """
    offset = [d for d in stencils.dims if d.startswith("d") and d[1:] in stencils.dims]
    if not offset:
        msg = (
            f"stencils need offset dims named 'd' + a query dim, e.g. ('y', 'x', "
            f"'dy', 'dx'); got {stencils.dims}"
        )
        raise ValueError(msg)
    projection = 0
    for i, d in enumerate(offset):
        v = velocity.isel({component_dim: i}, drop=True) if component_dim in velocity.dims \
            else velocity
        projection = projection + stencils[d] * v  # o · v, broadcast over queries
    sign = np.sign(projection)
    return -(stencils * sign).sum(offset)


def upwind_consistency(
    stencils: xr.DataArray,
    velocity: xr.DataArray,
    *,
    min_speed: float = 0.0,
    component_dim: str = "component",
) -> float:
    """Fraction of cells whose stencil leans upstream (more weight on the upwind side).

    Parameters
    ----------
    stencils, velocity
        As for :func:`upwind_lean`.
    min_speed
        Cells with ``|v| <= min_speed`` (no defined upwind side) are left out.

    Returns
    -------
    float
        In ``[0, 1]``; 1 means every counted cell leans upstream, 0.5 is chance.
    """
    lean = upwind_lean(stencils, velocity, component_dim=component_dim)
    speed = abs(velocity).max(component_dim) if component_dim in velocity.dims else abs(velocity)
    counted = (speed > min_speed).broadcast_like(lean)
    n = int(counted.sum())
    if n == 0:
        msg = f"no cell has speed above min_speed={min_speed}; lower min_speed"
        raise ValueError(msg)
    return float(((lean > 0) & counted).sum()) / n
