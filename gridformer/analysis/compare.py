"""Number-by-number comparison of a learned stencil with a reference (finite-difference) one.

Besides pointwise errors, the *moments* of a stencil are what decide whether the scheme it
defines is consistent and of which order: for ``u_new = sum_o w(o) u(x + o h)``, Taylor
expansion gives ``u_new = M0 u + h M1 · grad u + h^2/2 M2 : grad grad u + ...`` with
``M0 = sum w`` (must be 1: constants are preserved), ``M1 = sum w o`` (the advection per step,
``-c dt / h``) and ``M2 = sum w o o^T`` (the diffusion per step, ``2 D dt / h^2`` on the
diagonal). Matching moments means matching the PDE the scheme approximates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["StencilComparison", "compare_stencils", "stencil_moments", "stencil_to_dict"]


def _weights(stencil: xr.DataArray | xr.Dataset) -> xr.DataArray:
    if isinstance(stencil, xr.Dataset):
        if "weight" not in stencil:
            msg = f"stencil Dataset needs a 'weight' variable; has {list(stencil)}"
            raise ValueError(msg)
        stencil = stencil["weight"]
    if not isinstance(stencil, xr.DataArray):
        msg = (
            f"stencil must be an xr.DataArray over offset dims such as ('dy', 'dx'); "
            f"got {type(stencil).__name__}"
        )
        raise TypeError(msg)
    return stencil.reset_coords(drop=True)


def stencil_moments(stencil: xr.DataArray) -> tuple[float, np.ndarray, np.ndarray]:
    """Zeroth, first and second moments of a stencil.

    Returns
    -------
    m0 : float
        ``sum w``.
    m1 : np.ndarray, shape (ndim,)
        ``sum w o_a`` per offset dim, in grid cells.
    m2 : np.ndarray, shape (ndim, ndim)
        ``sum w o_a o_b``, in grid cells squared.
    """
    weights = _weights(stencil)
    grids = np.meshgrid(*(weights[d].values.astype(np.float64) for d in weights.dims),
                        indexing="ij")
    w = weights.values.astype(np.float64)
    m1 = np.array([np.sum(w * g) for g in grids])
    m2 = np.array([[np.sum(w * ga * gb) for gb in grids] for ga in grids])
    return float(w.sum()), m1, m2


@dataclass(frozen=True)
class StencilComparison:
    """Errors of a learned stencil against a reference, all dimensionless weights.

    Attributes
    ----------
    max_abs_error, l1_error
        Max and sum of ``|learned - reference|`` over the union of both offset sets.
    mass_in_support
        Sum of learned weights on offsets where the reference is non-zero.
    total_mass
        Sum of all learned weights (1 for a softmax row).
    moment0_error
        ``sum w_learned - sum w_reference`` (consistency: constants preserved).
    moment1_error
        Per offset dim, error of ``sum w o`` (grid cells; advection per step).
    moment2_error
        ``(ndim, ndim)`` error of ``sum w o o^T`` (cells^2; diffusion per step).
    support_size
        Number of offsets in the reference's support.
    """

    max_abs_error: float
    l1_error: float
    mass_in_support: float
    total_mass: float
    moment0_error: float
    moment1_error: tuple[float, ...]
    moment2_error: tuple[tuple[float, ...], ...]
    support_size: int

    @property
    def max_moment_error(self) -> float:
        """Largest absolute moment error of orders 0, 1 and 2."""
        values = [abs(self.moment0_error), *map(abs, self.moment1_error),
                  *(abs(v) for row in self.moment2_error for v in row)]
        return float(max(values))

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python dict (JSON-ready), including ``max_moment_error``."""
        return {**asdict(self), "max_moment_error": self.max_moment_error}


def compare_stencils(
    learned: xr.DataArray | xr.Dataset,
    reference: xr.DataArray | xr.Dataset,
    *,
    support_atol: float = 0.0,
) -> StencilComparison:
    """Compare two stencils over the same offset dims (missing offsets count as zero weight).

    Parameters
    ----------
    learned, reference
        Stencils over offset dims such as ``("dy", "dx")`` with integer coords in grid cells
        (e.g. from :func:`attention_stencil` and ``solvers.update_stencil``).
    support_atol
        Offsets with ``|reference| > support_atol`` form the reference's support.
    """
    a, b = _weights(learned), _weights(reference)
    if set(a.dims) != set(b.dims):
        msg = (
            f"stencils have different offset dims: learned {a.dims}, reference "
            f"{b.dims}; both must be over the same dims, e.g. ('dy', 'dx')"
        )
        raise ValueError(msg)
    a, b = xr.align(a, b.transpose(*a.dims), join="outer", fill_value=0.0)
    diff = np.abs(a.values - b.values)
    support = np.abs(b.values) > support_atol
    a0, a1, a2 = stencil_moments(a)
    b0, b1, b2 = stencil_moments(b)
    return StencilComparison(
        max_abs_error=float(diff.max()),
        l1_error=float(diff.sum()),
        mass_in_support=float(a.values[support].sum()),
        total_mass=float(a.values.sum()),
        moment0_error=a0 - b0,
        moment1_error=tuple(float(v) for v in a1 - b1),
        moment2_error=tuple(tuple(float(v) for v in row) for row in a2 - b2),
        support_size=int(support.sum()),
    )


def stencil_to_dict(
    stencil: xr.DataArray, *, radius: int | None = None, atol: float | None = None,
) -> dict[str, list]:
    """``{"offsets": [[dy, dx], ...], "weights": [...]}`` for JSON.

    ``radius`` keeps offsets with ``|o| <= radius`` per dim; ``atol`` drops weights with
    ``|w| <= atol``. Offsets are listed in row-major order of the offset dims.
    """
    weights = _weights(stencil)
    grids = np.meshgrid(*(weights[d].values for d in weights.dims), indexing="ij")
    offsets = np.stack([g.ravel() for g in grids], axis=-1)  # (K, ndim)
    values = weights.values.ravel()
    keep = np.ones(len(values), dtype=bool)
    if radius is not None:
        keep &= np.all(np.abs(offsets) <= radius, axis=1)
    if atol is not None:
        keep &= np.abs(values) > atol
    return {"offsets": offsets[keep].astype(int).tolist(),
            "weights": [float(v) for v in values[keep]]}
