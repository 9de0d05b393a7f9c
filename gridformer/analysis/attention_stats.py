"""Summary statistics of attention weights: mean attention distance, entropy, rollout.

Attention comes as the model returns it, ``GridFormer(...)(tokens, layout,
return_attention=True).attention``: one ``(B, H, N, N)`` tensor per layer, ``N + 1`` along
both axes when a class token sits first (``pool="cls"``). Every function here also accepts
attention for a subset of queries, ``(B, H, Q, K)``, together with ``query_index``: the
position of each row's query on the key axis, so that ``full[..., query_index, :]`` is the
subset (with a class token, position 0 is the class token and token ``n`` is at ``n + 1``).

- :func:`mean_attention_distance`: the attention-weighted mean distance between query and key
  tokens per layer and head (km on lat/lon grids), as in the ViT paper's attention-distance
  figure, with the value under uniform attention as a reference.
- :func:`attention_entropy`: the Shannon entropy of each query's row, divided by its maximum
  ``log(number of keys)``: 1 for uniform rows, 0 for one-hot rows.
- :func:`attention_rollout`: Abnar & Zuidema (2020), ``Ã_l = (1 - r) W_l + r I`` with ``W_l`` the
  head mean and ``r = 0.5``, multiplied through the layers.

A model output for a query set (``model(tokens, layout, return_attention=[...])``) carries its
``query_index`` (used when none is passed) and an ``AttentionProbe``, from which the rollout of
any queries is formed block by block: no ``N x N`` matrix at any grid size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

__all__ = ["attention_entropy", "attention_layers", "attention_rollout", "mean_attention_distance"]


def attention_layers(attention: Any) -> list[torch.Tensor]:
    """Per-layer attention as a list of ``(B, H, Q, K)`` float64 tensors.

    Parameters
    ----------
    attention
        One tensor (one layer), a sequence of per-layer tensors, or a model output with an
        ``.attention`` attribute. ``(H, Q, K)`` and ``(Q, K)`` are read as one sample / one head.

    Returns
    -------
    list of torch.Tensor
        One ``(B, H, Q, K)`` float64 tensor per layer, detached, on the CPU; every layer has the
        same ``B``, ``H`` and ``K``.
    """
    if hasattr(attention, "attention") and not isinstance(attention, torch.Tensor):
        attention = attention.attention
    if attention is None:
        msg = (
            "attention=None: the model was not called with return_attention=True, or it has no "
            "attention layer; call model(tokens, layout, return_attention=True).attention"
        )
        raise ValueError(msg)
    per_layer = [attention] if isinstance(attention, torch.Tensor | np.ndarray) else list(attention)
    if not per_layer:
        msg = "attention is an empty sequence: the model has no attention layers"
        raise ValueError(msg)
    out = []
    for i, layer in enumerate(per_layer):
        t = torch.as_tensor(layer).detach().cpu().to(torch.float64)
        if not 2 <= t.ndim <= 4:
            msg = f"attention layer {i} has shape {tuple(t.shape)}; expected (B, H, Q, K)"
            raise ValueError(msg)
        out.append(t.reshape((1,) * (4 - t.ndim) + tuple(t.shape)))  # (B, H, Q, K)
    first = out[0].shape
    for i, t in enumerate(out):
        if (t.shape[0], t.shape[1], t.shape[3]) != (first[0], first[1], first[3]):
            msg = (
                f"attention layer {i} has shape {tuple(t.shape)} but layer 0 has {tuple(first)}; "
                f"every layer needs the same (B, H, ., K)"
            )
            raise ValueError(msg)
    return out


def select_indices(n: int, chosen: int | Sequence[int] | None, name: str) -> list[int]:
    """Validate a selection of layer/head indices (``None``: all; negative counts from the end)."""
    if chosen is None:
        return list(range(n))
    indices = [chosen] if isinstance(chosen, int | np.integer) else list(chosen)
    if not indices or any(not -n <= int(i) < n for i in indices):
        msg = f"{name}={chosen!r} must select indices in 0..{n - 1} (or negative from the end)"
        raise ValueError(msg)
    return [int(i) % n for i in indices]


def default_query_index(attention: Any, query_index: Any) -> Any:
    """``query_index``, or the ``query_index`` of a model output for a query set."""
    if query_index is None and not isinstance(attention, torch.Tensor | np.ndarray):
        return getattr(attention, "query_index", None)
    return query_index


def distance_rows(layout: Any, tokens: np.ndarray) -> torch.Tensor:
    """``layout.distances()[tokens]`` ``(Q, N)`` float64, without the ``(N, N)`` matrix when
    ``tokens`` is a subset (rows read from the per-layout tables of the attention kernel)."""
    n = int(layout.n_tokens)
    if len(tokens) >= n:
        return torch.as_tensor(layout.distances(), dtype=torch.float64)[tokens]
    from gridformer.model.bias_tables import bias_geometry

    term = bias_geometry(layout, max_offset=None, distance=True).distance
    index = torch.as_tensor(tokens, dtype=torch.int64)
    return term.evaluate([p.rows(index) for p in term.parts])[0].to(torch.float64)  # (Q, N)


def query_positions(n_rows: int, n_keys: int, query_index: Any) -> np.ndarray:
    """Key-axis position of each attention row: ``arange(K)`` if rows are full, else the index."""
    if query_index is None:
        if n_rows != n_keys:
            msg = (
                f"attention has {n_rows} query rows but {n_keys} keys; pass query_index= with "
                f"the key-axis position of each row's query"
            )
            raise ValueError(msg)
        return np.arange(n_keys)
    index = np.asarray(query_index).reshape(-1)
    if not np.issubdtype(index.dtype, np.integer):
        msg = f"query_index must hold integer positions, got dtype {index.dtype}"
        raise TypeError(msg)
    if index.size != n_rows or index.min() < 0 or index.max() >= n_keys:
        msg = (
            f"query_index={index.tolist()} must give one position in 0..{n_keys - 1} for each of "
            f"the {n_rows} attention rows"
        )
        raise ValueError(msg)
    return index.astype(np.int64)


@dataclass(frozen=True)
class KeyAxis:
    """How the attention's key axis maps onto a layout's tokens.

    ``n_cls`` is 1 when a class token comes first (``K = N + 1``), else 0; ``valid`` is the
    ``(B, K)`` mask of keys that carry data (the class token is always valid).
    """

    n_cls: int
    valid: torch.Tensor  # (B, K) bool


def key_axis(layout: Any, batch: int, n_keys: int) -> KeyAxis:
    """Match the key axis of attention (``K`` keys, ``B`` samples) to ``layout``."""
    n_tokens = int(layout.n_tokens)
    if n_keys not in (n_tokens, n_tokens + 1):
        msg = (
            f"attention has K={n_keys} keys but the layout has N={n_tokens} tokens (expected "
            f"K = N, or N + 1 with a class token); pass the layout the tokens were encoded with"
        )
        raise ValueError(msg)
    n_cls = n_keys - n_tokens
    valid = getattr(layout, "valid", None)
    valid = torch.ones(1, n_tokens, dtype=torch.bool) if valid is None else valid
    valid = torch.as_tensor(valid, dtype=torch.bool).reshape(-1, n_tokens)  # (B', N)
    if valid.shape[0] not in (1, batch):
        msg = (
            f"layout.valid has {valid.shape[0]} samples but the attention has B={batch}; pass "
            f"the layout of this batch"
        )
        raise ValueError(msg)
    valid = valid.expand(batch, n_tokens)
    if n_cls:
        valid = torch.cat([valid.new_ones(batch, 1), valid], dim=1)  # (B, N + 1)
    return KeyAxis(n_cls, valid)


def _distance_units(layout: Any) -> str:
    return "km" if getattr(layout, "is_geographic", False) else "grid units"


def mean_attention_distance(
    attention: Any, layout: Any, *, query_index: Any = None
) -> xr.DataArray:
    """Attention-weighted mean distance between query and key tokens, per layer and head.

    For each layer and head, every valid query's row ``A[q, k]`` over the valid spatial keys is
    averaged against the token distance ``d[q, k]`` (``layout.distances()``: great-circle km on
    lat/lon grids), ``sum_k A[q, k] d[q, k] / sum_k A[q, k]``, and the result is averaged over
    valid queries and samples. The class token, when present, has no place: its row is left out
    and the weight other rows give it is dropped (each row renormalised over the spatial keys).

    Parameters
    ----------
    attention
        ``(B, H, N, N)`` per layer (or ``N + 1`` with a class token), a sequence of them, or a
        model output with ``.attention``; or ``(B, H, Q, K)`` rows with ``query_index``.
    layout
        The :class:`~gridformer.tokenize.TokenLayout` of the tokens (``distances()``, ``valid``).
    query_index
        Key-axis position of each row's query, for attention over a subset of queries.

    Returns
    -------
    xr.DataArray
        Dims ``("layer", "head")``, units km (grid units on non-geographic grids). The scalar
        coordinate ``uniform`` holds the same mean under uniform attention over the valid keys:
        the reference that a head with no preference for near or far keys reaches.
    """
    query_index = default_query_index(attention, query_index)
    layers = attention_layers(attention)
    batch, _, n_rows, n_keys = layers[0].shape
    keys = key_axis(layout, batch, n_keys)
    positions = query_positions(n_rows, n_keys, query_index)
    rows = np.flatnonzero(positions >= keys.n_cls)  # rows of spatial queries
    if rows.size == 0:
        msg = "the attention holds only the class token's row; no query has a place on the grid"
        raise ValueError(msg)
    tokens = positions[rows] - keys.n_cls  # (Q,) token index of each spatial query
    dist = distance_rows(layout, tokens)  # (Q, N)
    key_valid = keys.valid[:, keys.n_cls :].to(torch.float64)  # (B, N)
    query_valid = keys.valid[:, keys.n_cls :][:, tokens].to(torch.float64)  # (B, Q)
    n_queries = query_valid.sum()
    if n_queries == 0:
        msg = "no query row belongs to a valid token (every queried token is masked)"
        raise ValueError(msg)

    values = torch.empty(len(layers), layers[0].shape[1], dtype=torch.float64)  # (L, H)
    for i, layer in enumerate(layers):
        weights = layer[:, :, rows, keys.n_cls :] * key_valid[:, None, None, :]  # (B, H, Q, N)
        mass = weights.sum(-1)  # (B, H, Q)
        mean = (weights * dist).sum(-1) / torch.where(mass > 0, mass, 1.0)  # (B, H, Q)
        values[i] = (mean * query_valid[:, None, :]).sum(dim=(0, 2)) / n_queries
    uniform_rows = (dist[None] * key_valid[:, None, :]).sum(-1) / key_valid.sum(-1, keepdim=True)
    uniform = float((uniform_rows * query_valid).sum() / n_queries)  # (B, Q) -> scalar
    units = _distance_units(layout)
    return xr.DataArray(
        values.numpy(),
        dims=("layer", "head"),
        coords={
            "layer": np.arange(values.shape[0]),
            "head": np.arange(values.shape[1]),
            "uniform": ((), uniform, {"units": units, "long_name": "under uniform attention"}),
        },
        name="mean_attention_distance",
        attrs={
            "long_name": "attention-weighted mean query-key distance",
            "units": units,
            "n_samples": batch,
            "n_queries": int(n_queries),
        },
    )


def attention_entropy(
    attention: Any, layout: Any = None, *, query_index: Any = None
) -> xr.DataArray:
    """Entropy of each query's attention row, normalised by its maximum ``log(n_keys)``.

    ``H_q = -sum_k A[q, k] log A[q, k] / log(n)`` (``0 log 0 = 0``), where ``n`` is the number
    of keys that may receive attention: all ``K`` keys, or the valid keys (and the class token)
    of each sample when a ``layout`` is given. Uniform rows give 1, one-hot rows 0.

    Parameters
    ----------
    attention
        ``(B, H, Q, K)`` per layer, a sequence of them, or a model output with ``.attention``.
    layout
        Optional :class:`~gridformer.tokenize.TokenLayout`; masked (invalid) keys are then not
        counted in ``n``, and rows of invalid query tokens are NaN.
    query_index
        Key-axis position of each row's query, for attention over a subset of queries.

    Returns
    -------
    xr.DataArray
        Dims ``("layer", "sample", "head", "query")``, dimensionless in ``[0, 1]``; coordinate
        ``query`` is each row's position on the key axis (with a class token, 0 is the class
        token and token ``n`` is at ``n + 1``).
    """
    query_index = default_query_index(attention, query_index)
    layers = attention_layers(attention)
    batch, _, n_rows, n_keys = layers[0].shape
    positions = query_positions(n_rows, n_keys, query_index)
    if layout is None:
        key_valid = torch.ones(batch, n_keys, dtype=torch.bool)
    else:
        key_valid = key_axis(layout, batch, n_keys).valid  # (B, K)
    n_valid = key_valid.sum(-1).to(torch.float64)  # (B,)
    if bool((n_valid < 2).any()):
        msg = "entropy needs at least 2 keys that may receive attention in every sample"
        raise ValueError(msg)
    query_valid = key_valid[:, positions]  # (B, Q)
    out = []
    for layer in layers:
        plogp = torch.where(layer > 0, layer * torch.log(layer.clamp_min(1e-300)), 0.0)
        entropy = -plogp.sum(-1) / torch.log(n_valid)[:, None, None]  # (B, H, Q)
        out.append(torch.where(query_valid[:, None, :], entropy, torch.nan))
    values = torch.stack(out).numpy()  # (L, B, H, Q)
    return xr.DataArray(
        values,
        dims=("layer", "sample", "head", "query"),
        coords={"layer": np.arange(values.shape[0]), "query": positions},
        name="attention_entropy",
        attrs={"long_name": "attention entropy / log(number of keys)", "units": "1"},
    )


def attention_rollout(
    attentions: Any,
    *,
    residual: float = 0.5,
    layers: int | Sequence[int] | None = None,
    heads: int | Sequence[int] | None = None,
    query_index: Any = None,
) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): how much each query draws on each input token.

    Each layer's weights are averaged over heads, ``W_l``, mixed with the residual path,
    ``Ã_l = (1 - residual) W_l + residual I`` (rows renormalised), and multiplied from the last
    layer down: ``R = Ã_L Ã_(L-1) ... Ã_1``. Row ``q`` of ``R`` is computed as a row vector
    ``e_q^T Ã_L`` pushed down through the lower layers, so only the queries wanted need rows in
    the last layer; every lower layer must be complete ``(B, H, K, K)``, since a query's row at
    layer ``l`` mixes the rows of all tokens at layer ``l - 1``.

    Parameters
    ----------
    attentions
        Per-layer ``(B, H, K, K)`` tensors (first layer first), or a model output with
        ``.attention``. The last selected layer may hold a subset of rows ``(B, H, Q, K)``.
    residual
        Weight of the identity (residual connection), in ``[0, 1)``; 0.5 in the paper.
    layers, heads
        Layers to roll through (in order) and heads to average (``None``: all).
    query_index
        Key-axis position of each row of the last layer, when it holds a subset of queries; with
        full layers it picks the rows of ``R`` to return.

    Returns
    -------
    torch.Tensor
        ``(B, Q, K)`` float64 (``Q = K`` for full attention); every row sums to one.

    Notes
    -----
    A model output for a query set carries an ``AttentionProbe`` (``.probe``): the rows of its
    ``query_index`` (or of the ``query_index`` given, any key-axis positions) are then rolled
    out block by block through the complete layers that the probe forms on demand, never
    holding an ``N x N`` matrix.
    """
    if not 0.0 <= residual < 1.0:
        msg = f"residual={residual!r} must lie in [0, 1) (0.5 in Abnar & Zuidema 2020)"
        raise ValueError(msg)
    probe = getattr(attentions, "probe", None)
    if probe is not None:
        positions = default_query_index(attentions, query_index)
        layer_ids = select_indices(probe.n_layers, layers, "layers")
        head_ids = select_indices(probe.n_heads, heads, "heads")
        rows = probe.rollout(positions, residual=residual, layers=layer_ids, heads=head_ids)
        return rows.cpu()  # (B, Q, K)
    per_layer = attention_layers(attentions)
    chosen = [per_layer[i] for i in select_indices(len(per_layer), layers, "layers")]
    head_ids = select_indices(chosen[0].shape[1], heads, "heads")
    mats = [layer[:, head_ids].mean(1) for layer in chosen]  # (B, Q_l, K) each
    n_keys = mats[-1].shape[-1]
    for i, m in enumerate(mats[:-1]):
        if m.shape[1] != n_keys:
            msg = (
                f"layer {i} of the rollout holds {m.shape[1]} of {n_keys} query rows; every layer "
                f"below the last needs all rows (only the last may be a query subset)"
            )
            raise ValueError(msg)
    top = mats[-1]
    if query_index is not None and top.shape[1] == n_keys:  # full last layer: pick rows
        top = top[:, query_positions(len(np.atleast_1d(query_index)), n_keys, query_index)]
        positions = np.asarray(query_index).reshape(-1)
    else:
        positions = query_positions(top.shape[1], n_keys, query_index)
    eye = torch.eye(n_keys, dtype=torch.float64)
    rows = (1.0 - residual) * top + residual * eye[positions]  # (B, Q, K)
    rows = rows / rows.sum(-1, keepdim=True)
    for w in reversed(mats[:-1]):
        mixed = (1.0 - residual) * w + residual * eye  # (B, K, K)
        rows = rows @ (mixed / mixed.sum(-1, keepdim=True))  # (B, Q, K)
    return rows
