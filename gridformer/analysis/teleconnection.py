"""Teleconnection maps: where on the globe a query region's attention goes.

A *query* picks the tokens whose attention rows are read:

- a point ``(lat, lon)`` (or ``{"lat": 0.0, "lon": 200.0}``): the token whose patch contains it;
- a box ``((lat0, lat1), (lon0, lon1))`` (or ``{"lat": (-5, 5), "lon": (190, 240)}``; a dim left
  out spans the grid): every valid token whose centre lies in it. A longitude range may cross
  the seam, ``(340, 20)``;
- ``"cls"``: the class token of an index model (``pool="cls"``); ``"pooled"``: what the model's
  pooled output reads, the class token when there is one, else the mean over valid tokens.

Longitudes are taken modulo 360 into the grid's own convention, so ``lon=-100`` on a 0..360
grid means 260. Coordinates are given in the order of ``layout.spatial_dims`` (or by name), so
the same queries work on ``("y", "x")`` grids without wrapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from gridformer.analysis.attention_stats import (
    attention_layers,
    attention_rollout,
    default_query_index,
    key_axis,
    query_positions,
    select_indices,
)

__all__ = ["query_tokens", "teleconnection_map"]

_COMBINE = ("mean", "rollout")


def _is_lon(layout: Any, dim: str) -> bool:
    """Longitude (read modulo 360): the ``lon`` dim; grids are canonicalised to that name."""
    return dim == "lon"


def _cell_edges(coord: np.ndarray) -> np.ndarray:
    """``(L + 1,)`` ascending cell edges from cell centres (midpoints; half a cell outside)."""
    c = np.sort(np.asarray(coord, dtype=np.float64))
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2.0
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def _wrap_lon(value: float, start: float) -> float:
    """``value`` shifted by a multiple of 360 into ``[start, start + 360)``."""
    return start + float(np.mod(value - start, 360.0))


def _normalise_query(layout: Any, query: Any) -> dict[str, Any]:
    """``{dim: number or (lo, hi)}`` from a tuple in spatial-dim order or a mapping."""
    dims = tuple(layout.spatial_dims)
    if isinstance(query, Mapping):
        unknown = sorted(set(query) - set(dims))
        if unknown:
            msg = f"query names dims {unknown} that the grid lacks; valid dims: {list(dims)}"
            raise ValueError(msg)
        items = dict(query)
    elif isinstance(query, Sequence) and not isinstance(query, str) and len(query) == len(dims):
        items = dict(zip(dims, query, strict=True))
    else:
        msg = (
            f"query={query!r} is not understood; give a point {dims} as numbers, a box as one "
            f"(lo, hi) pair per dim, a mapping such as {{{dims[0]!r}: (lo, hi)}}, or 'cls' / "
            f"'pooled'"
        )
        raise ValueError(msg)
    out: dict[str, Any] = {}
    for dim, value in items.items():
        if isinstance(value, slice):
            value = (value.start, value.stop)
        if isinstance(value, Sequence) and not isinstance(value, str):
            if len(value) != 2 or not all(isinstance(v, int | float | np.number) for v in value):
                msg = f"query range for {dim!r} must be a (lo, hi) pair of numbers, got {value!r}"
                raise ValueError(msg)
            out[dim] = (float(value[0]), float(value[1]))
        elif isinstance(value, int | float | np.number):
            out[dim] = float(value)
        else:
            msg = f"query value for {dim!r} must be a number or a (lo, hi) pair, got {value!r}"
            raise TypeError(msg)
    return out


def _grid_range(layout: Any) -> str:
    parts = []
    for dim in layout.spatial_dims:
        edges = _cell_edges(layout.coords[dim])
        parts.append(f"{dim} in [{edges[0]:g}, {edges[-1]:g}]")
    return ", ".join(parts)


def _point_patch(layout: Any, dim: int, value: float, point: dict) -> int:
    """Patch index along spatial dim ``dim`` of the cell that contains ``value``."""
    name = layout.spatial_dims[dim]
    coord = np.asarray(layout.coords[name], dtype=np.float64)
    edges = _cell_edges(coord)
    if _is_lon(layout, name):
        value = _wrap_lon(value, edges[0])
    if not edges[0] <= value <= edges[-1]:
        msg = f"query point {point} lies outside the grid: {_grid_range(layout)}"
        raise ValueError(msg)
    rank = min(int(np.searchsorted(edges, value, side="right")) - 1, coord.size - 1)
    cell = int(np.argsort(coord)[rank])  # the cell's index in the grid's own order
    return (cell + layout.padding[dim][0]) // layout.patch_size[dim]


def _in_range(layout: Any, name: str, centres: np.ndarray, bounds: tuple) -> np.ndarray:
    lo, hi = bounds
    if _is_lon(layout, name):
        if hi - lo >= 360.0:
            return np.ones(centres.shape, dtype=bool)
        return np.mod(centres - lo, 360.0) <= np.mod(hi - lo, 360.0)
    lo, hi = min(lo, hi), max(lo, hi)
    return (centres >= lo) & (centres <= hi)


def query_tokens(layout: Any, query: Any) -> np.ndarray:
    """Token indices that a point or box query selects.

    Parameters
    ----------
    layout
        The :class:`~gridformer.tokenize.TokenLayout` of the tokens.
    query
        A point (one number per spatial dim, in ``layout.spatial_dims`` order or as a mapping
        by dim name) or a box (one ``(lo, hi)`` pair per dim; a mapping may leave dims out).
        Longitudes are read modulo 360.

    Returns
    -------
    np.ndarray
        ``(Q,)`` int64 token indices, ascending: for a point, the token whose patch holds it (one
        per frame on space-time layouts); for a box, the tokens whose centre lies inside and that
        are valid in at least one sample.
    """
    parsed = _normalise_query(layout, query)
    dims = tuple(layout.spatial_dims)
    valid = torch.as_tensor(layout.valid, dtype=torch.bool).reshape(-1, layout.n_tokens)
    valid_any = valid.any(0).numpy()  # (N,)
    is_point = len(parsed) == len(dims) and all(isinstance(v, float) for v in parsed.values())
    if is_point:
        patch = [_point_patch(layout, d, parsed[name], parsed) for d, name in enumerate(dims)]
        tokens = np.flatnonzero((layout.patch_index == np.array(patch)).all(axis=1))
        if not valid_any[tokens].any():
            msg = (
                f"query point {parsed} falls on token {tokens.tolist()}, which holds no valid "
                f"data (masked, e.g. land, or padding); pick a point on a valid token"
            )
            raise ValueError(msg)
        return tokens.astype(np.int64)
    centres = layout.centers()
    inside = valid_any.copy()
    for name, value in parsed.items():
        bounds = value if isinstance(value, tuple) else (value, value)
        inside &= _in_range(layout, name, centres[name], bounds)
    if not inside.any():
        msg = (
            f"query box {parsed} contains no valid token centre; the grid covers "
            f"{_grid_range(layout)} and token centres lie every {tuple(layout.patch_size)} cells"
        )
        raise ValueError(msg)
    return np.flatnonzero(inside).astype(np.int64)


def _query_weights(
    layout: Any, query: Any, keys: Any, batch: int
) -> tuple[np.ndarray, torch.Tensor, str]:
    """Key-axis positions of the query rows and their per-sample weights ``(B, P)``."""
    if isinstance(query, str):
        if query not in ("cls", "pooled"):
            msg = f"query={query!r} is not a known name; use 'cls', 'pooled', a point or a box"
            raise ValueError(msg)
        if keys.n_cls:
            return np.array([0]), torch.ones(batch, 1, dtype=torch.float64), "class token"
        if query == "cls":
            msg = (
                "query='cls' needs attention with a class token first (K = N + 1, a model with "
                "pool='cls'); this attention has none: use query='pooled' for a mean-pooled model"
            )
            raise ValueError(msg)
        tokens = np.arange(layout.n_tokens)
        description = "pooled (mean over valid tokens)"
    else:
        tokens = query_tokens(layout, query)
        description = repr(_normalise_query(layout, query))
    positions = tokens + keys.n_cls
    weights = keys.valid[:, positions].to(torch.float64)  # (B, P)
    empty = torch.nonzero(weights.sum(-1) == 0).flatten().tolist()
    if empty:
        msg = f"query {description} holds no valid token in samples {empty}"
        raise ValueError(msg)
    return positions, weights / weights.sum(-1, keepdim=True), description


def _rows(layers: list[torch.Tensor], positions: np.ndarray, held: np.ndarray) -> list:
    """Rows at key-axis ``positions`` from each layer, whose rows sit at ``held``."""
    lookup = {int(p): i for i, p in enumerate(held)}
    missing = sorted({int(p) for p in positions} - set(lookup))
    if missing:
        msg = (
            f"the query needs attention rows at key positions {missing}, which query_index="
            f"{held.tolist()} does not hold"
        )
        raise ValueError(msg)
    index = torch.as_tensor([lookup[int(p)] for p in positions])
    return [layer.index_select(2, index) for layer in layers]


def _combined_rows(
    per_layer: list[torch.Tensor],
    positions: np.ndarray,
    *,
    combine: str,
    layers: Any,
    heads: Any,
    residual: float,
    query_index: Any,
) -> torch.Tensor:
    """Rows ``(B, P, K)`` for the queries at key-axis ``positions``, heads and layers combined."""
    _, n_heads, n_rows, n_keys = per_layer[0].shape
    chosen = [per_layer[i] for i in select_indices(len(per_layer), layers, "layers")]
    head_ids = select_indices(n_heads, heads, "heads")
    if combine == "mean":
        if any(t.shape[2] != n_rows for t in per_layer):
            msg = "every layer must hold the same query rows for combine='mean'"
            raise ValueError(msg)
        rows = _rows(chosen, positions, query_positions(n_rows, n_keys, query_index))
        return torch.stack([r[:, head_ids].mean(1) for r in rows]).mean(0)  # (B, P, K)
    held = query_positions(chosen[-1].shape[2], n_keys, query_index)
    (top,) = _rows([chosen[-1]], positions, held)  # (B, H, P, K)
    return attention_rollout(
        [*chosen[:-1], top], residual=residual, heads=head_ids, query_index=positions
    )  # (B, P, K)


def _probe_map(probe: Any, positions: np.ndarray, weights: torch.Tensor, *, combine: str,
               layers: Any, heads: Any, residual: float) -> torch.Tensor:
    """``(B, K)`` map of the weighted query vector of each sample, from a model's probe."""
    layer_ids = select_indices(probe.n_layers, layers, "layers")
    head_ids = select_indices(probe.n_heads, heads, "heads")
    start = torch.zeros(weights.shape[0], 1, probe.n_keys, dtype=torch.float64)
    start[:, 0, torch.as_tensor(positions)] = weights  # (B, 1, K)
    device = probe.layers[0]._device()
    start = start.to(device)
    if combine == "rollout":
        out = probe.rollout_vectors(start, residual=residual, layers=layer_ids, heads=head_ids)
    else:
        out = probe.mean(start, layers=layer_ids, heads=head_ids)
    return out[:, 0].cpu().to(torch.float64)  # (B, K)


