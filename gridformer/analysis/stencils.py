"""Attention stencils: each query's attention row re-indexed by the offset of its key.

One attention row ``A[q, :]`` is a set of weights over keys. On a grid, re-indexing it by the
offset ``key - query`` (in grid cells, wrapped on periodic dims, as :meth:`TokenLayout.offsets`
defines it) turns it into a *stencil*: the weight that the query's update puts on the cell at
each offset. Averaging over queries gives one stencil for the whole layer; the standard deviation
over queries (the *spread*) says how much it varies from place to place (zero for a pure
position-bias head on a periodic grid, large for a state-dependent Burgers head).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

__all__ = ["attention_stencil", "crop_stencil", "offset_dims", "stack_attention"]


def offset_dims(layout: Any, ndim: int) -> tuple[str, ...]:
    """Names of the offset dims for ``layout``: ``"d" + dim`` per axis, e.g. ``("dy", "dx")``.

    Space-time layouts (offsets with one more axis than ``layout.spatial_dims``) get a leading
    ``"dframe"`` axis (offsets in frames).
    """
    spatial = tuple(getattr(layout, "spatial_dims", ()))
    if len(spatial) == ndim:
        return tuple(f"d{name}" for name in spatial)
    if len(spatial) == ndim - 1:
        return ("dframe", *(f"d{name}" for name in spatial))
    return tuple(f"d{i}" for i in range(ndim))


def _select(n: int, chosen: int | Sequence[int] | None, name: str) -> list[int]:
    """Validate a selection of layer/head indices (None = all; negative indices allowed)."""
    if chosen is None:
        return list(range(n))
    indices = [chosen] if isinstance(chosen, int | np.integer) else list(chosen)
    if not indices:
        msg = f"{name}={chosen!r} selects nothing; give indices in [0, {n - 1}]"
        raise ValueError(msg)
    for index in indices:
        if not -n <= int(index) < n:
            msg = (
                f"{name}={chosen!r} is out of range: there are {n} {name} "
                f"(valid indices 0..{n - 1} or negative from the end)"
            )
            raise ValueError(msg)
    return [int(i) % n for i in indices]


def stack_attention(
    attention: Any,
    *,
    layers: int | Sequence[int] | None = None,
    heads: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Average attention over the selected layers and heads.

    Parameters
    ----------
    attention
        One tensor ``(B, H, N, N)`` (one layer), a sequence of them (one per layer), or a model
        output with an ``.attention`` attribute holding such a sequence. ``(H, N, N)`` and
        ``(N, N)`` are read as one sample / one head.
    layers, heads
        Indices to average over (``None``: all).

    Returns
    -------
    torch.Tensor
        ``(B, N, N)`` float64: row ``q`` holds the weights query ``q`` gives each key.
    """
    if hasattr(attention, "attention") and not isinstance(attention, torch.Tensor):
        attention = attention.attention
    if attention is None:
        msg = (
            "the model returned no attention weights (attention=None): it has no attention "
            "layer, or it was not called with return_attention=True; for a model without "
            "attention (CNN, FNO) use gridformer.analysis.effective_stencil instead"
        )
        raise ValueError(msg)
    per_layer = [attention] if isinstance(attention, torch.Tensor) else list(attention)
    if not per_layer:
        msg = (
            "attention is an empty sequence: the model has no attention layers; "
            "use gridformer.analysis.effective_stencil instead"
        )
        raise ValueError(msg)
    tensors = []
    for layer in per_layer:
        t = torch.as_tensor(layer).detach()
        while t.ndim < 4:
            t = t.unsqueeze(0)
        if t.ndim != 4 or t.shape[-1] != t.shape[-2]:
            msg = (
                f"attention must have shape (B, H, N, N) per layer; got "
                f"{tuple(torch.as_tensor(layer).shape)}"
            )
            raise ValueError(msg)
        tensors.append(t)
    if len({t.shape for t in tensors}) != 1:
        msg = f"attention layers differ in shape: {[tuple(t.shape) for t in tensors]}"
        raise ValueError(msg)
    layer_ids = _select(len(tensors), layers, "layers")
    stacked = torch.stack([tensors[i] for i in layer_ids])  # (L, B, H, N, N)
    head_ids = _select(stacked.shape[2], heads, "heads")
    return stacked[:, :, head_ids].to(torch.float64).mean(dim=(0, 2))  # (B, N, N)


def _offset_index(offsets: torch.Tensor) -> tuple[list[np.ndarray], torch.Tensor]:
    """Map offsets ``(N, N, ndim)`` to the sorted unique values per dim and a flat index."""
    values, flat = [], torch.zeros(offsets.shape[:2], dtype=torch.int64)
    for d in range(offsets.shape[-1]):
        unique = torch.unique(offsets[..., d])  # sorted
        position = torch.searchsorted(unique, offsets[..., d].contiguous())
        flat = flat * unique.numel() + position
        values.append(unique.numpy())
    return values, flat


def _query_grid(layout: Any, n_tokens: int) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """Query dims and shape when tokens form one frame of a row-major patch grid, else None."""
    shape = tuple(getattr(layout, "patch_grid_shape", ()))
    dims = tuple(getattr(layout, "spatial_dims", ()))
    if shape and len(shape) == len(dims) and int(np.prod(shape)) == n_tokens:
        return dims, shape
    return None


