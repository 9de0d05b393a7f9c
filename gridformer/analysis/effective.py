"""Effective (Jacobian) stencils: ``d u_new[i] / d u[i + offset]`` of any field-to-field model.

An attention row is only a stencil for a one-layer, position-only head. For anything else — a
deeper GridFormer with MLPs, a CNN, an FNO, or a scheme with negative weights such as
Lax–Wendroff that no softmax row can express — the model's *effective* stencil is its Jacobian
read by offset. For a linear translation-invariant update it equals the scheme's stencil
exactly; for a nonlinear one it is the local linearisation around the given state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import xarray as xr

from gridformer.analysis.stencils import crop_stencil
from gridformer.tokenize.geometry import wrap_offsets

__all__ = ["effective_stencil"]

_NON_SPATIAL = ("sample", "time", "step", "batch")


def _as_batch(u: object, dims: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Return ``u`` as ``(B, *grid)`` float64 and the names of its spatial dims."""
    if isinstance(u, xr.DataArray):
        spatial = tuple(d for d in u.dims if d not in _NON_SPATIAL)
        extra = [d for d in u.dims if d in _NON_SPATIAL]
        arr = u.transpose(*extra, *spatial).values.reshape(-1, *(u.sizes[d] for d in spatial))
        return arr.astype(np.float64), spatial
    arr = np.asarray(u.detach().cpu() if isinstance(u, torch.Tensor) else u, dtype=np.float64)
    if arr.ndim < 2:
        msg = f"u must have a leading batch axis, shape (B, *grid); got {arr.shape}"
        raise ValueError(msg)
    default = ("y", "x") if arr.ndim == 3 else ("x",) if arr.ndim == 2 else None
    names = tuple(dims) if dims is not None else default
    if names is None or len(names) != arr.ndim - 1:
        msg = (
            f"dims={dims!r} must name the {arr.ndim - 1} spatial axes of u with "
            f"shape {arr.shape} (B, *grid)"
        )
        raise ValueError(msg)
    return arr, names


def effective_stencil(
    model_fn: Callable[[torch.Tensor], torch.Tensor],
    u: object,
    *,
    n_positions: int = 64,
    radius: int | Sequence[int] | None = None,
    periodic: bool | Sequence[bool] = True,
    dims: Sequence[str] | None = None,
    dtype: torch.dtype = torch.float32,
    chunk_size: int = 32,
    seed: int = 0,
) -> xr.DataArray:
    """Jacobian of one model step read by offset and averaged over positions.

    For sampled query cells ``i`` (``n_positions`` per sample, or all cells when the grid is
    smaller), the gradient of ``u_new[i]`` with respect to the whole input field is one row of
    the Jacobian; shifting it by ``i`` gives the stencil at ``i``. Rows are computed in batches
    of independent copies of the input (one backward pass per chunk), so any differentiable
    model works without ``vmap`` support, as long as samples in a batch do not interact.

    Parameters
    ----------
    model_fn
        Maps a float tensor ``(B, *grid)`` to the next state ``(B, *grid)`` (put modules in
        ``eval()`` mode first).
    u
        States to linearise around: ``(B, *grid)`` array/tensor, or an ``xr.DataArray`` whose
        non-spatial dims (``sample``, ``time``) are flattened into the batch.
    n_positions
        Query cells per sample (random, without replacement, from ``seed``).
    radius
        Keep ``|offset| <= radius`` per dim (int or one per dim); ``attrs["mass_outside_radius"]``
        records the summed weight dropped.
    periodic
        Whether each spatial axis wraps (offsets then lie in ``[-L//2, L - L//2 - 1]``).
    dims
        Names of the spatial axes for array input (default ``("y", "x")`` / ``("x",)``).
    dtype
        Dtype of the fields fed to ``model_fn`` (e.g. float64 for float64 data; gridformer
        models cast their input to their own parameters' dtype).
    chunk_size
        Jacobian rows per backward pass (memory knob).

    Returns
    -------
    xr.DataArray
        Dims ``("dy", "dx")`` (or ``("dx",)``), integer coords in grid cells; coordinate
        ``spread`` = std over the sampled positions (zero for a translation-invariant linear
        model); dimensionless weights.
    """
    fields, names = _as_batch(u, dims)  # (B, *grid)
    batch, grid = fields.shape[0], fields.shape[1:]
    n_cells = int(np.prod(grid))
    periodic_axes = [bool(periodic)] * len(grid) if isinstance(periodic, bool) else list(periodic)
    if len(periodic_axes) != len(grid):
        msg = f"periodic={periodic!r} must be a bool or one per spatial dim {names}"
        raise ValueError(msg)
    if n_positions < 1:
        msg = f"n_positions={n_positions} must be >= 1"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    per_sample = min(n_positions, n_cells)
    rows_sample = np.repeat(np.arange(batch), per_sample)
    rows_cell = np.concatenate([rng.choice(n_cells, per_sample, replace=False)
                                for _ in range(batch)])  # (R,) flat query index

    # offset of every cell j relative to every sampled query i, per axis -> flat offset index
    query_multi = np.unravel_index(rows_cell, grid)  # ndim x (R,)
    cell_multi = np.unravel_index(np.arange(n_cells), grid)  # ndim x (n_cells,)
    coords, flat = [], np.zeros((len(rows_cell), n_cells), dtype=np.int64)
    for axis, length in enumerate(grid):
        delta = cell_multi[axis][None, :] - query_multi[axis][:, None]  # (R, n_cells)
        if periodic_axes[axis]:  # the convention of TokenLayout.offsets()
            delta = wrap_offsets(delta, length)
        low = -(length // 2) if periodic_axes[axis] else -(length - 1)
        high = length - length // 2 - 1 if periodic_axes[axis] else length - 1
        coords.append(np.arange(low, high + 1))
        flat = flat * len(coords[-1]) + (delta - low)
    n_offsets = int(np.prod([len(c) for c in coords]))

    rows = torch.zeros(len(rows_cell), n_offsets, dtype=torch.float64)  # (R, K)
    source = torch.as_tensor(fields, dtype=dtype)
    for start in range(0, len(rows_cell), chunk_size):
        stop = min(start + chunk_size, len(rows_cell))
        x = source[rows_sample[start:stop]].clone().requires_grad_(True)  # (C, *grid)
        with torch.enable_grad():
            out = model_fn(x)
            if tuple(out.shape) != tuple(x.shape):
                msg = (
                    f"model_fn must map (B, *grid) to the same shape; got "
                    f"{tuple(x.shape)} -> {tuple(out.shape)}"
                )
                raise ValueError(msg)
            picked = out.reshape(stop - start, n_cells)[
                torch.arange(stop - start), torch.as_tensor(rows_cell[start:stop])]
            (grad,) = torch.autograd.grad(picked.sum(), x)
        index = torch.as_tensor(flat[start:stop])
        rows[start:stop].scatter_add_(1, index, grad.reshape(stop - start, -1).double())

    mean, spread = rows.mean(0), rows.std(0, correction=0)  # (K,)
    shape = tuple(len(c) for c in coords)
    offset_names = tuple(f"d{name}" for name in names)
    result = xr.DataArray(
        mean.reshape(shape).numpy(), dims=offset_names,
        coords=dict(zip(offset_names, coords, strict=True)),
        attrs={"long_name": "effective (Jacobian) stencil", "units": "1",
               "n_positions": len(rows_cell)},
    ).assign_coords(spread=(offset_names, spread.reshape(shape).numpy()))
    return crop_stencil(result, radius, dims=offset_names)