def _mean_and_spread(values: torch.Tensor, valid: torch.Tensor) -> tuple[np.ndarray, ...]:
    """Mean and standard deviation over samples of ``values`` ``(B, N)`` where ``valid``;
    NaN where no sample is valid."""
    count = valid.sum(0)  # (N,)
    safe = count.clamp_min(1).to(torch.float64)
    mean = torch.where(valid, values, 0.0).sum(0) / safe  # (N,)
    spread = (torch.where(valid, values - mean, 0.0) ** 2).sum(0).div(safe).sqrt()  # (N,)
    empty = count == 0
    return mean.masked_fill(empty, torch.nan).numpy(), spread.masked_fill(empty, torch.nan).numpy()


def teleconnection_map(
    attention: Any,
    layout: Any,
    query: Any,
    *,
    combine: str = "mean",
    layers: int | Sequence[int] | None = None,
    heads: int | Sequence[int] | None = None,
    residual: float = 0.5,
    query_index: Any = None,
    upsample: bool = False,
) -> xr.DataArray:
    """Attention from a query region to every place on the grid, mean and spread over samples.

    For each sample, the query tokens' rows (heads and layers combined) are averaged over the
    query's valid tokens, giving a weight per key token; its mean over samples is returned on
    the grid, with the standard deviation over samples as the ``spread`` coordinate. Masked
    (invalid) key tokens, such as land in an ocean field, are NaN.

    Parameters
    ----------
    attention
        ``(B, H, N, N)`` per layer (``N + 1`` with a class token first), a sequence of them, or
        a model output with ``.attention``; or ``(B, H, Q, K)`` rows with ``query_index``. A
        model output for a query set (``return_attention=query``) needs no ``query_index`` and
        gives maps of any query and either ``combine`` from its ``probe``, block by block: no
        ``N x N`` matrix on any grid.
    layout
        The :class:`~gridformer.tokenize.TokenLayout` of the tokens.
    query
        A point, a box, ``"cls"`` or ``"pooled"`` (see :func:`query_tokens` and the module doc).
    combine
        How heads and layers become one row: ``"mean"``, the plain mean over the selected layers
        and heads; ``"rollout"``, :func:`attention_rollout` through the selected layers (the mean
        over heads, ``(1 - residual) W + residual I`` per layer, multiplied through).
    layers, heads
        Indices to combine (``None``: all).
    residual
        Identity weight for ``combine="rollout"`` (0.5 in Abnar & Zuidema 2020).
    query_index
        Key-axis position of each row, when the attention holds a subset of queries (with a
        class token, 0 is the class token and token ``n`` is at ``n + 1``). With
        ``combine="rollout"`` only the last selected layer may be a subset.
    upsample
        Return the map on the cell grid (each patch's value repeated) instead of the patch grid.

    Returns
    -------
    xr.DataArray
        Dims ``layout.spatial_dims`` (``("lat", "lon")``; a leading ``frame`` dim on space-time
        layouts) with patch-centre coordinates, dimensionless attention weights (``units`` "1",
        summing to about one over the map minus the weight kept by a class token), coordinate
        ``spread``; attrs record the query, the rule, the layers, heads and sample count.
    """
    if combine not in _COMBINE:
        msg = f"combine={combine!r} must be one of {_COMBINE}"
        raise ValueError(msg)
    query_index = default_query_index(attention, query_index)
    probe = getattr(attention, "probe", None)
    per_layer = attention_layers(attention)
    batch, _, _, n_keys = per_layer[0].shape
    keys = key_axis(layout, batch, n_keys)
    positions, weights, description = _query_weights(layout, query, keys, batch)
    if probe is not None:  # one weighted query vector per sample, block by block
        per_sample = _probe_map(probe, positions, weights, combine=combine, layers=layers,
                                heads=heads, residual=residual)  # (B, K)
    else:
        combined = _combined_rows(
            per_layer, positions, combine=combine, layers=layers, heads=heads,
            residual=residual, query_index=query_index,
        )  # (B, P, K)
        per_sample = torch.einsum("bp,bpk->bk", weights, combined)  # (B, K)
    to_class = per_sample[:, : keys.n_cls].sum(-1)  # (B,) weight kept by the class token
    mean, spread = _mean_and_spread(per_sample[:, keys.n_cls :], keys.valid[:, keys.n_cls :])
    result = layout.to_grid(mean, upsample=upsample, name="teleconnection_map")
    result = result.assign_coords(
        spread=(result.dims, layout.to_grid(spread, upsample=upsample).values)
    )
    result.attrs = {
        "long_name": "attention weight from the query",
        "units": "1",
        "query": description,
        "n_query_tokens": len(positions),
        "combine": combine if combine == "mean" else f"rollout (residual={residual})",
        "layers": "all" if layers is None else str(layers),
        "heads": "all" if heads is None else str(heads),
        "n_samples": batch,
        "weight_to_class_token": float(to_class.mean()) if keys.n_cls else 0.0,
    }
    return result