def attention_stencil(
    attention: Any,
    layout: Any,
    *,
    layers: int | Sequence[int] | None = None,
    heads: int | Sequence[int] | None = None,
    radius: int | Sequence[int] | None = None,
    per_query: bool = False,
) -> xr.DataArray:
    """Attention re-indexed by offset ``key - query`` and averaged over queries: a stencil.

    Each query's row is scatter-added by the periodic offset of every key (``layout.offsets()``,
    in grid cells), so entry ``(dy, dx)`` is the weight the query puts on ``u[y + dy, x + dx]``.
    The result is the mean over samples and (valid) queries of these per-query stencils, with
    their standard deviation as the ``spread`` coordinate. Heads and layers are averaged first
    (a plain mean of the selected ones; for one head and one layer it is the exact stencil).

    Parameters
    ----------
    attention
        ``(B, H, N, N)`` for one layer, a sequence of per-layer tensors, or a model output with
        ``.attention``; rows sum to one.
    layout
        The :class:`~gridformer.tokenize.TokenLayout` of the tokens (needs ``offsets()``,
        ``spatial_dims``; ``valid`` and ``patch_grid_shape`` are used when present).
    layers, heads
        Which layers/heads to average (``None``: all).
    radius
        Keep offsets with ``|offset| <= radius`` per dim (an int or one per dim); the weight left
        outside is recorded in ``attrs["mass_outside_radius"]``.
    per_query
        Return every query's stencil instead of the mean: dims ``("sample", *spatial_dims,
        *offset_dims)`` (``("sample", "query", ...)`` when tokens do not form a plain grid).

    Returns
    -------
    xr.DataArray
        Dims ``("dy", "dx")`` (or ``("dx",)``), integer offset coords in grid cells, non-index
        coordinate ``spread`` (std over samples and queries); dimensionless weights.
    """
    mean_attention = stack_attention(attention, layers=layers, heads=heads)  # (B, N, N)
    batch, n_tokens, _ = mean_attention.shape
    offsets = torch.as_tensor(layout.offsets()).to(torch.int64)  # (N, N, ndim)
    if offsets.shape[:2] != (n_tokens, n_tokens):
        msg = (
            f"attention has N={n_tokens} tokens but layout.offsets() has shape "
            f"{tuple(offsets.shape)}; pass the layout the tokens were encoded with"
        )
        raise ValueError(msg)
    values, flat = _offset_index(offsets)
    n_offsets = int(np.prod([len(v) for v in values]))
    stencils = torch.zeros(batch, n_tokens, n_offsets, dtype=torch.float64)  # (B, Nq, K)
    stencils.scatter_add_(2, flat.expand(batch, -1, -1), mean_attention)
    dims = offset_dims(layout, offsets.shape[-1])
    coords = dict(zip(dims, values, strict=True))
    shape = tuple(len(v) for v in values)
    attrs = {"long_name": "attention stencil", "units": "1", "n_samples": batch,
             "layers": "all" if layers is None else str(layers),
             "heads": "all" if heads is None else str(heads)}

    if per_query:
        grid = _query_grid(layout, n_tokens)
        qdims, qshape = grid if grid is not None else (("query",), (n_tokens,))
        data = stencils.reshape(batch, *qshape, *shape).numpy()
        result = xr.DataArray(data, dims=("sample", *qdims, *dims), coords=coords, attrs=attrs)
        return crop_stencil(result, radius, dims=dims)

    valid = getattr(layout, "valid", None)
    weight = torch.ones(batch, n_tokens, dtype=torch.float64)
    if isinstance(valid, torch.Tensor) and valid.shape[-1] == n_tokens:
        weight = valid.to(torch.float64).expand(batch, n_tokens).clone()
    weight = weight[..., None] / weight.sum()  # (B, Nq, 1), sums to 1
    mean = (stencils * weight).sum(dim=(0, 1))  # (K,)
    spread = ((stencils - mean) ** 2 * weight).sum(dim=(0, 1)).sqrt()  # (K,)
    result = xr.DataArray(mean.reshape(shape).numpy(), dims=dims, coords=coords, attrs=attrs)
    result = result.assign_coords(spread=(dims, spread.reshape(shape).numpy()))
    return crop_stencil(result, radius, dims=dims)


def crop_stencil(
    stencil: xr.DataArray, radius: int | Sequence[int] | None, *, dims: Sequence[str] | None = None,
) -> xr.DataArray:
    """Keep offsets with ``|offset| <= radius`` on each offset dim.

    ``dims`` defaults to the dims whose names start with ``"d"`` (``dy``, ``dx``). The weight
    dropped (mean over stencils when there are several) goes to ``attrs["mass_outside_radius"]``.
    """
    if radius is None:
        return stencil
    dims = tuple(dims) if dims is not None else tuple(d for d in stencil.dims if d.startswith("d"))
    radii = [radius] * len(dims) if isinstance(radius, int | np.integer) else list(radius)
    if len(radii) != len(dims) or any(int(r) < 0 for r in radii):
        msg = (
            f"radius={radius!r} must be a non-negative int or one per offset dim "
            f"{dims}"
        )
        raise ValueError(msg)
    cropped = stencil.sel({d: abs(stencil[d]) <= int(r) for d, r in zip(dims, radii, strict=True)})
    outside = stencil.sum(dims) - cropped.sum(dims)  # per stencil
    return cropped.assign_attrs(mass_outside_radius=float(outside.mean()))
